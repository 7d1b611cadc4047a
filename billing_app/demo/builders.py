"""Shared builders of the demo's Stripe-shaped objects: cards, items, paid invoices, monthly runs.

``DemoObjects`` collects what the customer modules (``billing_app.demo.customers``)
build, dated relative to ``as_of``; nothing here touches the database or a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta

from ..providers.sandbox import objects as o
from .catalog import DemoCatalog

Obj = dict[str, Any]


@dataclass
class SeededCustomer:
    id: str
    name: str
    email: str
    scenario: str


def ts(value: int) -> datetime:
    """A Stripe timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(value, tz=UTC)


class DemoObjects:
    """The objects of the seeded customers, built one customer module at a time."""

    def __init__(self, as_of: datetime):
        self.as_of = as_of
        self.objects: list[Obj] = []
        self.catalog = DemoCatalog(as_of - relativedelta(years=3))
        self.customers: dict[str, SeededCustomer] = {}
        self.acme_last_charge_id = ""

    def put(self, *objs: Obj) -> None:
        self.objects.extend(objs)

    def customer(self, key: str, scenario: str, **kwargs: Any) -> Obj:
        obj = o.customer(**kwargs)
        self.customers[key] = SeededCustomer(obj["id"], obj["name"], obj["email"], scenario)
        return obj

    def card(
        self,
        customer_id: str,
        brand: str,
        last4: str,
        exp: datetime,
        name: str,
        country: str = "US",
    ) -> Obj:
        return o.card_payment_method(
            id=f"pm_sbx_{customer_id.removeprefix('cus_sbx_')}_{brand}_{last4}",
            customer_id=customer_id,
            created=self.as_of - relativedelta(years=2),
            brand=brand,
            last4=last4,
            exp_month=exp.month,
            exp_year=exp.year,
            name=name,
            country=country,
        )

    @staticmethod
    def item(
        sub_id: str, price: Obj, qty: int, start: datetime, end: datetime, created: datetime
    ) -> Obj:
        return o.subscription_item(
            id=f"si_sbx_{sub_id.removeprefix('sub_sbx_')}_{price['id'].removeprefix('price_sbx_')}",
            subscription_id=sub_id,
            price=price,
            quantity=qty,
            created=created,
            period_start=start,
            period_end=end,
        )

    def paid_invoice(
        self,
        *,
        id: str,
        customer: Obj,
        number: str,
        created: datetime,
        paid_at: datetime,
        lines: list[Obj],
        pm: Obj,
        subscription_id: str | None,
        period_start: datetime,
        period_end: datetime,
        collection_method: str = "charge_automatically",
        billing_reason: str = "subscription_cycle",
        due_date: datetime | None = None,
        tax_rate_percent: Decimal | None = None,
        refunds: Iterable[tuple[str, int, datetime, str]] = (),
        disputed: bool = False,
    ) -> tuple[Obj, Obj | None]:
        """A finalized, paid invoice and the charge that paid it (none for a zero total)."""
        pi = id.replace("in_", "pi_", 1)
        charge_id = id.replace("in_", "ch_", 1)
        for line in lines:
            line["invoice"] = id
        zero = sum(int(line["amount"]) for line in lines) == 0
        invoice = o.invoice(
            id=id,
            customer=customer,
            number=number,
            created=created,
            lines=lines,
            status="paid",
            period_start=period_start,
            period_end=period_end,
            subscription_id=subscription_id,
            collection_method=collection_method,
            billing_reason=billing_reason,
            due_date=due_date,
            paid_at=paid_at,
            payment_intent=None if zero else pi,
            attempt_count=0 if zero else 1,
            tax_rate_percent=tax_rate_percent,
            tax_rate_id="txr_sbx_de_vat_19" if tax_rate_percent is not None else None,
            default_payment_method=pm["id"],
        )
        if zero:
            self.put(invoice)
            return invoice, None
        refund_objs = [
            o.refund(
                id=refund_id,
                charge_id=charge_id,
                payment_intent=pi,
                amount=amount,
                currency=invoice["currency"],
                created=when,
                reason="requested_by_customer",
                metadata={"billing_desk_reason": reason},
            )
            for refund_id, amount, when, reason in refunds
        ]
        charge = o.charge(
            id=charge_id,
            customer_id=customer["id"],
            amount=invoice["amount_paid"],
            currency=invoice["currency"],
            created=paid_at,
            payment_method=pm,
            payment_intent=pi,
            description=f"Payment for Invoice {number}",
            refunds=refund_objs,
            disputed=disputed,
            receipt_email=customer["email"],
        )
        self.put(invoice, charge)
        return invoice, charge

    def monthly(
        self,
        *,
        customer: Obj,
        sub_id: str,
        price: Obj,
        qty: int,
        anchors: list[datetime],
        pm: Obj,
        prefix: str,
        first_number: int = 1,
        paid_after: timedelta = timedelta(minutes=55),
        tax_rate_percent: Decimal | None = None,
    ) -> list[tuple[Obj, Obj | None]]:
        """A paid invoice per anchor (each the start of a monthly period), oldest first."""
        results = []
        for n, start in enumerate(anchors):
            end = start + relativedelta(months=1)
            invoice_id = f"in_sbx_{customer['id'].removeprefix('cus_sbx_')}_{n + 1:02d}"
            line = o.line_item(
                id=invoice_id.replace("in_", "il_", 1),
                invoice_id=invoice_id,
                amount=int(price["unit_amount"]) * qty,
                currency=price["currency"],
                description=o.recurring_line_description(price, qty),
                period_start=start,
                period_end=end,
                price=price,
                quantity=qty,
                subscription_id=sub_id,
                subscription_item_id=self.item(sub_id, price, qty, start, end, start)["id"],
            )
            results.append(
                self.paid_invoice(
                    id=invoice_id,
                    customer=customer,
                    number=f"{prefix}-{first_number + n:04d}",
                    created=start,
                    paid_at=start + paid_after,
                    lines=[line],
                    pm=pm,
                    subscription_id=sub_id,
                    period_start=start,
                    period_end=end,
                    billing_reason="subscription_create" if n == 0 else "subscription_cycle",
                    tax_rate_percent=tax_rate_percent,
                )
            )
        return results

    @staticmethod
    def anchors(last: datetime, count: int) -> list[datetime]:
        return [last - relativedelta(months=k) for k in range(count - 1, -1, -1)]

    def all_objects(self) -> list[Obj]:
        """The catalog first (customers' objects refer to it), then what the customers built."""
        return [*self.catalog.objects(), *self.objects]
