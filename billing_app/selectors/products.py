"""Mirrored products as the rulebook sees them: which are add-ons (never a plan)."""

from __future__ import annotations

from collections.abc import Iterable

from ..models import MirrorProduct, Workspace
from ..subscriptions import is_addon_product


def addon_product_ids(*, workspace: Workspace, product_ids: Iterable[str]) -> frozenset[str]:
    """Which of these mirrored products are add-ons (the rulebook's ``is_addon_product``).

    The one lookup of add-on products for the actions' plan item and the plan options.
    """
    ids = {p for p in product_ids if p}
    if not ids:
        return frozenset()
    return frozenset(
        product.stripe_id
        for product in MirrorProduct.objects.filter(workspace=workspace, stripe_id__in=ids).only(
            "stripe_id", "metadata"
        )
        if is_addon_product({"id": product.stripe_id, "metadata": product.metadata or {}})
    )


__all__ = ["addon_product_ids"]
