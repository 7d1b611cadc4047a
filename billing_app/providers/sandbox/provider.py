"""``SandboxProvider``: a deterministic billing simulation with Stripe's semantics, in the database.

The simulation's state *is* the mirror: every write builds the Stripe-shaped
objects Stripe would return (``objects``) and stores them with
``services.mirror.mirror_upsert``; reads return the stored ``data``. So the demo
and the service-layer tests exercise exactly the code paths a Stripe workspace
uses, without a Stripe key or a network.

What it simulates, as Stripe does it:

* refunds never exceed the refundable remainder (``amount_captured −
  amount_refunded``), are refused on disputed charges, update the charge's
  ``amount_refunded`` / ``refunded`` and create a refund object;
* credits are customer balance transactions with a negative amount, moving
  ``customer.balance``; invoices apply the balance (``starting_balance``);
* trial extension only while trialing; ``pause_collection``; cancellation at the
  period end or at once, with ``cancellation_details``;
* plan changes: the preview prorates by seconds over the current period — unused
  time on the old price credited, remaining time on the new price charged — and
  the change produces the same numbers (pin ``proration_date``). An upgrade swaps
  the item's price at once and invoices the proration immediately (Stripe's
  ``proration_behavior=always_invoice``); a downgrade is scheduled for the period
  end (a subscription schedule, recorded as ``schedule`` plus
  ``metadata.pending_price_id`` / ``pending_change_at``). Only changes within the
  same billing interval and currency are simulated;
* seat changes prorate the same way and are invoiced at once (a decrease becomes
  a credit on the customer balance);
* coupons applied through ``discounts``; payment links to the open invoice's
  hosted page (``https://sandbox.billing-desk.invalid/i/<invoice>``) or a
  Checkout-like session; a Billing-Portal-like link for a payment-method update;
  tax ids and address; a grace period before dunning resumes.

Determinism and exactly-once: object ids derive from the idempotency key
(``re_sbx_<sha256(workspace, key)>``), and the first result of each key is kept
in ``SandboxIdempotency``; the same key returns that result without acting
again, the same key with other parameters is refused (``idempotency_conflict``,
as Stripe does). Writes hold the workspace's ``SandboxControl`` row lock, so
concurrent calls act one at a time.

``SandboxControl.down`` makes every call raise ``ProviderUnavailable``;
``SandboxControl.clock`` freezes time (a test clock).
"""

from __future__ import annotations

from .control import sandbox_control_get
from .credits_refunds import SandboxCreditsRefunds
from .customers import SandboxCustomers
from .links import SandboxLinks
from .plan_changes import SandboxPlanChanges, plan_item
from .reads import SandboxReads
from .subscriptions import SandboxSubscriptions


class SandboxProvider(
    SandboxReads,
    SandboxLinks,
    SandboxCreditsRefunds,
    SandboxPlanChanges,
    SandboxSubscriptions,
    SandboxCustomers,
):
    def ping(self) -> bool:
        return not sandbox_control_get(workspace=self.workspace).down


__all__ = ["SandboxProvider", "plan_item"]
