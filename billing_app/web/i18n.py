"""The panel's JavaScript catalog, one cacheable URL per language (issue 16).

``GET /jsi18n/<lang>/?v=<version>`` is Django's ``JavaScriptCatalog`` (the ``djangojs``
domain: root ``locale/``, from ``LOCALE_PATHS``) for ``lang``, whatever the request's own
language. The panel page loads it as a deferred classic script from its own origin, so the
panel's strict CSP (``script-src 'self'``, no inline script) stays as it is; ``v`` is a hash
of the compiled catalogs, so the answer may be cached for a year and a deploy that changes
a translation changes the URL. After the first panel of a language, the catalog costs no
request at all (the alternative, the catalog inlined as JSON in every panel page, would
send it again on every ticket).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.views.i18n import JavaScriptCatalog

CATALOG_MAX_AGE = 365 * 24 * 60 * 60


def supported_language(lang: str | None) -> str:
    """``lang`` if the site has it (``de-DE`` → ``de``), else the default language."""
    codes = [code for code, _name in settings.LANGUAGES]
    if lang:
        try:
            found = translation.get_supported_language_variant(lang)
        except LookupError:
            found = None
        if found in codes:
            return found
    return settings.LANGUAGE_CODE


@lru_cache(maxsize=16)
def catalog_version(lang: str) -> str:
    """A short hash of the compiled ``djangojs`` catalogs of ``lang`` (changes with them)."""
    digest = hashlib.sha256(lang.encode())
    for base in settings.LOCALE_PATHS:
        mo = Path(base) / lang / "LC_MESSAGES" / "djangojs.mo"
        if mo.exists():
            digest.update(mo.read_bytes())
    return digest.hexdigest()[:12]


def catalog_url(lang: str | None = None) -> str:
    """The versioned catalog URL for ``lang`` (default: the active language)."""
    code = supported_language(lang or translation.get_language())
    return f"{reverse('js-catalog', kwargs={'lang': code})}?v={catalog_version(code)}"


class PanelJavaScriptCatalog(JavaScriptCatalog):
    # Only the project's own catalogs: root locale/ (LOCALE_PATHS, always read) and
    # billing_app's (no djangojs there), not the admin's JavaScript strings.
    packages = ["billing_app"]

    def get(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        lang = str(kwargs.pop("lang", ""))
        if lang not in {code for code, _name in settings.LANGUAGES}:
            raise Http404("No such language.")
        with translation.override(lang):
            response = super().get(request, *args, **kwargs)
        patch_cache_control(response, public=True, max_age=CATALOG_MAX_AGE, immutable=True)
        response["Content-Language"] = lang
        return response


js_catalog = PanelJavaScriptCatalog.as_view()
