"""Writing provider objects (Stripe's JSON shapes) into the local mirror.

Providers never write here themselves (they sit below services). What Stripe returns
reaches ``mirror_upsert`` through the services that called it: a write's result
carries the objects it changed (``mirror_provider_changes``), webhook re-reads and the
backfill store what they read; the sandbox's simulated objects are stored the same
way. Each row keeps the raw object in ``data`` and the typed columns the panel queries.

The mirror never goes back in time (issue 12). Every state is stamped with when it
was *read* (``read_at``: the request's send time, or a webhook payload's event
``created``), never with when it is written: a re-read whose answer arrives late
would otherwise overwrite what a later re-read already stored. A write replaces
the row only if its read is not older, compared under the row lock
(``select_for_update``; the insert race falls back to the same comparison), and
never moves Stripe's forward-only fields back (a canceled subscription, a paid or
void invoice, a deleted customer). A state whose read time is unknown inserts a
missing row but never overwrites one: the object is re-fetched instead. Skipped
writes bump nothing in the context cache; applied ones bump the customer's version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model, Q
from django.utils import timezone

from ..errors import BillingDeskError
from ..models import (
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorSubscriptionItem,
    Workspace,
)
from ..money import Money
from ..providers.base import MIRRORED_RETRIEVABLE, changes_of
from ..subscriptions import ENDED_STATUSES
from .mirror_fields import MAPPERS, mirror_model_for, ref, ts

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


SUBSCRIPTION_FINAL = ENDED_STATUSES
INVOICE_FINAL = frozenset({"paid", "void"})
INVOICE_EARLY = frozenset({"draft", "open"})
# What a write that cannot be ordered can re-fetch (``BillingProvider.retrieve_object``).
REFETCHABLE = MIRRORED_RETRIEVABLE


def mirror_row_locked(model: type[Model], *, workspace: Workspace, stripe_id: str) -> Model | None:
    """The object's mirror row, read with ``select_for_update`` (``None``: not mirrored).

    (workspace, stripe_id) is unique: no ``ORDER BY`` (``.first()`` adds one, whose
    compilation is a measurable share of a webhook's CPU).
    """
    return _one(
        model._default_manager.select_for_update().filter(workspace=workspace, stripe_id=stripe_id)
    )


def _one(queryset: Any) -> Model | None:
    """The only row of a query on a unique key, or ``None``."""
    rows = list(queryset[:1])
    return rows[0] if rows else None


# ``mirror_upsert(locked=...)`` not given: the row is read (and locked) here.
UNLOCKED: Any = object()


def mirror_read_clock() -> datetime:
    """The read time of a provider request about to be sent: call it *before* sending."""
    return timezone.now()


def mirror_upsert(
    *,
    workspace: Workspace,
    obj: Obj,
    read_at: datetime | None = None,
    source_updated: int | None = None,
    locked: Any = UNLOCKED,
) -> Model | None:
    """Store one provider object (and its embedded children) unless the mirror holds a newer state.

    ``read_at`` is when the request that returned ``obj`` was sent; ``source_updated``
    (a webhook event's ``created``, unix seconds) stands for it when the state comes
    from an event payload. Without either, the write cannot be ordered: on a Stripe
    workspace a new row is inserted (marked "read time unknown", so any ordered read
    replaces it) but an existing row is never overwritten — the object is re-fetched
    and that read is stored instead. The sandbox *is* the billing system, so its
    writes are the state itself and are stamped with now.

    ``locked``: the object's mirror row (or ``None``: no row) as the caller read it with
    ``select_for_update`` in the transaction it is still in — webhook processing decides
    on that row and passes it, so the row is not read and locked a second time. Such a
    caller also gives up on its whole transaction when a write fails (the event is rolled
    back and retried), so the write runs without a savepoint of its own (two statements
    per event: the concurrent-insert race keeps its savepoint).
    """
    if read_at is None and source_updated is not None:
        read_at = datetime.fromtimestamp(source_updated, tz=UTC)
    if read_at is None:
        return _upsert_unordered(workspace, obj)
    if locked is not UNLOCKED:
        connection = transaction.get_connection()
        if not connection.in_atomic_block:  # a lock outside a transaction is already gone
            raise ValueError("mirror_upsert(locked=...) needs the caller's transaction")
        return _upsert_row(workspace, obj, read_at, locked)
    return _upsert(workspace, obj, read_at, locked)


def _upsert_unordered(workspace: Workspace, obj: Obj) -> Model | None:
    if workspace.provider != Workspace.Provider.STRIPE:
        return _upsert(workspace, obj, mirror_read_clock())
    kind, object_id = str(obj.get("object") or ""), str(obj.get("id") or "")
    model = mirror_model_for(kind)
    if model is None or not object_id or (kind == "customer" and obj.get("deleted")):
        return _upsert(workspace, obj, None)
    if not model._default_manager.filter(workspace=workspace, stripe_id=object_id).exists():
        return _upsert(workspace, obj, None)  # inserted; an existing row is left alone
    return _refetch(workspace, kind, object_id)


def _refetch(workspace: Workspace, kind: str, object_id: str) -> Model | None:
    """Replace an unordered write by a fresh, ordered read; on failure the row stays as it is
    (the webhook that every Stripe change sends, or the next refresh, repairs it)."""
    from ..providers import get_provider

    model = mirror_model_for(kind)
    row = (
        model._default_manager.filter(workspace=workspace, stripe_id=object_id).first()
        if model
        else None
    )
    if kind not in REFETCHABLE:
        return row
    read_at = mirror_read_clock()
    try:
        current = get_provider(workspace).retrieve_object(kind, object_id)
    except BillingDeskError as exc:
        logger.warning(
            "re-fetch of %s %s for an unordered mirror write failed (%s); row left as it is",
            kind,
            object_id,
            exc.code,
        )
        return row
    return _upsert(workspace, current, read_at)


def _superseded(existing: Model, read_at: datetime | None, kind: str, fields: Obj) -> bool:
    """Whether the stored row is newer than the incoming state (then nothing is written)."""
    if read_at is None:
        return True  # an unordered state never overwrites
    stored = existing.read_at  # type: ignore[attr-defined]
    if stored is not None and read_at < stored:
        return True
    if stored is None and existing.source_updated > int(read_at.timestamp()):  # type: ignore[attr-defined]
        return True  # a row stored before read times were recorded
    status = getattr(existing, "status", "")
    if kind == "subscription":
        return status in SUBSCRIPTION_FINAL and fields["status"] not in SUBSCRIPTION_FINAL
    if kind == "invoice":
        return status in INVOICE_FINAL and fields["status"] in INVOICE_EARLY
    if kind == "customer":
        return bool(existing.deleted) and not fields["deleted"]  # type: ignore[attr-defined]
    return False


@transaction.atomic
def _upsert(
    workspace: Workspace, obj: Obj, read_at: datetime | None, locked: Any = UNLOCKED
) -> Model | None:
    """Compare-and-set under the row lock: on PostgreSQL a concurrent writer of the same
    object waits for ours and then compares against what we committed.

    One savepoint for the object and its children: a failure leaves none of them written
    and the caller's transaction usable (``mirror_provider_changes`` logs and goes on).
    """
    return _upsert_row(workspace, obj, read_at, locked)


def _upsert_row(
    workspace: Workspace, obj: Obj, read_at: datetime | None, locked: Any = UNLOCKED
) -> Model | None:
    """``_upsert`` inside its caller's savepoint (children: their parent's)."""
    kind = str(obj.get("object") or "")
    if kind == "customer" and obj.get("deleted"):
        # Final at Stripe (a deleted customer never comes back): needs no ordering.
        if MirrorCustomer.objects.filter(workspace=workspace, stripe_id=obj.get("id")).update(
            deleted=True
        ):
            _context_invalidate(workspace, obj)
        return None
    entry = MAPPERS.get(kind)
    if entry is None or not obj.get("id"):
        return None
    model, mapper = entry
    fields = mapper(obj)
    values = {
        **fields,
        "livemode": bool(obj.get("livemode")),
        "created": ts(obj.get("created")),
        "data": obj,
        "read_at": read_at,
        "source_updated": int(read_at.timestamp()) if read_at else 0,
    }
    if locked is UNLOCKED:
        existing = _one(
            model._default_manager.select_for_update().filter(
                workspace=workspace, stripe_id=obj["id"]
            )
        )
    else:
        existing = locked
    if existing is None:
        try:
            with transaction.atomic():
                instance = model._default_manager.create(
                    workspace=workspace, stripe_id=obj["id"], **values
                )
        except IntegrityError:
            # A concurrent writer inserted it between our read and our insert: lock theirs
            # and compare with it.
            existing = _one(
                model._default_manager.select_for_update().filter(
                    workspace=workspace, stripe_id=obj["id"]
                )
            )
            if existing is None:  # not the uniqueness race
                raise
    if existing is not None:
        if _superseded(existing, read_at, kind, fields):
            return existing  # older than what is stored: no write, no cache bump
        if kind in CATALOG_KINDS and _catalog_changed(existing, fields):
            _context_invalidate(workspace, obj, catalog=True)
        for name, value in values.items():
            setattr(existing, name, value)
        existing.save()
        instance = existing
    elif kind in CATALOG_KINDS:
        _context_invalidate(workspace, obj, catalog=True)
    _context_invalidate(workspace, obj)
    _upsert_children(workspace, obj, read_at)
    return instance


# Catalog rows are read by every customer's context (product names, pending prices).
CATALOG_KINDS = frozenset({"product", "price"})


def _catalog_changed(existing: Model, fields: Obj) -> bool:
    """Whether a product or price write changes what a context shows (not a mere re-read:
    every subscription upsert re-stores its items' prices)."""
    return any(getattr(existing, name) != value for name, value in fields.items())


def _context_invalidate(workspace: Workspace, obj: Obj, *, catalog: bool = False) -> None:
    """Mark the context snapshot of the customer this object belongs to stale (in this
    transaction) and drop its cached copy (after commit) — ``catalog``: a new or changed
    product or price, which moves every context of the workspace.

    Children (items, lines) bump nothing themselves: their parent's upsert does.
    """
    from .context_cache import customer_context_invalidate

    if catalog:
        customer_context_invalidate(workspace_id=workspace.pk)
        return
    kind = obj.get("object")
    customer_id = obj.get("id") if kind == "customer" else ref(obj.get("customer"))
    if not customer_id and kind == "refund":  # Stripe's refunds name only their charge
        customer_id = (
            MirrorCharge.objects.filter(workspace=workspace, stripe_id=ref(obj.get("charge")))
            .values_list("customer_id", flat=True)
            .first()
        )
    if customer_id:
        customer_context_invalidate(workspace_id=workspace.pk, customer_id=str(customer_id))


def _upsert_children(workspace: Workspace, obj: Obj, stamp: datetime | None) -> None:
    """The embedded objects, ordered by their parent's read (they were read with it), in
    the parent's savepoint (none of their own: a failing child fails the parent)."""
    kind = obj.get("object")
    if kind == "subscription":
        items = [
            {**item, "subscription": obj["id"]}
            for item in (obj.get("items") or {}).get("data") or []
        ]
        for item in items:  # prices are shared by subscriptions: each compared on its own
            price = item.get("price")
            if isinstance(price, dict):
                _upsert_row(workspace, price, stamp)
        _upsert_rows(workspace, items, stamp)
        seen = [item["id"] for item in items]
        # Items removed from the subscription (a plan change) leave the mirror too.
        if (obj.get("items") or {}).get("has_more") is False or items:
            MirrorSubscriptionItem.objects.filter(
                workspace=workspace, subscription_id=obj["id"]
            ).exclude(stripe_id__in=seen).delete()
    elif kind == "invoice":
        lines = (obj.get("lines") or {}).get("data") or []
        _upsert_rows(workspace, [{**line, "invoice": obj["id"]} for line in lines], stamp)
    elif kind == "charge":
        refunds = (obj.get("refunds") or {}).get("data") or []
        _upsert_rows(
            workspace,
            [{**r, "customer": r.get("customer") or obj.get("customer")} for r in refunds],
            stamp,
        )
    if kind == "subscription" and "discounts" in obj:
        _upsert_discounts(
            workspace,
            obj.get("discounts") or [],
            stamp,
            customer_id=ref(obj.get("customer")),
            subscription_id=obj["id"],
        )
    elif kind == "customer" and "discount" in obj:
        _upsert_discounts(
            workspace,
            [obj["discount"]] if obj.get("discount") else [],
            stamp,
            customer_id=obj["id"],
            subscription_id="",
        )


def _upsert_rows(workspace: Workspace, objs: list[Obj], stamp: datetime | None) -> None:
    """Children of one kind (an invoice's lines, a subscription's items, a charge's refunds),
    with exactly ``_upsert_row``'s effect on each, in three statements whatever their number:
    the stored ones read and locked in one query (each then compared and saved as
    ``_upsert_row`` does), the new ones inserted in one ``INSERT`` in a savepoint. A
    concurrent writer's insert (or two children with one id) fails that savepoint only:
    the new ones then take ``_upsert_row`` one by one, which locks theirs and compares.
    """
    objs = [child for child in objs if child.get("id")]
    entry = MAPPERS.get(str(objs[0].get("object") or "")) if objs else None
    if entry is None or any(child.get("object") != objs[0]["object"] for child in objs):
        for child in objs:
            _upsert_row(workspace, child, stamp)
        return
    model, mapper = entry
    stored = {
        row.stripe_id: row  # type: ignore[attr-defined]
        for row in model._default_manager.select_for_update().filter(
            workspace=workspace, stripe_id__in=[child["id"] for child in objs]
        )
    }
    fresh = []
    for child in objs:
        if child["id"] in stored:
            _upsert_row(workspace, child, stamp, stored[child["id"]])
        else:
            fresh.append(child)
    if not fresh:
        return
    rows = [
        model(
            workspace=workspace,
            stripe_id=child["id"],
            **mapper(child),
            livemode=bool(child.get("livemode")),
            created=ts(child.get("created")),
            data=child,
            read_at=stamp,
            source_updated=int(stamp.timestamp()) if stamp else 0,
        )
        for child in fresh
    ]
    try:
        with transaction.atomic():
            model._default_manager.bulk_create(rows)
    except IntegrityError:
        for child in fresh:
            _upsert_row(workspace, child, stamp)
        return
    for child in fresh:  # what ``_upsert_row`` does after inserting one
        _context_invalidate(workspace, child)
        _upsert_children(workspace, child, stamp)


def _upsert_discounts(
    workspace: Workspace,
    discounts: list[Any],
    stamp: datetime | None,
    *,
    customer_id: str,
    subscription_id: str,
) -> None:
    """The discounts an object carries now: expanded ones are stored, and any mirrored
    discount of that owner that is no longer listed is marked inactive (removed)."""
    current = [ref(d) for d in discounts if ref(d)]
    for discount in discounts:
        if isinstance(discount, dict) and discount.get("id"):
            _upsert_row(
                workspace,
                {
                    **discount,
                    "customer": discount.get("customer") or customer_id,
                    "subscription": discount.get("subscription") or subscription_id,
                },
                stamp,
            )
    if stamp is not None:
        mirror_discounts_deactivate(
            workspace=workspace,
            customer_id=customer_id,
            subscription_id=subscription_id,
            listed=current,
            read_at=stamp,
        )


def mirror_discounts_deactivate(
    *,
    workspace: Workspace,
    customer_id: str,
    subscription_id: str,
    listed: list[str],
    read_at: datetime,
) -> int:
    """Mark inactive the owner's mirrored discounts that a read at ``read_at`` no longer lists
    (only those stored from an older read: a newer one knows better)."""
    return (
        MirrorDiscount.objects.filter(
            workspace=workspace,
            customer_id=customer_id,
            subscription_id=subscription_id,
            active=True,
        )
        .filter(
            Q(read_at__lte=read_at)
            | Q(read_at__isnull=True, source_updated__lte=int(read_at.timestamp()))
        )
        .exclude(stripe_id__in=listed)
        .update(active=False)
    )


def mirror_customer_balance_update(
    *, workspace: Workspace, customer_id: str, balance: Money, read_at: datetime | None = None
) -> int:
    """Stripe's ending balance after a balance transaction we just made (credit granted).

    Only a balance in the customer's own currency is the customer's ``balance``. Ordered
    like any write (``read_at``: when the balance transaction was sent); without a read
    time the customer is re-fetched instead.
    """
    if read_at is None:
        if workspace.provider == Workspace.Provider.STRIPE:
            return 1 if _refetch(workspace, "customer", customer_id) is not None else 0
        read_at = mirror_read_clock()
    with transaction.atomic():
        customer = (
            MirrorCustomer.objects.select_for_update()
            .filter(workspace=workspace, stripe_id=customer_id, currency=balance.currency)
            .first()
        )
        if customer is None or (customer.read_at is not None and read_at < customer.read_at):
            return 0
        customer.balance = balance.amount
        customer.data = {**(customer.data or {}), "balance": balance.amount}
        customer.read_at = read_at
        customer.source_updated = int(read_at.timestamp())
        customer.save(update_fields=["balance", "data", "read_at", "source_updated", "synced_at"])
        _context_invalidate(workspace, {"object": "customer", "id": customer_id})
    return 1


def mirror_provider_changes(*, workspace: Workspace, result: Any) -> int:
    """Store what a provider write changed (``result.changes``, see ``providers.base``).

    Called by the service that made the write, right after the provider answered, so
    the panel shows the result at once. A failure to mirror is logged, never raised:
    the money has moved, and the webhook that follows (or the next refresh) repairs
    the mirror. Returns how many objects are mirrored (stored now or already newer).
    """
    changes = changes_of(result)
    stored = 0
    for obj in changes.objects:
        try:
            if mirror_upsert(workspace=workspace, obj=obj, read_at=changes.read_at) is not None:
                stored += 1
        except Exception:  # the provider write stands; webhooks repair the mirror
            logger.exception(
                "mirror upsert failed after a provider write (workspace %s, %s %s)",
                workspace.pk,
                obj.get("object"),
                obj.get("id"),
            )
    for change in changes.balances:
        try:
            mirror_customer_balance_update(
                workspace=workspace,
                customer_id=change.customer_id,
                balance=change.balance,
                read_at=changes.read_at,
            )
        except Exception:
            logger.exception("mirror balance update failed (workspace %s)", workspace.pk)
    return stored


def mirror_upsert_many(
    *,
    workspace: Workspace,
    objects: Iterable[Obj],
    read_at: datetime | None = None,
    source_updated: int | None = None,
) -> int:
    """Each object through ``mirror_upsert``; how many are mirrored (stored now or already newer)."""
    count = 0
    for obj in objects:
        stored = mirror_upsert(
            workspace=workspace, obj=obj, read_at=read_at, source_updated=source_updated
        )
        if stored is not None:
            count += 1
    return count
