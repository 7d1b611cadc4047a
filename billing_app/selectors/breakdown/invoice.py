"""``invoice_breakdown``: the invoice taken apart, compared with the usual one, the next invoice."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext

from ...catalog import ActionKind
from ...errors import NotFound
from ...models import MirrorInvoice, MirrorInvoiceLine, Workspace
from ...money import format_money, money_json
from ...playbook import invoice_period
from .differences import (
    balance_differences,
    discount_and_tax_differences,
    one_time_differences,
    recurring_differences,
    residual_difference,
)
from .lines import (
    LineCatalog,
    Recurring,
    iso,
    line_catalog_load,
    line_kind,
    line_name,
    recurring_charges,
)
from .next_invoice import next_invoice_estimate
from .prorations import proration_groups

Obj = dict[str, Any]

REGULAR_REASONS = ("subscription_cycle", "subscription_create")
USUAL_CANDIDATES = 6


def _usual_invoice(workspace: Workspace, invoice: MirrorInvoice) -> MirrorInvoice | None:
    """The subscription's previous regular invoice: what the customer usually pays."""
    if not invoice.subscription_id:
        return None
    rows = list(
        MirrorInvoice.objects.filter(
            workspace=workspace,
            customer_id=invoice.customer_id,
            subscription_id=invoice.subscription_id,
            status__in=("paid", "open"),
            billing_reason__in=REGULAR_REASONS,
            created__lt=invoice.created,
        )
        .exclude(stripe_id=invoice.stripe_id)
        .order_by("-created")[:USUAL_CANDIDATES]
    )
    if not rows:
        return None
    with_prorations = set(
        MirrorInvoiceLine.objects.filter(
            workspace=workspace, invoice_id__in=[r.stripe_id for r in rows], proration=True
        ).values_list("invoice_id", flat=True)
    )
    return next((r for r in rows if r.stripe_id not in with_prorations), rows[0])


def _tax_rate(invoice: MirrorInvoice) -> Decimal | None:
    taxable = invoice.subtotal - invoice.total_discount
    if not invoice.tax or taxable <= 0:
        return None
    return Decimal(invoice.tax) / Decimal(taxable)


def _interval(lines: list[MirrorInvoiceLine], catalog: LineCatalog) -> str:
    """The invoice's cycle in a word: its first recurring line's (monthly when none)."""
    for line in lines:
        if line.price_id in catalog.price_intervals and not line.proration:
            return catalog.interval_word(line.price_id)
    return "monthly"


def _line_rows(
    lines: list[MirrorInvoiceLine], catalog: LineCatalog, currency: str
) -> tuple[list[Obj], dict[str, int]]:
    """Each line classified, and the invoice's amount per kind of line."""
    rows = []
    components: dict[str, int] = defaultdict(int)
    for line in lines:
        kind = line_kind(line, catalog)
        product = catalog.product_of(line)
        components[kind] += line.amount
        rows.append(
            {
                "id": line.stripe_id,
                "kind": "seats" if kind == "plan" and int(line.quantity or 1) > 1 else kind,
                "description": line.description,
                "product": line_name(line, catalog, product) if product else None,
                "quantity": line.quantity,
                "amount": money_json(line.amount, currency),
                "proration": line.proration,
                "period_start": iso(line.period_start),
                "period_end": iso(line.period_end),
                "discount": money_json(line.discount_amount, currency),
                "tax": money_json(line.tax_amount, currency),
            }
        )
    return rows, components


def _customer_parts(
    invoice: MirrorInvoice,
    lines: list[MirrorInvoiceLine],
    catalog: LineCatalog,
    recurring: dict[str, Recurring],
    prorations: list[Obj],
    credit_applied: int,
) -> list[str]:
    """The invoice's parts as the customer message lists them."""
    currency = invoice.currency.upper()
    parts = [
        f"{r.quantity} × {r.name} {format_money(r.amount, currency)}"
        if r.quantity > 1
        else f"{r.name} {format_money(r.amount, currency)}"
        for r in recurring.values()
    ]
    parts += [f"{group['summary']} {group['amount']['display']}" for group in prorations]
    one_time = gettext("one-time charge")
    parts += [
        f"{line.description or one_time} {format_money(line.amount, currency)}"
        for line in lines
        if line_kind(line, catalog) == "one_time"
    ]
    if invoice.total_discount:
        parts.append(
            gettext("discount %(amount)s")
            % {"amount": format_money(-invoice.total_discount, currency)}
        )
    if invoice.tax:
        parts.append(gettext("tax %(amount)s") % {"amount": format_money(invoice.tax, currency)})
    if credit_applied:
        parts.append(
            gettext("account credit %(amount)s")
            % {"amount": format_money(-credit_applied, currency)}
        )
    return parts


