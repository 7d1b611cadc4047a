"""How an invoice differs from the usual one, each difference in plain words.

Seats added or removed, a plan or price change, an add-on added or dropped (the
recurring charges against the usual invoice's); one-time items, a discount that
ended or began, tax; and credit applied or an old balance added (which change the
amount charged, not the invoice total). The differences add up to the change in
total; anything left is named as such (``other``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from ...models import MirrorInvoice, MirrorInvoiceLine
from ...money import format_money, money_json
from .lines import LineCatalog, Recurring, line_kind, plural

Obj = dict[str, Any]


def _plan_change(new: Recurring, old: Recurring, currency: str, interval: str) -> Obj:
    return {
        "kind": "plan_change",
        "amount": money_json(new.amount - old.amount, currency),
        "explanation": gettext(
            "the plan changed from %(old)s to %(new)s: %(amount)s %(interval)s instead of "
            "%(old_amount)s"
        )
        % {
            "old": old.name,
            "new": new.name,
            "amount": format_money(new.amount, currency),
            "interval": interval,
            "old_amount": format_money(old.amount, currency),
        },
    }


def _seats(new: Recurring, old: Recurring, currency: str, interval: str, told: bool) -> Obj:
    """A seat count change; ``told`` when a proration group already said when and how."""
    change = abs(new.quantity - old.quantity)
    words = {
        "seats": plural(change, "seat"),
        "name": new.name,
        "old_q": old.quantity,
        "new_q": new.quantity,
        "interval": interval,
        "all_seats": plural(new.quantity, "seat"),
        "amount": format_money(new.amount, currency),
        "old_amount": format_money(old.amount, currency),
    }
    charge = (
        gettext(
            "the %(interval)s charge for %(all_seats)s is %(amount)s instead of %(old_amount)s "
            "for %(old_q)d"
        )
        % words
    )
    if told:
        explanation = charge
    elif new.quantity > old.quantity:
        explanation = gettext("%(seats)s added on %(name)s (%(old_q)d → %(new_q)d): %(charge)s") % {
            **words,
            "charge": charge,
        }
    else:
        explanation = gettext(
            "%(seats)s removed on %(name)s (%(old_q)d → %(new_q)d): %(charge)s"
        ) % {**words, "charge": charge}
    return {
        "kind": "seats",
        "amount": money_json(new.amount - old.amount, currency),
        "from_quantity": old.quantity,
        "to_quantity": new.quantity,
        "explanation": explanation,
    }


def _price_change(new: Recurring, old: Recurring, currency: str) -> Obj:
    return {
        "kind": "price_change",
        "amount": money_json(new.amount - old.amount, currency),
        "explanation": (
            gettext("%(name)s is billed %(amount)s %(interval)s instead of %(old_amount)s")
            if old.interval == new.interval
            else gettext(
                "%(name)s is billed %(amount)s %(interval)s instead of %(old_amount)s "
                "%(old_interval)s"
            )
        )
        % {
            "name": new.name,
            "amount": format_money(new.amount, currency),
            "interval": new.interval,
            "old_amount": format_money(old.amount, currency),
            "old_interval": old.interval,
        },
    }


def _added(new: Recurring, currency: str, interval: str) -> Obj:
    return {
        "kind": "addon_added" if new.addon else "item_added",
        "amount": money_json(new.amount, currency),
        "explanation": gettext("%(name)s was added (%(amount)s %(interval)s)")
        % {"name": new.name, "amount": format_money(new.amount, currency), "interval": interval},
    }


def _removed(old: Recurring, currency: str) -> Obj:
    return {
        "kind": "addon_removed" if old.addon else "item_removed",
        "amount": money_json(-old.amount, currency),
        "explanation": gettext("%(name)s is no longer billed (%(amount)s)")
        % {"name": old.name, "amount": format_money(-old.amount, currency)},
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
            "explanation": gettext("a one-time charge: %(what)s (%(amount)s)")
            % {
                "what": line.description or gettext("invoice item"),
                "amount": format_money(line.amount, currency),
            },
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
                    gettext("a discount of %(amount)s applies")
                    if invoice.total_discount > usual_discount
                    else gettext("the discount is %(amount)s, down from %(usual)s")
                )
                % {
                    "amount": format_money(invoice.total_discount, currency),
                    "usual": format_money(usual_discount, currency),
                },
            }
        )
    if invoice.tax != usual_tax and (usual or invoice.tax):
        diffs.append(
            {
                "kind": "tax",
                "amount": money_json(invoice.tax - usual_tax, currency),
                "explanation": (
                    gettext("tax is %(amount)s instead of %(usual)s on the changed amount")
                    if usual
                    else gettext("tax is %(amount)s on the changed amount")
                )
                % {
                    "amount": format_money(invoice.tax, currency),
                    "usual": format_money(usual_tax, currency),
                },
            }
        )
    return diffs


def residual_difference(residual: int, currency: str) -> Obj:
    return {
        "kind": "other",
        "amount": money_json(residual, currency),
        "explanation": gettext("other changes of %(amount)s")
        % {"amount": format_money(residual, currency)},
    }


def balance_differences(credit_applied: int, balance_added: int, currency: str) -> list[Obj]:
    """Account credit applied and an old balance added: they change what is charged."""
    diffs = []
    if credit_applied:
        diffs.append(
            {
                "kind": "credit_applied",
                "amount": money_json(-credit_applied, currency),
                "explanation": gettext(
                    "%(amount)s of account credit was applied, lowering the amount charged"
                )
                % {"amount": format_money(credit_applied, currency)},
            }
        )
    if balance_added:
        diffs.append(
            {
                "kind": "balance_added",
                "amount": money_json(balance_added, currency),
                "explanation": gettext("an unpaid balance of %(amount)s from before was added")
                % {"amount": format_money(balance_added, currency)},
            }
        )
    return diffs
