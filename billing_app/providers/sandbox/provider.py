"""``SandboxProvider``: a deterministic billing simulation with Stripe's semantics, in the database.

The simulation's state is kept as the Stripe-shaped objects Stripe would return
(``objects``), stored in the mirror through the ``store`` port the services layer
registers (``ports``; providers import no services); reads return the stored
``data``. What Stripe would announce by webhook (a failed or paid charge) goes to
the same intake as Stripe's deliveries (the ``deliver`` port). So the demo and the
service-layer tests exercise the code paths a Stripe workspace uses, without a
Stripe key or a network — and the provider contract suite
(``tests/billing_app/providers/contract``) holds the two providers together.

The class is assembled from one mixin per seam:

* ``state`` — the lock, the clock, exactly-once writes, reading and storing objects;
* ``invoicing`` — invoices finalized and collected, pending invoice items, payment events;
* ``reads`` — the customer bundle, search, pages for the backfill, one object by id;
* ``links`` — payment links, invoices re-sent, the payment-method update page;
* ``credits_refunds`` — balance credits and refunds within Stripe's limits;
* ``plan_changes`` — prorated previews, upgrades now, downgrades at the period end
  (the plan item and the checks from the rulebook, ``billing_app.subscriptions``);
* ``subscriptions`` — trial, pause, cancellation, seats (billed on the next
  invoice), discounts, grace periods;
* ``customers`` — tax ids and the billing address;
* ``advance`` — the clock-advance step (``sandbox_advance``): renewals, scheduled
  downgrades and cancellations applied as the periods end.

Determinism and exactly-once: object ids derive from the idempotency key
(``re_sbx_<sha256(workspace, key)>``), and the first result of each key is kept
in ``SandboxIdempotency``; the same key returns that result without acting
again, the same key with other parameters is refused (``idempotency_conflict``,
as Stripe does). Writes hold the workspace's ``SandboxControl`` row lock, so
concurrent calls act one at a time.

``SandboxControl.down`` makes every call raise ``ProviderUnavailable``;
``SandboxControl.clock`` freezes time (a test clock), which ``advance`` moves on.
"""

from __future__ import annotations

from datetime import datetime

from ...models import Workspace
from .advance import AdvanceResult, SandboxClockAdvance
from .control import sandbox_control_get
from .credits_refunds import SandboxCreditsRefunds
from .customers import SandboxCustomers
from .items import plan_item
from .links import SandboxLinks
from .plan_changes import SandboxPlanChanges
from .reads import SandboxReads
from .subscriptions import SandboxSubscriptions


class SandboxProvider(
    SandboxReads,
    SandboxLinks,
    SandboxCreditsRefunds,
    SandboxPlanChanges,
    SandboxSubscriptions,
    SandboxCustomers,
    SandboxClockAdvance,
):
    def ping(self) -> bool:
        return not sandbox_control_get(workspace=self.workspace).down


def sandbox_advance(*, workspace: Workspace, to: datetime) -> AdvanceResult:
    """Advance the workspace's sandbox clock to ``to``, doing what Stripe does meanwhile
    (period ends, renewals, scheduled downgrades, cancellations): see ``advance``."""
    return SandboxProvider(workspace).advance(to=to)


def sandbox_invoice_now(*, workspace: Workspace, subscription_id: str, idempotency_key: str) -> str:
    """Invoice a subscription's pending items (seat prorations) now, as Stripe's
    ``invoices.create`` with ``pending_invoice_items_behavior=include`` does; the invoice id."""
    return SandboxProvider(workspace).invoice_pending_items(
        subscription_id=subscription_id, idempotency_key=idempotency_key
    )


__all__ = [
    "AdvanceResult",
    "SandboxProvider",
    "plan_item",
    "sandbox_advance",
    "sandbox_invoice_now",
]
