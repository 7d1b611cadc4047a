"""``{% js_catalog_url %}``: the versioned JavaScript catalog URL of the active language."""

from __future__ import annotations

from django import template

from billing_app.web.i18n import catalog_url

register = template.Library()


@register.simple_tag
def js_catalog_url() -> str:
    return catalog_url()
