"""A small stateful Stripe on ``responses`` callbacks, for the provider contract suite.

It answers the requests ``StripeProvider`` sends with what Stripe would do to the
account it holds — objects in Stripe's shapes (the world's, built from the project's
Stripe fixtures), and Stripe's semantics for the parameters the provider chooses:

* ``proration_behavior=always_invoice`` invoices the proration at once (and charges
  the card); ``create_prorations`` leaves it pending for the next invoice; ``none``
  prorates nothing; proration is by seconds of the current period;
* a subscription schedule's next phase applies at the end of the current one, then
  the schedule releases the subscription; ``cancel_at_period_end`` ends it then;
* ``pause_collection`` is set or cleared (``""``); metadata merges;
* idempotency keys replay the first answer, and refuse other parameters;
* tax ids are validated per type; expansions are honoured where the provider asks.

``advance(to)`` is Stripe's side of a test clock: every period end up to ``to`` is
applied (schedules, cancellations, renewal invoices with the pending prorations,
charged to the card — an expired card declines), and the events Stripe would send are
queued in ``events`` for the harness to deliver as signed webhooks.
"""

from __future__ import annotations

from .clock import FakeClock
from .customers import FakeCustomers
from .invoices import FakeInvoices
from .payments import FakePayments
from .subscriptions import FakeSubscriptions
from .wire import StripeRefusal, nest


class FakeStripe(FakeClock, FakeInvoices, FakeSubscriptions, FakePayments, FakeCustomers):
    """The fake Stripe account: every part above, answering on ``responses``."""


__all__ = ["FakeStripe", "StripeRefusal", "nest"]
