"""Overcharge investigation: an invoice taken apart and compared with the usual amount.

``invoice_breakdown`` answers ``GET customers/{id}/invoices/{invoice_id}/breakdown/``
(the brief's scenario 5, "I was overcharged"), from the mirror only:

* **Lines**, each classified: the *plan* (the subscription's main item; with a
  quantity above one, its seats), *add-ons* (products marked
  ``metadata.addon = "true"``), *proration* lines from an earlier change (Stripe's
  "Unused time on …" credits and "Remaining time on …" charges), and *one-time*
  invoice items. Then the invoice's *discounts*, the *credit applied* from the
  customer's balance (``starting_balance``) and *tax*.
* **The usual amount**: the subscription's previous regular invoice (a cycle or
  creation invoice without proration lines) — what the customer expected to pay.
* **Each difference** from it, explained in plain words: seats added or
  removed, a plan or price change, an add-on added or dropped, prorations
  (grouped by the change that caused them: seats 20 → 35 on a date, for the days
  left of that period), one-time items, a discount that ended or began, tax,
  and credit applied (which lowers the amount charged, not the invoice total).
  The differences add up to the change in total; anything left is named as such.
* **The next invoice**: the subscription's items due at its next renewal (a
  scheduled downgrade included), less a running percentage discount, plus tax
  at this invoice's effective rate.

The answer also carries the scenario-5 message's fields (``message``) and the
action an agent takes on a genuine error (a credit for this invoice).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..catalog import ActionKind
from ..errors import NotFound
from ..models import (
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPrice,
    MirrorProduct,
    MirrorSubscription,
    MirrorSubscriptionItem,
    Workspace,
)
from ..money import format_money
from ..playbook import interval_word, invoice_period
from .payments import money

Obj = dict[str, Any]

REGULAR_REASONS = ("subscription_cycle", "subscription_create")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _date(value: datetime | None) -> str:
    return f"{value:%B} {value.day}, {value.year}" if value else ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass
class _Catalog:
    names: dict[str, str] = field(default_factory=dict)
    addons: set[str] = field(default_factory=set)
    price_products: dict[str, str] = field(default_factory=dict)
    price_units: dict[str, int] = field(default_factory=dict)
    price_intervals: dict[str, tuple[str, int]] = field(default_factory=dict)

    def product_of(self, line: MirrorInvoiceLine | MirrorSubscriptionItem) -> str:
        return line.product_id or self.price_products.get(line.price_id, "") or line.price_id

    def name(self, product_id: str) -> str:
        return self.names.get(product_id) or product_id or "Item"

    def is_addon(self, product_id: str) -> bool:
        return product_id in self.addons


def _catalog(workspace: Workspace, price_ids: set[str], product_ids: set[str]) -> _Catalog:
    catalog = _Catalog()
    for price in MirrorPrice.objects.filter(workspace=workspace, stripe_id__in=price_ids):
        catalog.price_products[price.stripe_id] = price.product_id
        if price.unit_amount is not None:
            catalog.price_units[price.stripe_id] = int(price.unit_amount)
        catalog.price_intervals[price.stripe_id] = (
            price.recurring_interval,
            price.recurring_interval_count,
        )
        product_ids.add(price.product_id)
        if price.nickname:
            catalog.names.setdefault(price.product_id, price.nickname)
    for product in MirrorProduct.objects.filter(workspace=workspace, stripe_id__in=product_ids):
        if product.name:
            catalog.names[product.stripe_id] = product.name
        if (product.metadata or {}).get("addon") == "true":
            catalog.addons.add(product.stripe_id)
    return catalog


def _kind(line: MirrorInvoiceLine, catalog: _Catalog) -> str:
    if line.proration:
        return "proration"
    if not line.subscription_item_id and not line.price_id:
        return "one_time"
    if catalog.is_addon(catalog.product_of(line)):
        return "addon"
    if line.subscription_item_id:
        return "plan"
    return "one_time"


@dataclass
class _Recurring:
    product_id: str
    name: str
    amount: int
    quantity: int
    unit_amount: int | None
    addon: bool
    price_id: str
    interval: str = "monthly"


_DESCRIBED = re.compile(
    r"^(?:(?:Unused|Remaining) time on )?(?:\d+ × )?(?P<name>.+?)"
    r"(?: \(at .*\)| (?:after|from) .*)?$"
)


def _line_name(line: MirrorInvoiceLine, catalog: _Catalog, product: str) -> str:
    """The product's name; unmirrored, the name in Stripe's line wording ``50 × Name (at …)``."""
    if product in catalog.names:
        return catalog.names[product]
    match = _DESCRIBED.match(line.description or "")
    return match["name"] if match else catalog.name(product)


def _recurring(lines: list[MirrorInvoiceLine], catalog: _Catalog) -> dict[str, _Recurring]:
    found: dict[str, _Recurring] = {}
    for line in lines:
        kind = _kind(line, catalog)
        if kind not in ("plan", "addon"):
            continue
        product = catalog.product_of(line)
        quantity = int(line.quantity or 1)
        entry = found.get(product)
        if entry is None:
            found[product] = _Recurring(
                product_id=product,
                name=_line_name(line, catalog, product),
                amount=line.amount,
                quantity=quantity,
                unit_amount=line.amount // quantity if quantity else None,
                addon=kind == "addon",
                price_id=line.price_id,
                interval=interval_word(*catalog.price_intervals.get(line.price_id, ("month", 1))),
            )
        else:
            entry.amount += line.amount
            entry.quantity += quantity
    return found


def _usual_invoice(workspace: Workspace, invoice: MirrorInvoice) -> MirrorInvoice | None:
    """The subscription's previous regular invoice: what the customer usually pays."""
    if not invoice.subscription_id:
        return None
    candidates = (
        MirrorInvoice.objects.filter(
            workspace=workspace,
            customer_id=invoice.customer_id,
            subscription_id=invoice.subscription_id,
            status__in=("paid", "open"),
            billing_reason__in=REGULAR_REASONS,
            created__lt=invoice.created,
        )
        .exclude(stripe_id=invoice.stripe_id)
        .order_by("-created")[:6]
    )
    rows = list(candidates)
    if not rows:
        return None
    with_prorations = set(
        MirrorInvoiceLine.objects.filter(
            workspace=workspace, invoice_id__in=[r.stripe_id for r in rows], proration=True
        ).values_list("invoice_id", flat=True)
    )
    return next((r for r in rows if r.stripe_id not in with_prorations), rows[0])


