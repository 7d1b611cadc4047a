"""``customer_context``: the blocks of the panel's context, composed from the customer's facts."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from ...clock import billing_now
from ...models import MirrorCustomer, Workspace
from ...money import exponent, money_json
from ..mirror_freshness import customer_data_as_of
from ..payments import payment_history_page
from .actions import pending_approvals, recent_actions
from .alerts import customer_alerts
from .churn import churn_risk
from .facts import CustomerFacts, customer_facts_load
from .lifetime import lifetime_value
from .payment import credits_block, last_payment_block, payment_method_block
from .shapes import Obj, address_display, address_full, day, iso, ts
from .subscription import next_invoice, period_start, subscription_blocks


def _customer_block(facts: CustomerFacts) -> Obj:
    customer = facts.customer
    address = customer.address or {}
    return {
        "id": customer.stripe_id,
        "name": customer.name,
        "email": customer.email,
        "address": address_full(address),
        "address_display": address_display(address),
        "currency": facts.currency,
        "currency_exponent": exponent(facts.currency),
        "tax_exempt": customer.tax_exempt,
        "tax_ids": list(customer.tax_ids or []),
        "deleted": customer.deleted,
        "delinquent": customer.delinquent,
        "created": day(customer.created),
        "monitoring_until": day(facts.monitoring_until),
    }


def _account_block(facts: CustomerFacts, primary: Obj | None, payment_method: Obj | None) -> Obj:
    plan = (primary or {}).get("plan")
    customer = facts.customer
    return {
        "plan": {
            "name": plan["name"],
            "price": plan["price"],
            "interval": plan["interval"],
            "display": plan["display"],
        }
        if plan
        else None,
        "billing_cycle": (primary or {}).get("billing_cycle") or None,
        # None for a paused, ending or cancelled subscription (subscription.subscription_block).
        "renews_at": (primary or {}).get("renews_at"),
        "ends_at": (primary or {}).get("ends_at") or (primary or {}).get("cancel_at"),
        "payment_method": payment_method,
        "billing_email": customer.email,
        "billing_address": address_display(customer.address or {}),
    }


def _payment_status(facts: CustomerFacts) -> Obj:
    outstanding = facts.outstanding + max(0, facts.customer.balance)
    return {
        "last_payment": last_payment_block(facts.last_charge),
        "next_invoice": next_invoice(
            facts.live,
            catalog=facts.catalog,
            discounts=facts.discounts,
            pending_prices=facts.pending_prices,
            currency=facts.currency,
        ),
        "outstanding_balance": money_json(outstanding, facts.currency),
        "failures_12m": len(facts.failed_charges),
    }


def customer_context(
    *,
    workspace: Workspace,
    customer: MirrorCustomer,
    stale: bool = False,
    refreshing: bool = False,
    provider_status: str = "ok",
    now: datetime | None = None,
    real_now: datetime | None = None,
) -> Obj:
    """The panel's whole context for ``customer`` (a mirrored customer of ``workspace``).

    The JSON shape of ``docs/api.md``. Read from the mirror only: it never calls the
    billing provider (``services.refresh.customer_mirror_ensure`` decides about
    fetching and refreshing first). ``now`` defaults to the billing clock and
    ``real_now`` to the wall clock; the snapshot builder passes both, the instants its
    time horizon is collected against (``horizon_collect``).
    """
    facts = customer_facts_load(
        workspace=workspace,
        customer=customer,
        now=now or billing_now(workspace),
        real_now=real_now or timezone.now(),
    )
    primary, subscriptions = subscription_blocks(
        facts.subs,
        primary=facts.primary,
        catalog=facts.catalog,
        discounts=facts.discounts,
        pending_prices=facts.pending_prices,
        currency=facts.currency,
        now=facts.now,
    )
    payment_method = payment_method_block(facts.payment_method, facts.now)
    started = ts(period_start(facts.primary)) if facts.primary else None
    approvals = pending_approvals(facts.actions, facts.real_now)
    history = payment_history_page(
        workspace=workspace, customer_id=customer.stripe_id, now=facts.now
    )
    utilization = ((primary or {}).get("seats") or {}).get("utilization_pct")
    return {
        "customer": _customer_block(facts),
        "as_of": iso(customer_data_as_of(customer=customer)),
        "stale": stale,
        "refreshing": refreshing,
        "provider_status": provider_status,
        "now": facts.now.isoformat(),
        "account": _account_block(facts, primary, payment_method),
        "payment_status": _payment_status(facts),
        "payment_history": history,
        "credits": credits_block(
            customer, facts.balance_transactions, started, facts.currency, facts.actions
        ),
        "subscription": primary,
        "subscriptions": subscriptions,
        "lifetime_value": lifetime_value(
            facts.subs,
            catalog=facts.catalog,
            discounts=facts.discounts,
            revenue=facts.revenue,
            first_paid=facts.first_paid,
            still_live=bool(facts.live),
            currency=facts.currency,
            now=facts.now,
        ),
        "churn_risk": churn_risk(
            facts, seat_utilization=utilization, payment_method=payment_method
        ),
        "alerts": customer_alerts(
            facts, provider_status=provider_status, pending_approvals=approvals
        ),
        "pending_approvals": approvals,
        "recent_actions": recent_actions(facts.actions),
    }
