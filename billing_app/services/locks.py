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

* The lock row is created (``get_or_create``) *outside* the deciding transaction,
  so two first-time submissions racing to create it never abort the transaction
  that decides.
* The lock is taken by an ``UPDATE`` of that row as the transaction's first
  statement. On PostgreSQL an UPDATE holds the row lock until commit, exactly as
  ``SELECT … FOR UPDATE`` would, and every later statement of a READ COMMITTED
  transaction reads what the previous holder committed. On SQLite (where
  ``select_for_update`` is a no-op) the UPDATE makes the transaction the single
  writer before it reads anything, so two deciders can neither interleave nor
  deadlock on the upgrade from reader to writer.
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

    Everything inside runs in one ``transaction.atomic()`` that commits (and so
    releases the lock) when the block ends; an exception rolls it back.
    """
    lock, _ = CustomerLock.objects.get_or_create(workspace=workspace, customer_id=customer_id)
    with transaction.atomic():
        CustomerLock.objects.filter(pk=lock.pk).update(last_decision_at=timezone.now())
        yield
