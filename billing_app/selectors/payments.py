"""A customer's payment history from the mirror, newest first, paged by a keyset cursor.

One row per finalized invoice (with the charge that paid it, or the last failed
attempt) and one per charge that belongs to no invoice (a one-off payment, or
the second of a duplicate pair). Rows are ordered by (date, id) descending; a
row's date is when the invoice was paid, else when it was finalized, or when
the standalone charge was made.

The first page is the last six months (at most ``FIRST_PAGE_MAX`` rows); later
pages hold ``PAGE_SIZE`` rows each. The cursor is opaque: the (date, id) of the
last row shown and the customer id, signed so that a tampered or foreign
cursor is refused with 400 ``invalid_cursor`` rather than silently misread.
It holds nothing else (no signing time, no clock reading), so the first page
built at two instants is the same page — a stored context (issue 15) stays
true until its oldest row leaves the six months, the instant it notes
(``selectors.context.horizon``). Each page costs three queries whatever the
history's length; rows are read without the provider's JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from django.core import signing
from django.db.models import Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from ..clock import billing_now
from ..errors import NotFound, ValidationFailed
from ..models import MirrorCharge, MirrorCustomer, MirrorInvoice, Workspace
from ..money import money_json
from .horizon import TICK, horizon_note, months_window_exit

PAGE_SIZE = 12
FIRST_PAGE_MONTHS = 6
FIRST_PAGE_MAX = 50
_CURSOR_SALT = "billing-desk.payments.cursor"

# In English (the catalog's source); ``status_label`` reads them in the active language.
STATUS_LABELS = {
    "paid": gettext_noop("Paid"),
    "open": gettext_noop("Open"),
    "failed": gettext_noop("Failed"),
    "refunded": gettext_noop("Refunded"),
    "partially_refunded": gettext_noop("Partially refunded"),
    "disputed": gettext_noop("Disputed"),
    "uncollectible": gettext_noop("Uncollectible"),
    "succeeded": gettext_noop("Paid"),
    "pending": gettext_noop("Pending"),
    "draft": gettext_noop("Draft"),
    "void": gettext_noop("Void"),
}
# Stripe's invoice ``billing_reason``, as a payment row describes the invoice.
BILLING_REASONS = {
    "subscription_create": gettext_noop("subscription create"),
    "subscription_cycle": gettext_noop("subscription cycle"),
    "subscription_update": gettext_noop("subscription update"),
    "subscription_threshold": gettext_noop("subscription threshold"),
    "subscription": gettext_noop("subscription"),
    "manual": gettext_noop("manual"),
    "upcoming": gettext_noop("upcoming"),
    "quote_accept": gettext_noop("quote accept"),
    "automatic_pending_invoice_item_invoice": gettext_noop(
        "automatic pending invoice item invoice"
    ),
}


def status_label(status: str) -> str:
    label = STATUS_LABELS.get(status)
    return gettext(label) if label else status.replace("_", " ").capitalize()


def billing_reason_words(reason: str) -> str:
    words = BILLING_REASONS.get(reason)
    return gettext(words) if words else reason.replace("_", " ")


CARD_BRANDS = {
    "amex": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


# What is read of a charge to show it: its columns, not the provider's JSON (``data``,
# ``outcome``, kilobytes each) — but the payment method details a bank debit is labelled from.
CHARGE_DEFERRED = ("data", "outcome")


def charges_light(qs: QuerySet[MirrorCharge]) -> QuerySet[MirrorCharge]:
    """Charges without their JSON, with ``method_details`` (``charge_method_label``)."""
    return qs.defer(*CHARGE_DEFERRED).annotate(
        method_details=KeyTransform("payment_method_details", "data")
    )


def card_brand_label(brand: str) -> str:
    if brand == "card":  # no brand known
        return gettext("Card")
    return CARD_BRANDS.get(brand, brand.replace("_", " ").title())


def charge_method_label(charge: MirrorCharge) -> str:
    """``Visa 4242`` for a card, ``Bank account 6789`` for a bank debit."""
    if charge.card_brand or charge.card_last4:
        brand = card_brand_label(charge.card_brand)
        return f"{brand} {charge.card_last4}".strip()
    if "data" in charge.get_deferred_fields():  # read without its JSON (``charges_light``)
        details = getattr(charge, "method_details", None) or {}
    else:
        details = (charge.data or {}).get("payment_method_details") or {}
    kind = details.get("type") or ""
    sub = details.get(kind) or {}
    if kind in {"us_bank_account", "sepa_debit", "bacs_debit", "au_becs_debit", "acss_debit"}:
        return (gettext("Bank account %(last4)s") % {"last4": sub.get("last4") or ""}).strip()
    return kind.replace("_", " ").capitalize() if kind else ""


def charge_refundable(charge: MirrorCharge) -> int:
    if charge.status != "succeeded" or charge.disputed:
        return 0
    return max(0, charge.amount_captured - charge.amount_refunded)


def _charge_status(charge: MirrorCharge) -> str:
    if charge.status == "failed":
        return "failed"
    if charge.disputed:
        return "disputed"
    if charge.amount_refunded and charge.amount_refunded >= charge.amount_captured:
        return "refunded"
    if charge.amount_refunded:
        return "partially_refunded"
    return charge.status or "pending"


def _date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def _pick_charge(charges: list[MirrorCharge]) -> MirrorCharge | None:
    """The charge that paid the invoice, else its latest attempt."""
    succeeded = [c for c in charges if c.status == "succeeded"]
    pool = succeeded or charges
    return max(pool, key=lambda c: (c.created or timezone.now(), c.stripe_id)) if pool else None


def _failure(charge: MirrorCharge | None) -> dict[str, str] | None:
    if charge is None or charge.status != "failed":
        return None
    return {
        "code": charge.failure_code,
        "decline_code": charge.decline_code,
        "message": charge.failure_message,
    }


@dataclass(frozen=True)
class _Row:
    date: datetime
    object_id: str
    body: dict[str, Any]


def _invoice_row(invoice: MirrorInvoice, charge: MirrorCharge | None) -> _Row:
    currency = invoice.currency
    status = invoice.status
    if status == "paid" and charge is not None and charge.status == "succeeded":
        charge_state = _charge_status(charge)
        if charge_state in {"refunded", "partially_refunded", "disputed"}:
            status = charge_state
    elif status == "open" and (invoice.attempt_count > 0 or (charge and charge.status == "failed")):
        status = "failed"
    amount = invoice.amount_paid if invoice.status == "paid" else invoice.amount_due
    date = invoice.paid_at or invoice.created or timezone.now()
    body = {
        "id": invoice.stripe_id,
        "type": "invoice",
        "date": _date(date),
        "datetime": date.isoformat(),
        "amount": money_json(amount, currency),
        "status": status,
        "status_label": status_label(status),
        "method": charge_method_label(charge) if charge else "",
        "invoice_id": invoice.stripe_id,
        "invoice_number": invoice.number,
        "charge_id": charge.stripe_id if charge else None,
        "refunded": money_json(charge.amount_refunded if charge else 0, currency),
        "refundable": money_json(charge_refundable(charge) if charge else 0, currency),
        "disputed": bool(charge and charge.disputed),
        "hosted_invoice_url": invoice.hosted_invoice_url or None,
        "invoice_pdf": invoice.invoice_pdf or None,
        "description": billing_reason_words(invoice.billing_reason),
        "attempt_count": invoice.attempt_count,
        "failure": _failure(charge),
    }
    return _Row(date=date, object_id=invoice.stripe_id, body=body)


def _charge_row(charge: MirrorCharge) -> _Row:
    status = _charge_status(charge)
    date = charge.created or timezone.now()
    body = {
        "id": charge.stripe_id,
        "type": "charge",
        "date": _date(date),
        "datetime": date.isoformat(),
        "amount": money_json(charge.amount, charge.currency),
        "status": status,
        "status_label": status_label(status),
        "method": charge_method_label(charge),
        "invoice_id": None,
        "invoice_number": "",
        "charge_id": charge.stripe_id,
        "refunded": money_json(charge.amount_refunded, charge.currency),
        "refundable": money_json(charge_refundable(charge), charge.currency),
        "disputed": charge.disputed,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "description": charge.description,
        "attempt_count": 1,
        "failure": _failure(charge),
    }
    return _Row(date=date, object_id=charge.stripe_id, body=body)


def cursor_encode(*, customer_id: str, date: datetime, object_id: str) -> str:
    return signing.Signer(salt=_CURSOR_SALT).sign_object(
        {"c": customer_id, "d": date.isoformat(), "i": object_id}, compress=True
    )


def cursor_decode(*, customer_id: str, cursor: str) -> tuple[datetime, str]:
    try:
        payload = signing.Signer(salt=_CURSOR_SALT).unsign_object(cursor)
        if payload["c"] != customer_id:
            raise ValueError("cursor of another customer")
        date = datetime.fromisoformat(payload["d"])
        object_id = str(payload["i"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(
            gettext("The cursor is not valid; start again from the first page."),
            code="invalid_cursor",
        ) from exc
    if date.tzinfo is None:
        raise ValidationFailed(gettext("The cursor is not valid."), code="invalid_cursor")
    return date, object_id


def _before(qs: QuerySet, field: str, date: datetime, object_id: str) -> QuerySet:
    return qs.filter(Q(**{f"{field}__lt": date}) | Q(**{field: date, "stripe_id__lt": object_id}))


def _invoices(workspace: Workspace, customer_id: str) -> QuerySet[MirrorInvoice]:
    return (
        MirrorInvoice.objects.filter(workspace=workspace, customer_id=customer_id)
        .exclude(status__in=["draft", "void", ""])
        .defer("data")
        .annotate(row_date=Coalesce("paid_at", "created"))
    )


def _standalone_charges(workspace: Workspace, customer_id: str) -> QuerySet[MirrorCharge]:
    """The customer's charges that paid no invoice (by their ``invoice_id`` or payment intent).

    The invoices' payment intents are one uncorrelated subquery, read once (a hashed
    ``NOT IN``), not a lookup per charge: invoices have no index on the payment intent,
    and a correlated ``NOT EXISTS`` made the first page quadratic in the history.
    """
    invoiced = (
        MirrorInvoice.objects.filter(workspace=workspace, customer_id=customer_id)
        .exclude(payment_intent_id="")
        .values("payment_intent_id")
    )
    return charges_light(
        MirrorCharge.objects.filter(
            workspace=workspace, customer_id=customer_id, invoice_id=""
        ).exclude(payment_intent_id__in=Subquery(invoiced))
    )


def _attached(
    workspace: Workspace, invoices: Iterable[MirrorInvoice]
) -> dict[str, list[MirrorCharge]]:
    by_pi: dict[str, list[MirrorCharge]] = {}
    by_invoice: dict[str, list[MirrorCharge]] = {}
    pis = {i.payment_intent_id for i in invoices if i.payment_intent_id}
    ids = {i.stripe_id for i in invoices}
    if not pis and not ids:
        return {}
    rows = charges_light(
        MirrorCharge.objects.filter(workspace=workspace).filter(
            Q(payment_intent_id__in=pis) | Q(invoice_id__in=ids)
        )
    )
    for charge in rows:
        if charge.payment_intent_id in pis:
            by_pi.setdefault(charge.payment_intent_id, []).append(charge)
        elif charge.invoice_id:
            by_invoice.setdefault(charge.invoice_id, []).append(charge)
    result: dict[str, list[MirrorCharge]] = {}
    for invoice in invoices:
        result[invoice.stripe_id] = by_pi.get(invoice.payment_intent_id, []) + by_invoice.get(
            invoice.stripe_id, []
        )
    return result


def payment_history_page(
    *,
    workspace: Workspace,
    customer_id: str,
    cursor: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``{"items": [...], "next_cursor": str | None}`` — see the module docstring."""
    now = now or timezone.now()
    invoices = _invoices(workspace, customer_id)
    charges = _standalone_charges(workspace, customer_id)
    since: datetime | None = None
    if cursor:
        date, object_id = cursor_decode(customer_id=customer_id, cursor=cursor)
        invoices = _before(invoices, "row_date", date, object_id)
        charges = _before(charges, "created", date, object_id)
        size = PAGE_SIZE
    else:
        since = now - relativedelta(months=FIRST_PAGE_MONTHS)
        size = FIRST_PAGE_MAX
    # ``row_date`` is annotated by ``_invoices`` (the plugin cannot see annotations).
    invoice_rows = list(invoices.order_by("-row_date", "-stripe_id")[: size + 1])  # type: ignore[misc]
    charge_rows = list(charges.order_by("-created", "-stripe_id")[: size + 1])
    attached = _attached(workspace, invoice_rows)
    rows = [_invoice_row(i, _pick_charge(attached.get(i.stripe_id, []))) for i in invoice_rows]
    rows += [_charge_row(c) for c in charge_rows]
    rows.sort(key=lambda r: (r.date, r.object_id), reverse=True)
    shown = [r for r in rows if since is None or r.date >= since][:size]
    more = len(rows) > len(shown)
    next_cursor = None
    if more:
        if shown:
            last = shown[-1]
            next_cursor = cursor_encode(
                customer_id=customer_id, date=last.date, object_id=last.object_id
            )
        else:
            # Nothing in the six months: the next page starts at the newest row, which is
            # older (the cursor's bound is exclusive, hence one tick past it). Not ``since``:
            # that moves with the clock while the page does not.
            newest = rows[0]
            next_cursor = cursor_encode(
                customer_id=customer_id, date=newest.date + TICK, object_id=""
            )
    if since is not None and shown:
        # The first page changes when its oldest row leaves the six months.
        horizon_note(months_window_exit(shown[-1].date, FIRST_PAGE_MONTHS))
    return {"items": [r.body for r in shown], "next_cursor": next_cursor}


def customer_payments(
    *, workspace: Workspace, customer_id: str, cursor: str | None = None
) -> dict[str, Any]:
    """One page of a mirrored customer's payment history; 404 for a customer not in this workspace."""
    if not MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).exists():
        raise NotFound(gettext("No such billing customer."), code="customer_not_found")
    page = payment_history_page(
        workspace=workspace,
        customer_id=customer_id,
        cursor=cursor or None,
        now=billing_now(workspace),
    )
    return {"customer_id": customer_id, **page}