def _proration_groups(
    lines: list[MirrorInvoiceLine], catalog: _Catalog, currency: str
) -> list[Obj]:
    """Proration lines grouped by the change that made them (the same remaining period)."""
    groups: dict[tuple[Any, ...], list[MirrorInvoiceLine]] = defaultdict(list)
    for line in lines:
        if line.proration:
            groups[(line.period_start, line.period_end)].append(line)
    out = []
    for (start, end), items in sorted(groups.items(), key=lambda kv: kv[0][0] or datetime.min):
        credits = [i for i in items if i.amount < 0]
        charges = [i for i in items if i.amount >= 0]
        credit = sum(i.amount for i in credits)
        charge = sum(i.amount for i in charges)
        net = credit + charge
        old_q = sum(int(i.quantity or 0) for i in credits) or None
        new_q = sum(int(i.quantity or 0) for i in charges) or None
        old_name = (
            _line_name(credits[0], catalog, catalog.product_of(credits[0])) if credits else ""
        )
        new_name = (
            _line_name(charges[0], catalog, catalog.product_of(charges[0])) if charges else ""
        )
        old_price = credits[0].price_id if credits else ""
        new_price = charges[0].price_id if charges else ""
        days = max(0, round((end - start).total_seconds() / 86400)) if start and end else None
        when = _date(start)
        left = (
            f"the {_plural(days, 'day')} left of that billing period"
            if days
            else "the rest of that billing period"
        )
        paid, owed = format_money(-credit, currency), format_money(charge, currency)
        total = format_money(net, currency)
        if old_price and new_price and old_price != new_price:
            plan = f"from {old_name} to {new_name}" if old_name != new_name else f"of {new_name}"
            summary = f"prorated plan change {plan} from {when}"
            explanation = (
                f"the plan changed {plan} on {when}: {left} were charged at the new price "
                f"({owed}) less the unused time already paid at the old one ({paid}), {total} in total"
            )
        elif old_q and new_q and old_q != new_q:
            verb = "increased" if new_q > old_q else "reduced"
            summary = f"prorated seat change {old_q} → {new_q} from {when}"
            explanation = (
                f"seats were {verb} from {old_q} to {new_q} on {when}: {left} were charged for "
                f"{new_q} seats ({owed}) less the unused time already paid for {old_q} ({paid}), "
                f"{total} in total"
            )
        elif charges and not credits:
            summary = f"prorated {new_name} from {when}"
            explanation = f"{new_name} was added on {when}: {left} were charged pro rata ({owed})"
        elif credits and not charges:
            summary = f"unused {old_name} credited from {when}"
            explanation = (
                f"{old_name} was removed on {when}: the unused time of {left.removeprefix('the ')} "
                f"was credited ({total})"
            )
        else:
            summary = f"prorated change of {new_name} from {when}"
            explanation = (
                f"{new_name} changed on {when}: {owed} for {left} less {paid} of unused time, "
                f"{total} in total"
            )
        out.append(
            {
                "kind": "proration",
                "product": new_name or old_name,
                "amount": money(net, currency),
                "charged": money(charge, currency),
                "credited": money(credit, currency),
                "from_quantity": old_q,
                "to_quantity": new_q,
                "changed_at": _iso(start),
                "period_end": _iso(end),
                "days": days,
                "line_ids": [i.stripe_id for i in items],
                "explanation": explanation,
                "summary": summary,
            }
        )
    return out


