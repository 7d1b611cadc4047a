"""Storing a whole customer bundle in the mirror in a handful of queries.

``mirror_upsert`` stores one object per call — a savepoint, a locking read and a
write for the object and again for each embedded child — which is right for a
webhook and costs a first panel load of a rich customer over two hundred queries
(Acme's 22 months: ~230 queries, 150 ms and more on two busy cores), on top of
the Stripe round trip the agent is already waiting for.

``mirror_upsert_bulk`` gives the same end state with one ``SELECT`` for every mirror
table at once (a ``UNION ALL`` of the id lookups) and one ``INSERT`` per table for the
rows that do not exist yet — the usual case for a customer seen for the first time —
and, for the rows that do (a refresh), one locking read and one ``UPDATE`` per table.
It runs in its caller's transaction without a savepoint of its own (only the inserts
have one, for the race below), and ``mirror_bundle_upsert`` hands a customer it
inserted back with ``bundle_synced_at`` already stored, so the first answer's bundle
store needs no ``UPDATE`` and no re-read of the customer after it. An existing row is
written only when ``mirror_upsert``'s own compare says so (``services.mirror``'s
``_superseded``, the same function, under the same row locks), so the two paths never
disagree about an existing row. The embedded children are expanded exactly as
``mirror_upsert`` expands them, and the clean-up it does for a subscription's removed
items and an owner's removed discounts runs for every owner whose write applied.
``tests/billing_app/test_mirror_bulk.py`` checks that both paths leave identical rows.

Ordering (issue 12): every object is stamped with the bundle's ``read_at`` (when its
reads were sent). New rows are inserted with it; an existing row is updated only when
that is not older than the ``read_at`` it holds (and a final state is not undone), so a
bundle whose answer arrived late never overwrites what a newer read (a webhook, another
refresh) stored meanwhile, and its clean-up of removed items and discounts runs only
where its own write applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import IntegerField, Model, Q, Value
from django.utils import timezone

from ..models import MirrorCustomer, MirrorDiscount, MirrorSubscriptionItem, Workspace
from .mirror import (
    CATALOG_KINDS,
    _catalog_changed,
    _superseded,
    mirror_upsert,
)
from .mirror_fields import MAPPERS, ref, ts

Obj = dict[str, Any]


def _expand(obj: Obj) -> list[Obj]:
    """The object and its embedded children, children after their parent (as ``mirror_upsert``)."""
    kind = obj.get("object")
    out = [obj]
    if kind == "subscription":
        for item in (obj.get("items") or {}).get("data") or []:
            item = {**item, "subscription": obj["id"]}
            if isinstance(item.get("price"), dict):
                out.append(item["price"])
            out.append(item)
        for discount in obj.get("discounts") or []:
            if isinstance(discount, dict) and discount.get("id"):
                out.append(
                    {
                        **discount,
                        "customer": discount.get("customer") or ref(obj.get("customer")),
                        "subscription": discount.get("subscription") or obj["id"],
                    }
                )
    elif kind == "invoice":
        out += [
            {**line, "invoice": obj["id"]} for line in (obj.get("lines") or {}).get("data") or []
        ]
    elif kind == "charge":
        out += [
            {**refund, "customer": refund.get("customer") or obj.get("customer")}
            for refund in (obj.get("refunds") or {}).get("data") or []
        ]
    elif kind == "customer" and isinstance(obj.get("discount"), dict) and obj["discount"].get("id"):
        discount = obj["discount"]
        out.append(
            {
                **discount,
                "customer": discount.get("customer") or obj["id"],
                "subscription": discount.get("subscription") or "",
            }
        )
    return out


def mirror_upsert_bulk(
    *, workspace: Workspace, objects: Iterable[Obj | None], read_at: datetime
) -> int:
    """Store provider objects read at ``read_at``; returns how many were given.

    Same result as calling ``mirror_upsert(workspace=, obj=, read_at=)`` for each object in turn.
    """
    return _bulk(workspace, objects, read_at, synced_customer="")[0]


def mirror_bundle_upsert(
    *, workspace: Workspace, objects: Iterable[Obj | None], read_at: datetime, customer_id: str
) -> MirrorCustomer | None:
    """``mirror_upsert_bulk`` for a customer's bundle: when it inserts ``customer_id``'s row
    (the first answer's case), the row is stored with ``bundle_synced_at = read_at`` and
    returned — as the database holds it, so the caller needs no re-read. ``None``: the
    customer was already mirrored (the caller moves ``bundle_synced_at`` forward itself)."""
    return _bulk(workspace, objects, read_at, synced_customer=customer_id)[1]


def _existing(workspace: Workspace, by_model: dict[type[Model], list[Obj]]) -> set[tuple[str, str]]:
    """Which of the objects the mirror holds already: one query for every table."""
    models = list(by_model)
    lookups = [
        model.objects.filter(  # type: ignore[attr-defined]
            workspace=workspace, stripe_id__in=[p["id"] for p in by_model[model]]
        )
        .annotate(table=Value(index, output_field=IntegerField()))
        .values_list("table", "stripe_id")
        .order_by()
        for index, model in enumerate(models)
    ]
    if not lookups:
        return set()
    found = lookups[0].union(*lookups[1:], all=True) if len(lookups) > 1 else lookups[0]
    kind_of = {
        (index, p["id"]): str(p["object"])
        for index, model in enumerate(models)
        for p in by_model[model]
    }
    return {(kind_of[(table, sid)], sid) for table, sid in found}


@transaction.atomic(savepoint=False)
def _bulk(
    workspace: Workspace, objects: Iterable[Obj | None], read_at: datetime, synced_customer: str
) -> tuple[int, MirrorCustomer | None]:
    top = [o for o in objects if o and o.get("id") and str(o.get("object")) in MAPPERS]
    slow = [o for o in top if o.get("object") == "customer" and o.get("deleted")]
    top = [o for o in top if o not in slow]
    stamp = read_at
    expanded: dict[tuple[str, str], Obj] = {}
    for obj in top:
        for part in _expand(obj):
            if part.get("id") and str(part.get("object")) in MAPPERS:
                key = (str(part["object"]), str(part["id"]))
                expanded.pop(key, None)  # the last state given wins, in its last position
                expanded[key] = part
    by_model: dict[type[Model], list[Obj]] = {}
    for (kind, _), part in expanded.items():
        by_model.setdefault(MAPPERS[kind][0], []).append(part)
    existing = _existing(workspace, by_model)
    synced: MirrorCustomer | None = None
    try:
        with transaction.atomic():
            for model, parts in by_model.items():
                new = [p for p in parts if (str(p["object"]), p["id"]) not in existing]
                if new:
                    rows = [_row(model, workspace, p, stamp) for p in new]
                    for row in rows:
                        if model is MirrorCustomer and row.stripe_id == synced_customer:  # type: ignore[attr-defined]
                            row.bundle_synced_at = stamp  # type: ignore[attr-defined]
                            synced = row  # type: ignore[assignment]
                    model.objects.bulk_create(rows)  # type: ignore[attr-defined]
    except IntegrityError:  # a webhook stored one of them meanwhile: the careful path for all
        for obj in top + slow:
            mirror_upsert(workspace=workspace, obj=obj, read_at=stamp)
        return len(top) + len(slow), None
    applied, catalog = _update_existing(workspace, by_model, existing, stamp)
    written = {key for key in expanded if key not in existing or key in applied}
    # A new product or price can name what other customers' contexts showed as an id.
    catalog = catalog or any(
        kind in CATALOG_KINDS for kind, sid in expanded if (kind, sid) not in existing
    )
    # The owners' clean-up runs where their own write applied (new, or newer than stored).
    _clean_up_owners(
        workspace, [o for o in top if (str(o["object"]), str(o["id"])) in written], stamp
    )
    for obj in slow:
        mirror_upsert(workspace=workspace, obj=obj, read_at=stamp)
    _invalidate(workspace, [expanded[key] for key in written], catalog=catalog)
    if synced is not None and synced.pk is None:  # a backend without RETURNING: read it
        synced = MirrorCustomer.objects.filter(
            workspace=workspace, stripe_id=synced_customer
        ).first()
    return len(top) + len(slow), synced


def _update_existing(
    workspace: Workspace,
    by_model: dict[type[Model], list[Obj]],
    existing: set[tuple[str, str]],
    stamp: datetime,
) -> tuple[set[tuple[str, str]], bool]:
    """The rows the mirror holds already: per table, one locking read of them all (in id
    order: two bundles never wait on each other crosswise) and one ``UPDATE`` of those the
    bundle's read is newer than — ``mirror_upsert``'s own compare (``_superseded``: never
    back in ``read_at``, final states kept), under the same row locks.

    Returns the keys written and whether a product or price changed (every context shows
    them). A row gone since the lookup (deleted meanwhile) takes ``mirror_upsert``.
    """
    applied: set[tuple[str, str]] = set()
    catalog = False
    now = timezone.now()
    for model, parts in by_model.items():
        old = [p for p in parts if (str(p["object"]), p["id"]) in existing]
        if not old:
            continue
        rows: dict[str, Model] = {
            row.stripe_id: row  # type: ignore[attr-defined]
            for row in model._default_manager.select_for_update()
            .filter(workspace=workspace, stripe_id__in=[p["id"] for p in old])
            .order_by("pk")
        }
        changed: list[Model] = []
        names: set[str] = set()
        for part in old:
            kind = str(part["object"])
            row = rows.get(part["id"])
            if row is None:
                mirror_upsert(workspace=workspace, obj=part, read_at=stamp)
                continue
            fields = MAPPERS[kind][1](part)
            if _superseded(row, stamp, kind, fields):
                continue
            if kind in CATALOG_KINDS and _catalog_changed(row, fields):
                catalog = True
            values = {
                **fields,
                "livemode": bool(part.get("livemode")),
                "created": ts(part.get("created")),
                "data": part,
                "read_at": stamp,
                "source_updated": int(stamp.timestamp()),
                "synced_at": now,  # auto_now: bulk_update does not set it
            }
            for name, value in values.items():
                setattr(row, name, value)
            names.update(values)
            changed.append(row)
            applied.add((kind, part["id"]))
        if changed:
            model._default_manager.bulk_update(changed, sorted(names))
    return applied, catalog


def _row(model: type[Model], workspace: Workspace, obj: Obj, stamp: datetime) -> Model:
    fields = MAPPERS[str(obj["object"])][1](obj)
    return model(
        workspace=workspace,
        stripe_id=obj["id"],
        **fields,
        livemode=bool(obj.get("livemode")),
        created=ts(obj.get("created")),
        data=obj,
        read_at=stamp,
        source_updated=int(stamp.timestamp()),
    )


def _clean_up_owners(workspace: Workspace, top: list[Obj], stamp: datetime) -> None:
    """What ``mirror_upsert`` removes for each owner — items no longer on a subscription,
    discounts no longer on a subscription or customer — in one statement each for all the
    owners (an ``OR`` of one condition per owner)."""
    items_gone = Q()
    discounts_gone = Q()
    for obj in top:
        kind = obj.get("object")
        if kind == "subscription":
            items = (obj.get("items") or {}).get("data") or []
            if (obj.get("items") or {}).get("has_more") is False or items:
                items_gone |= Q(subscription_id=obj["id"]) & ~Q(
                    stripe_id__in=[i["id"] for i in items]
                )
            if "discounts" in obj:
                discounts_gone |= _not_listed(
                    obj.get("discounts") or [], ref(obj.get("customer")), obj["id"]
                )
        elif kind == "customer" and "discount" in obj:
            listed = [obj["discount"]] if obj.get("discount") else []
            discounts_gone |= _not_listed(listed, obj["id"], "")
    if items_gone:
        MirrorSubscriptionItem.objects.filter(workspace=workspace).filter(items_gone).delete()
    if discounts_gone:
        # ``services.mirror.mirror_discounts_deactivate``'s rule, for every owner at once:
        # only discounts stored from an older read (a newer one knows better).
        MirrorDiscount.objects.filter(workspace=workspace, active=True).filter(
            Q(read_at__lte=stamp)
            | Q(read_at__isnull=True, source_updated__lte=int(stamp.timestamp()))
        ).filter(discounts_gone).update(active=False)


def _not_listed(listed: list[Any], customer_id: str, subscription_id: str) -> Q:
    """The owner's discounts that the owner no longer lists."""
    return Q(customer_id=customer_id, subscription_id=subscription_id) & ~Q(
        stripe_id__in=[ref(d) for d in listed if ref(d)]
    )


def _invalidate(workspace: Workspace, written: list[Obj], *, catalog: bool) -> None:
    """The customers whose objects were written (children name theirs too: refunds), and the
    whole workspace when a product or price is new or changed."""
    from .context_cache import customer_context_invalidate

    customers = {
        str(o["id"]) if o.get("object") == "customer" else ref(o.get("customer")) for o in written
    } - {""}
    if catalog:
        # A new catalog row can name what other customers' contexts showed as an id.
        customer_context_invalidate(workspace_id=workspace.pk)
    for customer_id in customers:
        customer_context_invalidate(workspace_id=workspace.pk, customer_id=customer_id)
