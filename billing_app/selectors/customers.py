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
from ..subscriptions import is_billing, period_amount
from .context import Catalog

MAX_MATCHES = 20


def _plans(workspace: Workspace, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The current plan of each customer: its live subscription worth most per month."""
    rows = MirrorSubscription.objects.filter(
        workspace=workspace, customer_id__in=customer_ids
    ).order_by("-created")
    subs = [dict(r.data) for r in rows if r.data]
    catalog = Catalog(workspace, subs)
    best: dict[str, tuple[int, dict[str, Any]]] = {}
    for sub in subs:
        item = catalog.plan_item(sub)
        if item is None:
            continue
        status = str(sub.get("status") or "")
        rank = 1 if is_billing(status) else 0
        current = best.get(str(sub.get("customer")))
        if current is not None and current[0] >= rank:
            continue
        price = item.get("price") or {}
        amount = period_amount(catalog.view(item))
        currency = str(price.get("currency") or "usd").upper()
        interval = (price.get("recurring") or {}).get("interval") or "month"
        best[str(sub.get("customer"))] = (
            rank,
            {
                "name": catalog.name(price),
                "status": status,
                "display": f"{catalog.name(price)} ({short_money(amount, currency)}/{interval})",
                "subscription_id": sub.get("id"),
            },
        )
    return {customer_id: plan for customer_id, (_, plan) in best.items()}


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
