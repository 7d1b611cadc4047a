"""The per-customer decision lock (DESIGN.md section 9: rules that count history).

The refund pattern ("3 or more refunds in 90 days → Manager review") and the
remaining refundable amount of a charge are decided from the customer's earlier
actions. Read without a lock, N submissions arriving together each see the same
history and each decide as if it were alone: 8 simultaneous refunds all executed
directly where, one by one, the 4th goes to review. Deciding under this lock, and
counting the actions that are still in flight (``executing``, outcome unknown,
``pending_approval``), gives N concurrent submissions the decisions they would get
one by one.

How it is held:

* The lock is taken by an upsert of this customer's ``CustomerLock`` row as the
  deciding transaction's first statement (``INSERT … ON CONFLICT (workspace,
  customer) DO UPDATE``). On PostgreSQL the row, inserted or updated, stays locked
  until commit, exactly as ``SELECT … FOR UPDATE`` would; a second taker — even
  one racing to create the row for a first-time customer — waits for the first to
  commit and then updates the row (ON CONFLICT never aborts the transaction), and
  every later statement of a READ COMMITTED transaction reads what the previous
  holder committed. On SQLite (where ``select_for_update`` is a no-op) the write
  makes the transaction the single writer before it reads anything, so two deciders
  can neither interleave nor deadlock on the upgrade from reader to writer.
* One statement (it used to be a ``get_or_create`` outside the transaction, then an
  UPDATE inside). A decision that fails — no such customer, a precondition —
  rolls the transaction back, the row it created included: a request for a customer
  that does not exist leaves no lock row behind.
* It is held only for the decision and the INSERT of the action (a few queries):
  never across a call to the billing provider, which happens after commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from ..models import CustomerLock, Workspace


@contextmanager
def customer_decision_lock(*, workspace: Workspace, customer_id: str) -> Iterator[None]:
    """A transaction in which this customer's decisions are taken one at a time.

    Everything inside runs in one ``transaction.atomic()`` whose first statement locks
    the customer's row; it commits (and so releases the lock) when the block ends; an
    exception rolls it back.
    """
    with transaction.atomic():
        CustomerLock.objects.bulk_create(
            [
                CustomerLock(
                    workspace=workspace, customer_id=customer_id, last_decision_at=timezone.now()
                )
            ],
            update_conflicts=True,
            unique_fields=["workspace", "customer_id"],
            update_fields=["last_decision_at"],
        )
        yield
