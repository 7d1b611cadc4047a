"""How an invoice differs from the usual one, each difference in plain words.

Seats added or removed, a plan or price change, an add-on added or dropped (the
recurring charges against the usual invoice's); one-time items, a discount that
ended or began, tax; and credit applied or an old balance added (which change the
amount charged, not the invoice total). The differences add up to the change in
total; anything left is named as such (``other``).
"""

from __future__ import annotations

from typing import Any

from ...models import MirrorInvoice, MirrorInvoiceLine
from ...money import format_money, money_json
from .lines import LineCatalog, Recurring, line_kind, plural

Obj = dict[str, Any]


def _plan_change(new: Recurring, old: Recurring, currency: str, interval: str) -> Obj:
    return {
        "kind": "plan_change",
        "amount": money_json(new.amount - old.amount, currency),
        "explanation": f"the plan changed from {old.name} to {new.name}: "
        f"{format_money(new.amount, currency)} {interval} instead of "
        f"{format_money(old.amount, currency)}",
    }


def _seats(new: Recurring, old: Recurring, currency: str, interval: str, told: bool) -> Obj:
    """A seat count change; ``told`` when a proration group already said when and how."""
    verb = "added" if new.quantity > old.quantity else "removed"
    change = abs(new.quantity - old.quantity)
    what = (
        ""
        if told
        else f"{plural(change, 'seat')} {verb} on {new.name} ({old.quantity} → {new.quantity}): "
    )
    return {
        "kind": "seats",
        "amount": money_json(new.amount - old.amount, currency),
        "from_quantity": old.quantity,
        "to_quantity": new.quantity,
        "explanation": what + f"the {interval} charge for {plural(new.quantity, 'seat')} is "
        f"{format_money(new.amount, currency)} instead of "
        f"{format_money(old.amount, currency)} for {old.quantity}",
    }


def _price_change(new: Recurring, old: Recurring, currency: str) -> Obj:
    return {
        "kind": "price_change",
        "amount": money_json(new.amount - old.amount, currency),
        "explanation": f"{new.name} is billed {format_money(new.amount, currency)} "
        f"{new.interval} instead of {format_money(old.amount, currency)}"
        + (f" {old.interval}" if old.interval != new.interval else ""),
    }


def _added(new: Recurring, currency: str, interval: str) -> Obj:
    return {
        "kind": "addon_added" if new.addon else "item_added",
        "amount": money_json(new.amount, currency),
        "explanation": f"{new.name} was added ({format_money(new.amount, currency)} {interval})",
    }


def _removed(old: Recurring, currency: str) -> Obj:
    return {
        "kind": "addon_removed" if old.addon else "item_removed",
        "amount": money_json(-old.amount, currency),
        "explanation": f"{old.name} is no longer billed ({format_money(-old.amount, currency)})",
    }


def recurring_differences(
    now: dict[str, Recurring],
    before: dict[str, Recurring],
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
        new_plan, old_plan = plans_now[0], plans_before[0]
        paired = {new_plan.product_id, old_plan.product_id}
        diffs.append(_plan_change(new_plan, old_plan, currency, interval))
    for product in sorted(set(now) | set(before)):
        if product in paired:
            continue
        new, old = now.get(product), before.get(product)
        if new is not None and old is not None:
            if new.amount == old.amount:
                continue
            if new.quantity != old.quantity and new.unit_amount == old.unit_amount:
                told = (old.quantity, new.quantity) in prorated
                diffs.append(_seats(new, old, currency, interval, told))
            else:
                diffs.append(_price_change(new, old, currency))
        elif new is not None:
            diffs.append(_added(new, currency, interval))
        elif old is not None:
            diffs.append(_removed(old, currency))
    return diffs


def one_time_differences(
    lines: list[MirrorInvoiceLine], catalog: LineCatalog, currency: str
) -> list[Obj]:
    return [
        {
            "kind": "one_time",
            "amount": money_json(line.amount, currency),
            "explanation": f"a one-time charge: {line.description or 'invoice item'} "
            f"({format_money(line.amount, currency)})",
        }
        for line in lines
        if line_kind(line, catalog) == "one_time"
    ]


def discount_and_tax_differences(
    invoice: MirrorInvoice, usual: MirrorInvoice | None, currency: str
) -> list[Obj]:
    diffs = []
    usual_discount = usual.total_discount if usual else 0
    usual_tax = usual.tax if usual else 0
    if invoice.total_discount != usual_discount and (usual or invoice.total_discount):
        diffs.append(
            {
                "kind": "discount",
                "amount": money_json(-(invoice.total_discount - usual_discount), currency),
                "explanation": (
                    f"a discount of {format_money(invoice.total_discount, currency)} applies"
                    if invoice.total_discount > usual_discount
                    else f"the discount is {format_money(invoice.total_discount, currency)}, "
                    f"down from {format_money(usual_discount, currency)}"
                ),
            }
        )
    if invoice.tax != usual_tax and (usual or invoice.tax):
        diffs.append(
            {
                "kind": "tax",
                "amount": money_json(invoice.tax - usual_tax, currency),
                "explanation": f"tax is {format_money(invoice.tax, currency)}"
                + (f" instead of {format_money(usual_tax, currency)}" if usual else "")
                + " on the changed amount",
            }
        )
    return diffs


def residual_difference(residual: int, currency: str) -> Obj:
    return {
        "kind": "other",
        "amount": money_json(residual, currency),
        "explanation": f"other changes of {format_money(residual, currency)}",
    }


def balance_differences(credit_applied: int, balance_added: int, currency: str) -> list[Obj]:
    """Account credit applied and an old balance added: they change what is charged."""
    diffs = []
    if credit_applied:
        diffs.append(
            {
                "kind": "credit_applied",
                "amount": money_json(-credit_applied, currency),
                "explanation": f"{format_money(credit_applied, currency)} of account credit was "
                "applied, lowering the amount charged",
            }
        )
    if balance_added:
        diffs.append(
            {
                "kind": "balance_added",
                "amount": money_json(balance_added, currency),
                "explanation": f"an unpaid balance of {format_money(balance_added, currency)} "
                "from before was added",
            }
        )
    return diffs