def _explanation(differences: list[Obj], usual: MirrorInvoice | None, interval: str) -> str:
    reasons = [d["explanation"] for d in differences if d["kind"] != "other"]
    if len(reasons) > 1:
        return gettext("%(reasons)s; and %(last)s") % {
            "reasons": "; ".join(reasons[:-1]),
            "last": reasons[-1],
        }
    if reasons:
        return str(reasons[0])
    if usual is not None:
        return gettext("it is your usual %(interval)s charge, the same as invoice %(number)s") % {
            "interval": interval,
            "number": usual.number or usual.stripe_id,
        }
    return gettext("it is the %(interval)s charge of your subscription") % {"interval": interval}


def _invoice_block(
    invoice: MirrorInvoice, lines: list[MirrorInvoiceLine], credit_applied: int, charged: int
) -> Obj:
    currency = invoice.currency.upper()
    return {
        "id": invoice.stripe_id,
        "number": invoice.number,
        "status": invoice.status,
        "billing_reason": invoice.billing_reason,
        "created": iso(invoice.created),
        "period": invoice_period(invoice, lines),
        "subscription_id": invoice.subscription_id or None,
        "subtotal": money_json(invoice.subtotal, currency),
        "discount": money_json(invoice.total_discount, currency),
        "tax": money_json(invoice.tax, currency),
        "total": money_json(invoice.total, currency),
        "credit_applied": money_json(credit_applied, currency),
        "amount_due": money_json(invoice.amount_due, currency),
        "amount_paid": money_json(invoice.amount_paid, currency),
        "amount_remaining": money_json(invoice.amount_remaining, currency),
        "charged": money_json(charged, currency),
        "hosted_invoice_url": invoice.hosted_invoice_url or None,
        "invoice_pdf": invoice.invoice_pdf or None,
    }


def _components(invoice: MirrorInvoice, by_kind: dict[str, int], credit_applied: int) -> Obj:
    currency = invoice.currency.upper()
    return {
        "plan": money_json(by_kind["plan"], currency),
        "addons": money_json(by_kind["addon"], currency),
        "proration": money_json(by_kind["proration"], currency),
        "one_time": money_json(by_kind["one_time"], currency),
        "discounts": money_json(-invoice.total_discount, currency),
        "credits_applied": money_json(-credit_applied, currency),
        "tax": money_json(invoice.tax, currency),
    }


def _usual_block(usual: MirrorInvoice | None, currency: str) -> Obj | None:
    if usual is None:
        return None
    return {
        "amount": money_json(usual.total, currency),
        "invoice_id": usual.stripe_id,
        "invoice_number": usual.number,
        "date": iso(usual.created),
    }


def _invoice_of(workspace: Workspace, customer_id: str, invoice_id: str) -> MirrorInvoice:
    invoice = MirrorInvoice.objects.filter(
        workspace=workspace, stripe_id=invoice_id, customer_id=customer_id
    ).first()
    if invoice is None:
        raise NotFound(
            gettext("No invoice %(id)s for this customer.") % {"id": invoice_id},
            code="invoice_not_found",
            details={"id": invoice_id},
        )
    return invoice


def _lines_of(
    workspace: Workspace, invoice: MirrorInvoice, usual: MirrorInvoice | None
) -> tuple[list[MirrorInvoiceLine], list[MirrorInvoiceLine], LineCatalog]:
    """The invoice's lines, the usual invoice's, and what they name: three queries."""
    ids = [invoice.stripe_id] + ([usual.stripe_id] if usual else [])
    all_lines = list(
        MirrorInvoiceLine.objects.filter(workspace=workspace, invoice_id__in=ids).order_by(
            "period_start", "id"
        )
    )
    lines = [line for line in all_lines if line.invoice_id == invoice.stripe_id]
    usual_lines = [line for line in all_lines if usual and line.invoice_id == usual.stripe_id]
    catalog = line_catalog_load(
        workspace,
        {line.price_id for line in all_lines if line.price_id},
        {line.product_id for line in all_lines if line.product_id},
    )
    return lines, usual_lines, catalog


def _balance(invoice: MirrorInvoice) -> tuple[int, int]:
    """(credit applied, old balance added): the starting balance, by its sign."""
    start = invoice.starting_balance
    return (-start if start < 0 else 0), (start if start > 0 else 0)


