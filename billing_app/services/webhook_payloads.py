"""When a Stripe event's own payload is the mirror's next state, so no re-read is needed (issue 15).

Re-reading every event's object from Stripe made processing as slow as Stripe (one call
per event, behind its latency and rate limit). An event's ``data.object`` *is* the
object's state as of the event's ``created`` (Stripe's clock, whole seconds), so when
that state is newer than the mirror's it is written as it is — no call.

**Ordering** is the mirror's own (``services.mirror``, issue 12): a stored state is as
of its ``read_at`` (a re-read's send time, or an earlier payload's ``created``); a
payload's state is as of ``created`` and, since ``created`` has whole seconds, may be
anywhere in ``[created, created + 1 s)``. Against the mirror row (read under its lock):

* no row (the mirror never saw the object), or a row read before ``created`` → the
  payload is newer: written, stamped with ``created``;
* a row read at ``created + 1 s`` or later → the mirror is newer: nothing is written
  (the event is still processed: its hooks run against the mirror's newer state);
* a row read within the event's own second (``created`` ≤ ``read_at`` < ``created + 1 s``;
  two events of one second, or a re-read sent in that second), or stored with no read
  time at all → the order cannot be decided: the object is **re-read**
  (``services.webhook_rereads``), as before.

**Partial payloads** are re-read too. A payload is Stripe's standard representation,
never expanded, while the mirror keeps what the re-read expands: the expanded parts are
carried over from the stored row when it names the same objects, and the payload is
*partial* when it does not:

* ``customer.discount.*`` — the discount's ``source.coupon`` is only an id (the mirror
  keeps the coupon's terms), and the event does not carry the owner whose discounts
  changed;
* ``customer.tax_id.*`` — the mirror keeps tax ids on the customer; the event carries
  one tax id, not the customer's list;
* ``charge.dispute.*`` — the payload is the dispute; what changes in the mirror is the
  disputed charge;
* ``payment_intent.*`` — intents are not mirrored; what the hooks read is the intent's
  latest charge, which the payload names by id only: partial unless that charge is
  mirrored in its final state (``succeeded`` / ``failed``, which it never leaves);
* a customer the mirror has never seen — ``tax_ids`` is includable, never in a payload;
* a customer or subscription naming a discount the mirror does not hold (its coupon);
* an attempted invoice whose payment the mirror does not know — ``payments`` (the
  invoice's payment intent and charge, which the failure workflow follows) is includable;
* a charge whose refunds (``refunds`` is includable) the mirror does not account for;
* a truncated object: one without a field the mirror reads that Stripe's standard
  representation always carries (``WHOLE_FIELDS``).

``previous_attributes`` never makes a payload partial: it says what changed, the object
is still whole. The delete events (``customer.deleted``, ``invoice.deleted``,
``product.deleted``, ``price.deleted``) never called Stripe and keep their own path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Model, Sum

from ..models import MirrorCharge, MirrorRefund, Workspace
from .mirror import UNLOCKED, mirror_row_locked, mirror_upsert
from .mirror_fields import mirror_model_for, ref

Obj = dict[str, Any]

# Which events' payloads may be applied, and the object type each must carry; ``None``:
# always re-read (partial, see above) or handled by its own payload path (deletes).
# Ordered: the first matching pattern wins, as ``webhook_rereads.REFRESHERS``.
PAYLOAD_KINDS: list[tuple[str, str | None]] = [
    ("customer.subscription.*", "subscription"),
    ("customer.discount.*", None),
    ("customer.tax_id.*", None),
    ("customer.deleted", None),
    ("customer.*", "customer"),
    ("invoice.deleted", None),
    ("invoice.*", "invoice"),
    ("charge.dispute.*", None),
    ("charge.*", "charge"),
    ("payment_intent.payment_failed", "payment_intent"),
    ("payment_intent.succeeded", "payment_intent"),
    ("refund.*", "refund"),
    ("payment_method.*", "payment_method"),
    ("product.deleted", None),
    ("price.deleted", None),
    ("product.*", "product"),
    ("price.*", "price"),
]

# The top-level fields the mirror reads from each object (``services.mirror_fields``) that
# Stripe's standard representation always carries (checked against Stripe's own example
# objects, ``../shared/stripe/fixtures3.json``). A payload without one of them is truncated:
# partial, re-read — never stored as if the field were empty.
WHOLE_FIELDS: dict[str, tuple[str, ...]] = {
    "customer": (
        "email", "name", "description", "phone", "address", "currency", "balance",
        "delinquent", "tax_exempt", "metadata", "invoice_settings", "default_source",
        "created", "livemode",
    ),
    "subscription": (
        "customer", "status", "collection_method", "currency", "start_date", "items",
        "cancel_at_period_end", "cancel_at", "canceled_at", "ended_at", "trial_start",
        "trial_end", "pause_collection", "default_payment_method", "latest_invoice",
        "schedule", "cancellation_details", "metadata", "discounts", "created", "livemode",
    ),
    "invoice": (
        "customer", "number", "status", "collection_method", "billing_reason", "currency",
        "subtotal", "total", "total_taxes", "total_discount_amounts", "amount_due",
        "amount_paid", "amount_remaining", "starting_balance", "ending_balance",
        "hosted_invoice_url", "invoice_pdf", "period_start", "period_end", "due_date",
        "status_transitions", "attempt_count", "attempted", "next_payment_attempt", "parent",
        "lines", "created", "livemode",
    ),
    "charge": (
        "customer", "payment_intent", "amount", "amount_captured", "amount_refunded",
        "currency", "status", "paid", "refunded", "disputed", "failure_code",
        "failure_message", "outcome", "payment_method", "payment_method_details",
        "description", "created", "livemode",
    ),
    "refund": (
        "charge", "payment_intent", "amount", "currency", "status", "reason", "metadata",
        "created",
    ),
    "payment_method": ("customer", "type", "billing_details", "created", "livemode"),
    "product": ("name", "active", "metadata", "created", "livemode"),
    "price": (
        "product", "nickname", "lookup_key", "active", "currency", "unit_amount", "type",
        "recurring", "metadata", "created", "livemode",
    ),
    "payment_intent": ("latest_charge", "status"),
}  # fmt: skip

CHARGE_FINAL = {"payment_intent.payment_failed": "failed", "payment_intent.succeeded": "succeeded"}
REFUNDS_COUNTED = ("pending", "succeeded", "requires_action")


@dataclass(frozen=True)
class PayloadDecision:
    """What processing does with an event's payload.

    ``decided``: processed without calling Stripe (``apply`` written, if any); otherwise
    the object is re-read. ``current``: the newest state known, for the hooks. ``reason``:
    why (``newer``, ``never_seen``, ``mirror_newer``, ``same_second``, ``unordered``,
    ``partial: ...``),
    for the log and the tests.
    """

    decided: bool
    reason: str
    current: Obj | None = None
    apply: Obj | None = None
    # The mirror row ``apply`` replaces, as read under its lock here (``None``: no row);
    # handed to ``mirror_upsert`` so it is not read and locked twice.
    row: Any = UNLOCKED


def webhook_payload_kind(event_type: str, obj: Obj) -> str | None:
    """The mirrored object type this event's payload is a whole state of, or None (re-read)."""
    for pattern, kind in PAYLOAD_KINDS:
        if pattern == event_type or (
            pattern.endswith(".*") and event_type.startswith(pattern[:-1])
        ):
            if kind is None or obj.get("object") != kind or not obj.get("id"):
                return None
            if kind == "invoice" and not str(obj["id"]).startswith("in_"):
                return None  # a preview (invoice.upcoming): nothing is stored, nothing re-read
            return kind
    return None