def _recurring_differences(
    now: dict[str, _Recurring],
    before: dict[str, _Recurring],
    currency: str,
    interval: str,
    prorated: set[tuple[int | None, int | None]],
) -> list[Obj]:
    """Recurring charges against the usual invoice's; ``prorated`` seat changes are told already."""
    diffs = []
    plans_now = [r for r in now.values() if not r.addon and r.product_id not in before]
    plans_before = [r for r in before.values() if not r.addon and r.product_id not in now]
    paired: set[str] = set()
    if len(plans_now) == 1 and len(plans_before) == 1:
        new, old = plans_now[0], plans_before[0]
        paired = {new.product_id, old.product_id}
        delta = new.amount - old.amount
        diffs.append(
            {
                "kind": "plan_change",
                "amount": money(delta, currency),
                "explanation": f"the plan changed from {old.name} to {new.name}: "
                f"{format_money(new.amount, currency)} {interval} instead of "
                f"{format_money(old.amount, currency)}",
            }
        )
    for product in sorted(set(now) | set(before)):
        if product in paired:
            continue
        new, old = now.get(product), before.get(product)
        if new is not None and old is not None:
            delta = new.amount - old.amount
            if delta == 0:
                continue
            if new.quantity != old.quantity and new.unit_amount == old.unit_amount:
                verb = "added" if new.quantity > old.quantity else "removed"
                change = abs(new.quantity - old.quantity)
                diffs.append(
                    {
                        "kind": "seats",
                        "amount": money(delta, currency),
                        "from_quantity": old.quantity,
                        "to_quantity": new.quantity,
                        "explanation": (
                            ""
                            if (old.quantity, new.quantity) in prorated
                            else f"{_plural(change, 'seat')} {verb} on {new.name} "
                            f"({old.quantity} → {new.quantity}): "
                        )
                        + f"the {interval} charge for {_plural(new.quantity, 'seat')} is "
                        f"{format_money(new.amount, currency)} instead of "
                        f"{format_money(old.amount, currency)} for {old.quantity}",
                    }
                )
            else:
                diffs.append(
                    {
                        "kind": "price_change",
                        "amount": money(delta, currency),
                        "explanation": f"{new.name} is billed {format_money(new.amount, currency)} "
                        f"{new.interval} instead of {format_money(old.amount, currency)}"
                        + (f" {old.interval}" if old.interval != new.interval else ""),
                    }
                )
        elif new is not None:
            diffs.append(
                {
                    "kind": "addon_added" if new.addon else "item_added",
                    "amount": money(new.amount, currency),
                    "explanation": f"{new.name} was added "
                    f"({format_money(new.amount, currency)} {interval})",
                }
            )
        elif old is not None:
            diffs.append(
                {
                    "kind": "addon_removed" if old.addon else "item_removed",
                    "amount": money(-old.amount, currency),
                    "explanation": f"{old.name} is no longer billed "
                    f"({format_money(-old.amount, currency)})",
                }
            )
    return diffs


