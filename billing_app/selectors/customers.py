"""Matching a ticket's requester to billing customers (DESIGN.md section 4, "Customer matching").

Sources, in order: the agent's pins (``CustomerLink`` for the requester email or
the helpdesk organization), mirrored customers whose email matches the
requester's case-insensitively, and mirrored customers whose metadata names the
helpdesk organization (``metadata.helpdesk_organization_id``). Several matches
come back with what an agent needs to pick one: name, email, plan, status and
when the customer was created. Deleted customers are offered only when pinned.
"""

from __future__ import annotations

from typing import Any

from ..models import CustomerLink, MirrorCustomer, MirrorSubscription, Workspace
from ..money import short_money
from ..subscriptions import period_amount
from .context import Catalog, interval_text, primary_subscription

MAX_MATCHES = 20


def _plans(workspace: Workspace, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The current plan of each customer: the plan of the subscription its context leads with
    (``selectors.context.primary_subscription``: the billing one worth most per month)."""
    rows = MirrorSubscription.objects.filter(
        workspace=workspace, customer_id__in=customer_ids
    ).order_by("-created", "-id")
    subs = [dict(r.data) for r in rows if r.data]
    catalog = Catalog(workspace, subs)
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for sub in subs:
        by_customer.setdefault(str(sub.get("customer")), []).append(sub)
    plans: dict[str, dict[str, Any]] = {}
    for customer_id, own in by_customer.items():
        primary = primary_subscription(own, catalog)
        item = catalog.plan_item(primary) if primary is not None else None
        if primary is None or item is None:
            continue
        price = item.get("price") or {}
        amount = period_amount(catalog.view(item))
        currency = str(price.get("currency") or primary.get("currency") or "").upper()
        name = catalog.name(price)
        plans[customer_id] = {
            "name": name,
            "status": str(primary.get("status") or ""),
            "display": f"{name} ({short_money(amount, currency)}/{interval_text(price)})",
            "subscription_id": primary.get("id"),
        }
    return plans


def customer_matches(
    *, workspace: Workspace, email: str = "", organization_id: str = ""
) -> dict[str, Any]:
    """``{"matches": [...], "pinned_customer_id": str | None}``; pinned matches first."""
    email = email.strip().lower()
    organization_id = organization_id.strip()
    links = []
    if email:
        links += list(
            CustomerLink.objects.filter(
                workspace=workspace, key_type=CustomerLink.KeyType.EMAIL, key_value=email
            )
        )
    if organization_id:
        links += list(
            CustomerLink.objects.filter(
                workspace=workspace,
                key_type=CustomerLink.KeyType.ORGANIZATION,
                key_value=organization_id,
            )
        )
    pinned = {link.customer_id: link for link in links}
    found: dict[str, tuple[MirrorCustomer, set[str]]] = {}
    if pinned:
        for row in MirrorCustomer.objects.filter(workspace=workspace, stripe_id__in=list(pinned)):
            found[row.stripe_id] = (row, {f"pinned_{pinned[row.stripe_id].key_type}"})
    if email:
        for row in MirrorCustomer.objects.filter(
            workspace=workspace, email=email, deleted=False
        ).order_by("-created")[:MAX_MATCHES]:
            found.setdefault(row.stripe_id, (row, set()))[1].add("email")
    if organization_id:
        for row in MirrorCustomer.objects.filter(
            workspace=workspace,
            metadata__helpdesk_organization_id=organization_id,
            deleted=False,
        ).order_by("-created")[:MAX_MATCHES]:
            found.setdefault(row.stripe_id, (row, set()))[1].add("organization")
    plans = _plans(workspace, list(found))
    ordered = sorted(
        found.values(),
        key=lambda pair: (
            not any(r.startswith("pinned") for r in pair[1]),
            pair[0].deleted,
            -(pair[0].created.timestamp() if pair[0].created else 0),
        ),
    )
    matches = [
        {
            "id": row.stripe_id,
            "name": row.name,
            "email": row.email,
            "currency": row.currency,
            "created": row.created.date().isoformat() if row.created else None,
            "plan": plans.get(row.stripe_id),
            "delinquent": row.delinquent,
            "deleted": row.deleted,
            "pinned": any(r.startswith("pinned") for r in reasons),
            "matched_by": sorted(reasons),
        }
        for row, reasons in ordered[:MAX_MATCHES]
    ]
    pinned_id = next((m["id"] for m in matches if m["pinned"]), None)
    return {"matches": matches, "pinned_customer_id": pinned_id}