def _reread(reason: str) -> PayloadDecision:
    return PayloadDecision(decided=False, reason=reason)


def payload_order(row: Model | None, created: int) -> str:
    """``newer`` / ``never_seen`` / ``mirror_newer`` / ``same_second`` / ``unordered``: the
    payload (as of ``created``, whole seconds) against the stored row, as ``services.mirror``
    orders (``unordered``: the row was stored with no read time, nothing to compare)."""
    if row is None:
        return "never_seen"
    read_at = row.read_at  # type: ignore[attr-defined]
    if read_at is None:
        stamp = int(row.source_updated)  # type: ignore[attr-defined]
        if stamp == 0:  # stored with no read time (an unordered insert): cannot be compared
            return "unordered"
        return (
            "newer" if stamp < created else ("mirror_newer" if stamp > created else "same_second")
        )
    start = datetime.fromtimestamp(created, tz=UTC)
    if read_at < start:
        return "newer"
    if read_at >= start + timedelta(seconds=1):
        return "mirror_newer"
    return "same_second"


def webhook_payload_decide(
    *, workspace: Workspace, event_type: str, obj: Obj, created: int
) -> PayloadDecision:
    """Decide, inside the processing transaction, whether the payload settles the event.

    Locks the mirrored row (``select_for_update``) so the decision and the write that
    follows see the same stored state; ``mirror_upsert`` compares again under that lock.
    """
    kind = webhook_payload_kind(event_type, obj)
    if kind is None or not created:
        return _reread("partial: not a whole mirrored object" if created else "no event time")
    missing = [name for name in WHOLE_FIELDS[kind] if name not in obj]
    if missing:
        return _reread(f"partial: truncated (no {', '.join(missing[:3])})")
    if kind == "payment_intent":
        return _intent(workspace, event_type, obj)
    model = mirror_model_for(kind)
    assert model is not None
    row = mirror_row_locked(model, workspace=workspace, stripe_id=obj["id"])
    order = payload_order(row, created)
    if order in ("same_second", "unordered"):
        return _reread(order)
    stored: Obj = (row.data if row is not None else None) or {}  # type: ignore[attr-defined]
    if order == "mirror_newer":
        return PayloadDecision(decided=True, reason=order, current=stored or None)
    merged, partial = _complete(workspace, kind, obj, stored, row is not None)
    if partial:
        return _reread(f"partial: {partial}")
    return PayloadDecision(decided=True, reason=order, current=merged, apply=merged, row=row)