def _tax_rate(invoice: MirrorInvoice) -> Decimal | None:
    taxable = invoice.subtotal - invoice.total_discount
    if not invoice.tax or taxable <= 0:
        return None
    return Decimal(invoice.tax) / Decimal(taxable)


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def next_invoice_estimate(
    *, workspace: Workspace, subscription_id: str, tax_rate: Decimal | None = None
) -> Obj | None:
    """What the subscription's next renewal will invoice (before any credit balance)."""
    sub = MirrorSubscription.objects.filter(workspace=workspace, stripe_id=subscription_id).first()
    if sub is None or sub.status not in ("active", "trialing", "past_due", "unpaid"):
        return None
    if sub.cancel_at_period_end or sub.cancel_at:
        return None
    pause = sub.pause_collection or {}
    if pause.get("behavior") == "void":
        return None
    items = list(
        MirrorSubscriptionItem.objects.filter(workspace=workspace, subscription_id=sub.stripe_id)
    )
    if not items:
        return None
    ends = [i.current_period_end for i in items if i.current_period_end]
    when = min(ends) if ends else sub.current_period_end
    if sub.status == "trialing" and sub.trial_end:
        when = sub.trial_end
    meta = sub.metadata or {}
    pending_item, pending_price = meta.get("pending_item_id"), meta.get("pending_price_id")
    target = (
        MirrorPrice.objects.filter(workspace=workspace, stripe_id=pending_price).first()
        if pending_item and pending_price
        else None
    )
    currency = (sub.currency or items[0].currency or workspace.base_currency).upper()
    subtotal = 0
    for item in items:
        other_cycle = item.current_period_end and when and sub.status != "trialing"
        if other_cycle and item.current_period_end.date() != when.date():  # type: ignore[union-attr]
            continue  # billed on another cycle (e.g. a yearly add-on)
        unit = int(item.unit_amount or 0)
        if target is not None and item.stripe_id == pending_item:
            unit = int(target.unit_amount or 0)  # a downgrade scheduled for this renewal
        subtotal += unit * int(item.quantity or 0)
    discount = 0
    for d in MirrorDiscount.objects.filter(
        workspace=workspace, subscription_id=sub.stripe_id, active=True
    ):
        if d.end is not None and when is not None and d.end <= when:
            continue
        if d.duration == "once":
            continue
        if d.percent_off is not None:
            discount += _round(Decimal(subtotal) * Decimal(d.percent_off) / 100)
        elif d.amount_off:
            discount += int(d.amount_off)
    discount = min(discount, subtotal)
    tax = _round(Decimal(subtotal - discount) * tax_rate) if tax_rate else 0
    total = subtotal - discount + tax
    return {
        "date": when.date().isoformat() if when else None,
        "subtotal": money(subtotal, currency),
        "discount": money(discount, currency),
        "tax": money(tax, currency),
        "total": money(total, currency),
        "amount": money(total, currency),
        "subscription_id": sub.stripe_id,
    }


