"""Payment failures: recorded from webhooks (and the sandbox), tracked to recovery, escalated at 3.

Where failures come from (DESIGN.md section 6, "Payment failure"):

* Stripe's ``charge.failed``, ``payment_intent.payment_failed`` and
  ``invoice.payment_failed`` — hooks registered in ``services.webhooks``' registry
  by ``events``. They run inside the event's processing transaction, *after* the
  mirror holds the object's re-read state, so they read the mirror, never the payload.
* The sandbox's simulated payments, which emit the same event types through the
  same hooks — the same records either way.
* ``payment_failures_sync``: a backfill from the mirror (the demo seed, a new
  workspace's history).

The package, one module per step of a failure's life:

* ``record`` — one failed attempt → one row (exactly once per attempt, whatever
  the order or number of events), the streak's consecutive count and, at 3, the
  once-per-streak suspension warning flag; the backfill.
* ``recovery`` — a successful payment marks the failures it settles recovered,
  whichever came first (a failure recorded after its success is recovered at once).
* ``events`` — the webhook hooks, and the fetch of an invoice's failed charge that
  was not mirrored (an outbox message, after commit).
* ``escalation`` — after the warning: an internal note on the customer's latest
  ticket, then the CSM outreach (a helpdesk ticket for the ``csm_group``, else a
  note), each at most once per streak, delivered and retried by the outbox.
* ``lookups`` — the mirror reads and the per-customer lock the others share.

Decline codes in words come from ``vocabulary`` (one table for the panel, the
notes, the dashboard and the customer messages).
"""

from __future__ import annotations

from .escalation import (
    TicketTarget,
    csm_outreach_body,
    csm_outreach_subject,
    customer_latest_ticket,
    escalation_deliver,
    escalation_give_up,
    payment_failure_escalate,
    payment_failure_escalation_give_up,
    suspension_warning_body,
)
from .events import (
    FAILURE_EVENTS,
    SUCCESS_EVENTS,
    invoice_resolve_deliver,
    invoice_resolve_give_up,
    payment_failure_event_handle,
    payment_failure_invoice_resolve,
    payment_success_event_handle,
)
from .record import (
    SUSPENSION_THRESHOLD,
    FailureReason,
    failure_reason,
    payment_failure_record,
    payment_failures_sync,
)
from .recovery import RECOVERY_ACTION_KINDS, payment_failures_recover

__all__ = [
    "FAILURE_EVENTS",
    "RECOVERY_ACTION_KINDS",
    "SUCCESS_EVENTS",
    "SUSPENSION_THRESHOLD",
    "FailureReason",
    "TicketTarget",
    "csm_outreach_body",
    "csm_outreach_subject",
    "customer_latest_ticket",
    "escalation_deliver",
    "escalation_give_up",
    "failure_reason",
    "invoice_resolve_deliver",
    "invoice_resolve_give_up",
    "payment_failure_escalate",
    "payment_failure_escalation_give_up",
    "payment_failure_event_handle",
    "payment_failure_invoice_resolve",
    "payment_failure_record",
    "payment_failures_recover",
    "payment_failures_sync",
    "payment_success_event_handle",
    "suspension_warning_body",
]