def _differences(
    invoice: MirrorInvoice,
    usual: MirrorInvoice | None,
    lines: list[MirrorInvoiceLine],
    usual_lines: list[MirrorInvoiceLine],
    catalog: LineCatalog,
    prorations: list[Obj],
) -> list[Obj]:
    """Every difference from the usual invoice, adding up to the change in total."""
    currency = invoice.currency.upper()
    interval = _interval(lines, catalog)
    differences: list[Obj] = list(prorations)
    recurring = recurring_charges(lines, catalog)
    if usual is not None and recurring:
        differences += recurring_differences(
            recurring,
            recurring_charges(usual_lines, catalog),
            currency,
            interval,
            {(g["from_quantity"], g["to_quantity"]) for g in prorations},
        )
    differences += one_time_differences(lines, catalog, currency)
    differences += discount_and_tax_differences(invoice, usual, currency)
    baseline = usual.total if usual is not None and recurring else 0
    explained = sum(int(d["amount"]["amount"]) for d in differences)
    residual = (invoice.total - baseline) - explained
    if usual is not None and residual:
        differences.append(residual_difference(residual, currency))
    return differences + balance_differences(*_balance(invoice), currency)


def invoice_breakdown(*, workspace: Workspace, customer_id: str, invoice_id: str) -> Obj:
    """The invoice taken apart, each difference from the usual amount explained, the next invoice."""
    invoice = _invoice_of(workspace, customer_id, invoice_id)
    usual = _usual_invoice(workspace, invoice)
    lines, usual_lines, catalog = _lines_of(workspace, invoice, usual)
    currency = invoice.currency.upper()
    line_rows, by_kind = _line_rows(lines, catalog, currency)
    credit_applied, _ = _balance(invoice)
    charged = invoice.amount_paid if invoice.status == "paid" else invoice.amount_due
    prorations = proration_groups(lines, catalog, currency)
    differences = _differences(invoice, usual, lines, usual_lines, catalog, prorations)
    recurring = recurring_charges(lines, catalog)
    parts = _customer_parts(invoice, lines, catalog, recurring, prorations, credit_applied)
    explanation = _explanation(differences, usual, _interval(lines, catalog))
    next_invoice = (
        next_invoice_estimate(
            workspace=workspace,
            subscription_id=invoice.subscription_id,
            tax_rate=_tax_rate(invoice),
        )
        if invoice.subscription_id
        else None
    )
    return {
        "customer_id": customer_id,
        "invoice": _invoice_block(invoice, lines, credit_applied, charged),
        "lines": line_rows,
        "components": _components(invoice, by_kind, credit_applied),
        "usual": _usual_block(usual, currency),
        "difference": money_json(invoice.total - usual.total, currency)
        if usual is not None
        else None,
        "differences": differences,
        "explanation": explanation,
        "next_invoice": next_invoice,
        "message": {
            "amount": money_json(charged, currency),
            "breakdown": "; ".join(parts),
            "explanation": explanation,
            "next_amount": next_invoice["total"] if next_invoice else None,
        },
        "error_check": (check := breakdown_error_check(differences, currency)),
        "actions": [
            {
                "kind": ActionKind.APPLY_CREDIT.value,
                "label": gettext("Credit a genuine billing error"),
                "params": {"invoice_id": invoice.stripe_id, "currency": currency}
                | (
                    {
                        "amount": check["amount"]["amount"],
                        "description": gettext("Billing error on invoice %(number)s")
                        % {"number": invoice.number or invoice.stripe_id},
                    }
                    if check["genuine_error"]
                    else {}
                ),
            }
        ],
    }


def breakdown_error_check(differences: list[Obj], currency: str) -> Obj:
    """Whether the invoice holds a charge nothing explains (the brief's "issue credit if genuine
    error"): what is left over once plan, seats, add-ons, prorations, one-time items,
    discounts, tax and balance are accounted for. An explained invoice is explained to the
    customer, not credited."""
    unexplained = sum(
        int(d["amount"]["amount"])
        for d in differences
        if d["kind"] == "other" and int(d["amount"]["amount"]) > 0
    )
    if unexplained > 0:
        return {
            "genuine_error": True,
            "amount": money_json(unexplained, currency),
            "display": gettext(
                "%(amount)s of this invoice is not explained by the plan, seats, add-ons, "
                "prorations, discounts or tax: credit it."
            )
            % {"amount": format_money(unexplained, currency)},
        }
    return {
        "genuine_error": False,
        "amount": None,
        "display": gettext(
            "Every difference from the usual invoice is explained: no billing error to credit. "
            "Explain the charge to the customer."
        ),
    }
