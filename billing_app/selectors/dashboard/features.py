"""Which of the self-service features (issue 18) the workspace has on, for the
recommendations: a rule that would advise building a feature that exists advises turning
it on, or judges it by its own figures (``recommendations``).

The settings are on the workspace the builder holds (no query); whether a billing help
widget is enabled and how many refund request links were sent in the month are one query.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from ...models import BillingWidget, SelfServiceLink, Workspace
from ..months import Month
from .shared import money


def self_service_features(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    """``card_prompts_enabled``, ``self_service_refund_limit`` (money, base currency; 0: every
    request goes to agents), ``refund_links_sent`` (links created in ``month``, from the
    panel, a macro or the widget) and ``widget_enabled`` — as the workspace is now, and the
    links of the month. One query."""
    links = (
        SelfServiceLink.objects.filter(
            workspace=OuterRef("pk"), created_at__gte=month.start, created_at__lt=month.end
        )
        .order_by()
        .values("workspace")
        .annotate(n=Count("pk"))
        .values("n")
    )
    row = (
        Workspace.objects.filter(pk=workspace.pk)
        .values(
            widget_enabled=Exists(
                BillingWidget.objects.filter(workspace=OuterRef("pk"), enabled=True)
            ),
            refund_links_sent=Coalesce(Subquery(links, output_field=IntegerField()), Value(0)),
        )
        .first()
    ) or {"widget_enabled": False, "refund_links_sent": 0}
    return {
        "card_prompts_enabled": workspace.card_prompts_enabled,
        "self_service_refund_limit": money(
            workspace.self_service_refund_limit, workspace.base_currency
        ),
        "refund_links_sent": int(row["refund_links_sent"]),
        "widget_enabled": bool(row["widget_enabled"]),
    }
