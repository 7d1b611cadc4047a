"""Storing a whole customer bundle in the mirror in a handful of queries.

``mirror_upsert`` stores one object per call — a savepoint, a locking read and a
write for the object and again for each embedded child — which is right for a
webhook and costs a first panel load of a rich customer over two hundred queries
(Acme's 22 months: ~230 queries, 150 ms and more on two busy cores), on top of
the Stripe round trip the agent is already waiting for.

``mirror_upsert_bulk`` gives the same end state with one ``SELECT`` for every mirror
table at once (a ``UNION ALL`` of the id lookups) and one ``INSERT`` per table for the
rows that do not exist yet — the usual case for a customer seen for the first time.
It runs in its caller's transaction without a savepoint of its own (only the inserts
have one, for the race below), and ``mirror_bundle_upsert`` hands a customer it
inserted back with ``bundle_synced_at`` already stored, so the first answer's bundle
store needs no ``UPDATE`` and no re-read of the customer after it. Any object whose row already exists
goes through ``mirror_upsert`` itself (its out-of-order guard, child clean-up and
all), so the two paths never disagree about an existing row. The embedded
children are expanded exactly as ``mirror_upsert`` expands them, and the clean-up
it does for a subscription's removed items and an owner's removed discounts runs
for new owners too. ``tests/billing_app/test_mirror_bulk.py`` checks that both
paths leave identical rows.

Ordering: every object is stamped with the bundle's ``read_at`` (when its reads
were sent). New rows are inserted with it; existing rows go through
``mirror_upsert``'s compare-and-set, so a bundle whose answer arrived late never
overwrites what a newer read (a webhook, another refresh) stored meanwhile, and its
clean-up of removed items and discounts runs only where its own write applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import IntegerField, Model, Value

from ..models import MirrorCustomer, MirrorSubscriptionItem, Workspace
from .mirror import mirror_discounts_deactivate, mirror_upsert
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
    for (kind, sid), part in expanded.items():
        if (kind, sid) in existing:
            mirror_upsert(workspace=workspace, obj=part, read_at=stamp)
    # Existing owners were cleaned up by mirror_upsert, and only if their write applied.
    _clean_up_owners(
        workspace, [o for o in top if (str(o["object"]), str(o["id"])) not in existing], stamp
    )
    for obj in slow:
        mirror_upsert(workspace=workspace, obj=obj, read_at=stamp)
    _invalidate(workspace, [o for o in top if (str(o["object"]), str(o["id"])) not in existing])
    if synced is not None and synced.pk is None:  # a backend without RETURNING: read it
        synced = MirrorCustomer.objects.filter(
            workspace=workspace, stripe_id=synced_customer
        ).first()
    return len(top) + len(slow), synced


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
    """What ``mirror_upsert`` removes for each owner: items no longer on a subscription,
    discounts no longer on a subscription or customer."""
    for obj in top:
        kind = obj.get("object")
        if kind == "subscription":
            items = (obj.get("items") or {}).get("data") or []
            if (obj.get("items") or {}).get("has_more") is False or items:
                MirrorSubscriptionItem.objects.filter(
                    workspace=workspace, subscription_id=obj["id"]
                ).exclude(stripe_id__in=[i["id"] for i in items]).delete()
            if "discounts" in obj:
                _deactivate(
                    workspace,
                    obj.get("discounts") or [],
                    stamp,
                    ref(obj.get("customer")),
                    obj["id"],
                )
        elif kind == "customer" and "discount" in obj:
            listed = [obj["discount"]] if obj.get("discount") else []
            _deactivate(workspace, listed, stamp, obj["id"], "")


def _deactivate(
    workspace: Workspace,
    listed: list[Any],
    stamp: datetime,
    customer_id: str,
    subscription_id: str,
) -> None:
    mirror_discounts_deactivate(
        workspace=workspace,
        customer_id=customer_id,
        subscription_id=subscription_id,
        listed=[ref(d) for d in listed if ref(d)],
        read_at=stamp,
    )


def _invalidate(workspace: Workspace, top: list[Obj]) -> None:
    from .context_cache import customer_context_invalidate

    customers = {
        str(o["id"]) if o.get("object") == "customer" else ref(o.get("customer")) for o in top
    } - {""}
    if any(o.get("object") in ("product", "price") for o in top):
        # A new catalog row can name what other customers' contexts showed as an id.
        customer_context_invalidate(workspace_id=workspace.pk)
    for customer_id in customers:
        customer_context_invalidate(workspace_id=workspace.pk, customer_id=customer_id)