def invoice_breakdown(*, workspace: Workspace, customer_id: str, invoice_id: str) -> Obj:
    """The invoice taken apart, each difference from the usual amount explained, the next invoice."""
    invoice = MirrorInvoice.objects.filter(
        workspace=workspace, stripe_id=invoice_id, customer_id=customer_id
    ).first()
    if invoice is None:
        raise NotFound(
            f"No invoice {invoice_id} for this customer.",
            code="invoice_not_found",
            details={"id": invoice_id},
        )
    usual_invoice = _usual_invoice(workspace, invoice)
    ids = [invoice.stripe_id] + ([usual_invoice.stripe_id] if usual_invoice else [])
    all_lines = list(
        MirrorInvoiceLine.objects.filter(workspace=workspace, invoice_id__in=ids).order_by(
            "period_start", "id"
        )
    )
    lines = [line for line in all_lines if line.invoice_id == invoice.stripe_id]
    usual_lines = [
        line for line in all_lines if usual_invoice and line.invoice_id == usual_invoice.stripe_id
    ]
    catalog = _catalog(
        workspace,
        {line.price_id for line in all_lines if line.price_id},
        {line.product_id for line in all_lines if line.product_id},
    )
    currency = invoice.currency.upper()
    interval = "monthly"
    for line in lines:
        if line.price_id in catalog.price_intervals and not line.proration:
            interval = interval_word(*catalog.price_intervals[line.price_id])
            break

    line_rows = []
    components: dict[str, int] = defaultdict(int)
    for line in lines:
        kind = _kind(line, catalog)
        product = catalog.product_of(line)
        label = "seats" if kind == "plan" and int(line.quantity or 1) > 1 else kind
        components[kind] += line.amount
        line_rows.append(
            {
                "id": line.stripe_id,
                "kind": label,
                "description": line.description,
                "product": _line_name(line, catalog, product) if product else None,
                "quantity": line.quantity,
                "amount": money(line.amount, currency),
                "proration": line.proration,
                "period_start": _iso(line.period_start),
                "period_end": _iso(line.period_end),
                "discount": money(line.discount_amount, currency),
                "tax": money(line.tax_amount, currency),
            }
        )
    credit_applied = -invoice.starting_balance if invoice.starting_balance < 0 else 0
    balance_added = invoice.starting_balance if invoice.starting_balance > 0 else 0
    charged = invoice.amount_paid if invoice.status == "paid" else invoice.amount_due

    # --- differences from the usual invoice ---
    prorations = _proration_groups(lines, catalog, currency)
    differences: list[Obj] = list(prorations)
    now_recurring = _recurring(lines, catalog)
    has_recurring = bool(now_recurring)
    if usual_invoice is not None and has_recurring:
        differences += _recurring_differences(
            now_recurring,
            _recurring(usual_lines, catalog),
            currency,
            interval,
            {(g["from_quantity"], g["to_quantity"]) for g in prorations},
        )
    for line in lines:
        if _kind(line, catalog) == "one_time":
            differences.append(
                {
                    "kind": "one_time",
                    "amount": money(line.amount, currency),
                    "explanation": f"a one-time charge: {line.description or 'invoice item'} "
                    f"({format_money(line.amount, currency)})",
                }
            )
    usual_discount = usual_invoice.total_discount if usual_invoice else 0
    usual_tax = usual_invoice.tax if usual_invoice else 0
    if invoice.total_discount != usual_discount and (usual_invoice or invoice.total_discount):
        delta = -(invoice.total_discount - usual_discount)
        differences.append(
            {
                "kind": "discount",
                "amount": money(delta, currency),
                "explanation": (
                    f"a discount of {format_money(invoice.total_discount, currency)} applies"
                    if invoice.total_discount > usual_discount
                    else f"the discount is {format_money(invoice.total_discount, currency)}, "
                    f"down from {format_money(usual_discount, currency)}"
                ),
            }
        )
    if invoice.tax != usual_tax and (usual_invoice or invoice.tax):
        differences.append(
            {
                "kind": "tax",
                "amount": money(invoice.tax - usual_tax, currency),
                "explanation": f"tax is {format_money(invoice.tax, currency)}"
                + (f" instead of {format_money(usual_tax, currency)}" if usual_invoice else "")
                + " on the changed amount",
            }
        )
    baseline = usual_invoice.total if usual_invoice is not None and has_recurring else 0
    explained = sum(int(d["amount"]["amount"]) for d in differences)
    residual = (invoice.total - baseline) - explained
    if usual_invoice is not None and residual:
        differences.append(
            {
                "kind": "other",
                "amount": money(residual, currency),
                "explanation": f"other changes of {format_money(residual, currency)}",
            }
        )
    if credit_applied:
        differences.append(
            {
                "kind": "credit_applied",
                "amount": money(-credit_applied, currency),
                "explanation": f"{format_money(credit_applied, currency)} of account credit was "
                "applied, lowering the amount charged",
            }
        )
    if balance_added:
        differences.append(
            {
                "kind": "balance_added",
                "amount": money(balance_added, currency),
                "explanation": f"an unpaid balance of {format_money(balance_added, currency)} "
                "from before was added",
            }
        )

    # --- the customer-facing parts ---
    parts = []
    for r in now_recurring.values():
        parts.append(
            f"{r.quantity} × {r.name} {format_money(r.amount, currency)}"
            if r.quantity > 1
            else f"{r.name} {format_money(r.amount, currency)}"
        )
    for group in prorations:
        parts.append(f"{group['summary']} {group['amount']['display']}")
    for line in lines:
        if _kind(line, catalog) == "one_time":
            parts.append(
                f"{line.description or 'one-time charge'} {format_money(line.amount, currency)}"
            )
    if invoice.total_discount:
        parts.append(f"discount -{format_money(invoice.total_discount, currency)}")
    if invoice.tax:
        parts.append(f"tax {format_money(invoice.tax, currency)}")
    if credit_applied:
        parts.append(f"account credit -{format_money(credit_applied, currency)}")
    reasons = [d["explanation"] for d in differences if d["kind"] not in ("other",)]
    if reasons:
        explanation = "; ".join(reasons[:-1]) + ("; and " if len(reasons) > 1 else "") + reasons[-1]
    elif usual_invoice is not None:
        explanation = (
            f"it is your usual {interval} charge, the same as invoice "
            f"{usual_invoice.number or usual_invoice.stripe_id}"
        )
    else:
        explanation = f"it is the {interval} charge of your subscription"
    rate = _tax_rate(invoice)
    next_invoice = (
        next_invoice_estimate(
            workspace=workspace, subscription_id=invoice.subscription_id, tax_rate=rate
        )
        if invoice.subscription_id
        else None
    )
    return {
        "customer_id": customer_id,
        "invoice": {
            "id": invoice.stripe_id,
            "number": invoice.number,
            "status": invoice.status,
            "billing_reason": invoice.billing_reason,
            "created": _iso(invoice.created),
            "period": invoice_period(invoice, lines),
            "subscription_id": invoice.subscription_id or None,
            "subtotal": money(invoice.subtotal, currency),
            "discount": money(invoice.total_discount, currency),
            "tax": money(invoice.tax, currency),
            "total": money(invoice.total, currency),
            "credit_applied": money(credit_applied, currency),
            "amount_due": money(invoice.amount_due, currency),
            "amount_paid": money(invoice.amount_paid, currency),
            "amount_remaining": money(invoice.amount_remaining, currency),
            "charged": money(charged, currency),
            "hosted_invoice_url": invoice.hosted_invoice_url or None,
            "invoice_pdf": invoice.invoice_pdf or None,
        },
        "lines": line_rows,
        "components": {
            "plan": money(components["plan"], currency),
            "addons": money(components["addon"], currency),
            "proration": money(components["proration"], currency),
            "one_time": money(components["one_time"], currency),
            "discounts": money(-invoice.total_discount, currency),
            "credits_applied": money(-credit_applied, currency),
            "tax": money(invoice.tax, currency),
        },
        "usual": {
            "amount": money(usual_invoice.total, currency),
            "invoice_id": usual_invoice.stripe_id,
            "invoice_number": usual_invoice.number,
            "date": _iso(usual_invoice.created),
        }
        if usual_invoice is not None
        else None,
        "difference": money(invoice.total - usual_invoice.total, currency)
        if usual_invoice is not None
        else None,
        "differences": differences,
        "explanation": explanation,
        "next_invoice": next_invoice,
        "message": {
            "amount": money(charged, currency),
            "breakdown": "; ".join(parts),
            "explanation": explanation,
            "next_amount": next_invoice["total"] if next_invoice else None,
        },
        "actions": [
            {
                "kind": ActionKind.APPLY_CREDIT.value,
                "label": "Credit a genuine billing error",
                "params": {"invoice_id": invoice.stripe_id, "currency": currency},
            }
        ],
    }


__all__ = ["invoice_breakdown", "next_invoice_estimate"]