def _intent(workspace: Workspace, event_type: str, intent: Obj) -> PayloadDecision:
    latest = ref(intent.get("latest_charge"))
    if not latest:  # no charge was made: nothing to mirror, nothing a re-read would add
        return PayloadDecision(decided=True, reason="newer", current=intent)
    status = (
        MirrorCharge.objects.filter(workspace=workspace, stripe_id=latest)
        .values_list("status", flat=True)
        .first()
    )
    if status != CHARGE_FINAL[event_type]:
        return _reread("partial: the intent's latest charge is not mirrored in its final state")
    return PayloadDecision(decided=True, reason="newer", current=intent)


def _discount_of(stored: Any, discount_id: str) -> Obj | None:
    """The stored, expanded discount with this id (from a customer's ``discount`` or a
    subscription's ``discounts``)."""
    candidates = stored if isinstance(stored, list) else [stored]
    for candidate in candidates:
        if _expanded(candidate) and candidate.get("id") == discount_id:
            return candidate
    return None


def _expanded(discount: Any) -> bool:
    """A discount object whose coupon is expanded (the mirror keeps the coupon's terms)."""
    if not isinstance(discount, dict):
        return False
    source = discount.get("source") or {}
    return isinstance(source.get("coupon"), dict) or isinstance(discount.get("coupon"), dict)


def _complete(
    workspace: Workspace, kind: str, obj: Obj, stored: Obj, known: bool
) -> tuple[Obj, str]:
    """The payload with the re-read's expansions carried over from the stored state;
    ``(object, "")``, or ``(obj, why)`` when the payload is partial."""
    merged = dict(obj)
    if kind == "customer":
        if "tax_ids" not in merged:
            if not known:
                return obj, "a customer never mirrored: its tax ids are not in the payload"
            if "tax_ids" in stored:
                merged["tax_ids"] = stored["tax_ids"]
        discount = merged.get("discount")
        if discount and not _expanded(discount):
            found = _discount_of(stored.get("discount"), ref(discount))
            if found is None:
                return obj, "a discount the mirror does not hold (its coupon is an id)"
            merged["discount"] = found
    elif kind == "subscription":
        discounts = merged.get("discounts") or []
        carried = []
        for discount in discounts:
            if _expanded(discount):
                carried.append(discount)
                continue
            found = _discount_of(stored.get("discounts") or [], ref(discount))
            if found is None:
                return obj, "a discount the mirror does not hold (its coupon is an id)"
            carried.append(found)
        if "discounts" in merged:
            merged["discounts"] = carried
    elif kind == "invoice":
        if "payments" not in merged:
            if (stored.get("payments") or {}).get("data"):
                merged["payments"] = stored["payments"]
            elif merged.get("attempted"):
                return obj, "an attempted invoice whose payment the mirror does not know"
    elif kind == "charge":
        refunded = int(merged.get("amount_refunded") or 0)
        if "refunds" not in merged and refunded:
            mirrored = (
                MirrorRefund.objects.filter(
                    workspace=workspace, charge_id=merged["id"], status__in=REFUNDS_COUNTED
                ).aggregate(total=Sum("amount"))["total"]
                or 0
            )
            if mirrored != refunded:
                return obj, "refunds the mirror does not account for"
    return merged, ""


def webhook_payload_apply(*, workspace: Workspace, decision: PayloadDecision, created: int) -> None:
    """Write the payload's state, stamped with the event's ``created`` (the mirror orders it)."""
    if decision.apply is not None:
        mirror_upsert(
            workspace=workspace, obj=decision.apply, source_updated=created, locked=decision.row
        )
