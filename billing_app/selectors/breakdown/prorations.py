"""Proration lines grouped by the change that made them, each told in plain words.

Stripe writes a change in the middle of a period as two lines for the same remaining
period: "Unused time on …" (a credit at the old price or quantity) and "Remaining
time on …" (a charge at the new one). A group is one such period: a plan change
(the two prices differ), a seat change (the quantities differ), an item added (a
charge alone) or removed (a credit alone).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext

from ...models import MirrorInvoiceLine
from ...money import format_money, money_json, money_language
from .lines import LineCatalog, iso, line_name, long_date, plural

Obj = dict[str, Any]


@dataclass(frozen=True)
class _Change:
    """One proration group's two sides."""

    credit: int  # negative: the unused time credited
    charge: int  # the remaining time charged
    old_quantity: int | None
    new_quantity: int | None
    old_name: str
    new_name: str
    old_price: str
    new_price: str
    has_credits: bool
    has_charges: bool


def _change(items: list[MirrorInvoiceLine], catalog: LineCatalog) -> _Change:
    credits = [i for i in items if i.amount < 0]
    charges = [i for i in items if i.amount >= 0]

    def name(line: MirrorInvoiceLine) -> str:
        return line_name(line, catalog, catalog.product_of(line))

    return _Change(
        credit=sum(i.amount for i in credits),
        charge=sum(i.amount for i in charges),
        old_quantity=sum(int(i.quantity or 0) for i in credits) or None,
        new_quantity=sum(int(i.quantity or 0) for i in charges) or None,
        old_name=name(credits[0]) if credits else "",
        new_name=name(charges[0]) if charges else "",
        old_price=credits[0].price_id if credits else "",
        new_price=charges[0].price_id if charges else "",
        has_credits=bool(credits),
        has_charges=bool(charges),
    )


def _told(change: _Change, when: str, left: str, currency: str) -> tuple[str, str]:
    """(summary, explanation) of a proration group."""
    paid, owed = format_money(-change.credit, currency), format_money(change.charge, currency)
    total = format_money(change.credit + change.charge, currency)
    old_q, new_q = change.old_quantity, change.new_quantity
    old_name, new_name = change.old_name, change.new_name
    words = {
        "when": when,
        "left": left,
        "paid": paid,
        "owed": owed,
        "total": total,
        "old": old_name,
        "new": new_name,
        "old_q": old_q,
        "new_q": new_q,
    }
    if change.old_price and change.new_price and change.old_price != change.new_price:
        if old_name != new_name:
            return gettext("prorated plan change from %(old)s to %(new)s from %(when)s") % words, (
                gettext(
                    "the plan changed from %(old)s to %(new)s on %(when)s: %(left)s were charged "
                    "at the new price (%(owed)s) less the unused time already paid at the old one "
                    "(%(paid)s), %(total)s in total"
                )
                % words
            )
        return gettext("prorated plan change of %(new)s from %(when)s") % words, (
            gettext(
                "the plan changed of %(new)s on %(when)s: %(left)s were charged at the new price "
                "(%(owed)s) less the unused time already paid at the old one (%(paid)s), "
                "%(total)s in total"
            )
            % words
        )
    if old_q and new_q and old_q != new_q:
        summary = gettext("prorated seat change %(old_q)d → %(new_q)d from %(when)s") % words
        if new_q > old_q:
            explained = gettext(
                "seats were increased from %(old_q)d to %(new_q)d on %(when)s: %(left)s were "
                "charged for %(new_q)d seats (%(owed)s) less the unused time already paid for "
                "%(old_q)d (%(paid)s), %(total)s in total"
            )
        else:
            explained = gettext(
                "seats were reduced from %(old_q)d to %(new_q)d on %(when)s: %(left)s were "
                "charged for %(new_q)d seats (%(owed)s) less the unused time already paid for "
                "%(old_q)d (%(paid)s), %(total)s in total"
            )
        return summary, explained % words
    if change.has_charges and not change.has_credits:
        return gettext("prorated %(new)s from %(when)s") % words, (
            gettext("%(new)s was added on %(when)s: %(left)s were charged pro rata (%(owed)s)")
            % words
        )
    if change.has_credits and not change.has_charges:
        return gettext("unused %(old)s credited from %(when)s") % words, (
            gettext(
                "%(old)s was removed on %(when)s: the unused time of %(left)s was credited "
                "(%(total)s)"
            )
            % {**words, "left": _of_left(left)}
        )
    return gettext("prorated change of %(new)s from %(when)s") % words, (
        gettext(
            "%(new)s changed on %(when)s: %(owed)s for %(left)s less %(paid)s of unused time, "
            "%(total)s in total"
        )
        % words
    )


def _of_left(left: str) -> str:
    """The period left without its article, for "the unused time of …" (English)."""
    return left.removeprefix("the ") if money_language() is None else left


def proration_groups(
    lines: list[MirrorInvoiceLine], catalog: LineCatalog, currency: str
) -> list[Obj]:
    """Proration lines grouped by the change that made them (the same remaining period)."""
    groups: dict[tuple[Any, ...], list[MirrorInvoiceLine]] = defaultdict(list)
    for line in lines:
        if line.proration:
            groups[(line.period_start, line.period_end)].append(line)
    out = []
    for (start, end), items in sorted(groups.items(), key=lambda kv: kv[0][0] or datetime.min):
        change = _change(items, catalog)
        days = max(0, round((end - start).total_seconds() / 86400)) if start and end else None
        left = (
            gettext("the %(days)s left of that billing period") % {"days": plural(days, "day")}
            if days
            else gettext("the rest of that billing period")
        )
        summary, explanation = _told(change, long_date(start), left, currency)
        out.append(
            {
                "kind": "proration",
                "product": change.new_name or change.old_name,
                "amount": money_json(change.credit + change.charge, currency),
                "charged": money_json(change.charge, currency),
                "credited": money_json(change.credit, currency),
                "from_quantity": change.old_quantity,
                "to_quantity": change.new_quantity,
                "changed_at": iso(start),
                "period_end": iso(end),
                "days": days,
                "line_ids": [i.stripe_id for i in items],
                "explanation": explanation,
                "summary": summary,
            }
        )
    return out
