"""The demo workspace's billing help widget (issue 18; ``demo_seed`` calls it).

Enabled for the demo's origins — ``PUBLIC_BASE_URL``, ``http://127.0.0.1:8000`` and
``http://localhost:8000`` — with an identity secret, made once and kept across seeds (the
demo page signs with whatever secret is stored, so a rotation in admin keeps it working).
"""

from __future__ import annotations

from django.conf import settings

from ..models import BillingWidget, Workspace
from ..selectors.widget import origin_normalise
from ..services.widget import widget_secret_rotate

DEMO_ORIGINS = ("http://127.0.0.1:8000", "http://localhost:8000")


def demo_widget_seed(*, workspace: Workspace) -> BillingWidget:
    """Enable the demo workspace's widget for the demo's origins; a secret if it has none."""
    origins = [origin_normalise(settings.PUBLIC_BASE_URL), *DEMO_ORIGINS]
    widget, _created = BillingWidget.objects.update_or_create(
        workspace=workspace,
        defaults={
            "enabled": True,
            "allowed_origins": "\n".join(dict.fromkeys(o for o in origins if o)),
        },
    )
    if not widget.identity_secret:
        widget_secret_rotate(widget=widget)
    return widget
