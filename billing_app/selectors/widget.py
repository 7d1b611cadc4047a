"""What the billing help widget reads (docs/self-service.md, section 3).

The widget answers a customer's common billing questions from their own account in the
mirror — never from the billing provider, so an answer costs a few queries and no Stripe
call — in the language the product page asked for (the caller activates it):

* ``next_invoice``: when the next invoice comes and what it will bill (the panel's own
  rule, ``context.subscription.next_invoice``), and any invoice still open, with its link;
* ``last_payment``: the latest charge, its amount, day, method and status — a failure in
  the customer's words (``vocabulary.decline``);
* ``invoices``: the latest finalized invoices with their hosted page and PDF.

Also here: finding a workspace's widget by slug, its allowed origins, and the count the
contact limits are decided on (rows, like the Freshdesk enrollment's send limit; the
open/answer limit counts requests in the cache, ``services.widget.answers``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext

from ..models import (
    BillingWidget,
    BillingWidgetEvent,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    Workspace,
)
from ..money import format_money, money_json
from ..vocabulary import decline
from .context.facts import customer_facts_load
from .context.subscription import next_invoice
from .context.subscription_state import date_words
from .payments import charge_method_label, charges_light, status_label

# The questions the widget answers from the account (read-only), in the order it lists
# them; ``services.widget`` adds the two that hand out a link (card update, refund).
ACCOUNT_QUESTIONS = ("next_invoice", "last_payment", "invoices")
INVOICES_SHOWN = 12
# Finalized invoices a customer can open; drafts are not theirs yet, void ones never were.
SHOWN_INVOICE_STATUSES = ("open", "paid", "uncollectible")
OPEN_INVOICES_SHOWN = 3
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class WidgetLink:
    label: str
    url: str
    kind: str = "link"  # link | pdf | card | refund | pay

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "url": self.url, "kind": self.kind}


@dataclass(frozen=True)
class WidgetItem:
    label: str
    detail: str = ""
    links: list[WidgetLink] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "detail": self.detail,
            "links": [link.as_dict() for link in self.links],
        }


@dataclass(frozen=True)
class WidgetAnswer:
    """One answer as the widget shows it: sentences, then items, then links (text only)."""

    question: str
    title: str
    lines: list[str] = field(default_factory=list)
    items: list[WidgetItem] = field(default_factory=list)
    links: list[WidgetLink] = field(default_factory=list)
    # Figures for a program reading the answer (amounts as money JSON, ISO days).
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "title": self.title,
            "lines": list(self.lines),
            "items": [item.as_dict() for item in self.items],
            "links": [link.as_dict() for link in self.links],
            "data": dict(self.data),
        }


# --- the widget and who may call it -----------------------------------------------------------


def widget_for_slug(*, slug: str) -> BillingWidget | None:
    """The enabled widget of the active workspace ``slug`` that has a secret, else ``None``."""
    if not slug or len(slug) > 50:
        return None
    widget = (
        BillingWidget.objects.select_related("workspace")
        .filter(workspace__slug=slug, workspace__is_active=True, enabled=True)
        .first()
    )
    if widget is None or not widget.identity_secret:
        return None
    return widget


def origin_normalise(value: str) -> str:
    """``HTTPS://Shop.Example:443/`` → ``https://shop.example``; ``""`` if not an origin.

    An origin as browsers send it (RFC 6454): scheme, host, and the port only when it is
    not the scheme's default — no path, query, fragment or credentials.
    """
    text = (value or "").strip()
    if not text or len(text) > 300 or any(c.isspace() for c in text):
        return ""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return ""
    if parts.username or parts.password or parts.query or parts.fragment:
        return ""
    if parts.path not in ("", "/"):
        return ""
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    elif not _HOST_RE.match(host):  # a wildcard, or characters no host name has
        return ""
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def widget_origins(widget: BillingWidget) -> frozenset[str]:
    """The origins allowed to call ``widget``'s API (one per line; invalid lines ignored)."""
    found = (origin_normalise(line) for line in (widget.allowed_origins or "").splitlines())
    return frozenset(origin for origin in found if origin)


def widget_customer(*, workspace: Workspace, customer_id: str) -> MirrorCustomer | None:
    return (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id, deleted=False)
        .defer("data")
        .first()
    )


def widget_events_counts(
    *,
    workspace: Workspace,
    customer_id: str,
    now: datetime,
    windows: tuple[timedelta, ...],
    kinds: tuple[str, ...],
) -> list[int]:
    """The customer's widget events of ``kinds`` in each of the last ``windows`` (the contact
    limits), counted in one statement."""
    counts = BillingWidgetEvent.objects.filter(
        workspace=workspace,
        customer_id=customer_id,
        kind__in=kinds,
        created_at__gte=now - max(windows),
    ).aggregate(
        **{
            f"w{i}": Count("pk", filter=Q(created_at__gte=now - window))
            for i, window in enumerate(windows)
        }
    )
    return [counts[f"w{i}"] for i in range(len(windows))]


# --- the answers -------------------------------------------------------------------------------


def _http_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL (a mirrored link we may hand out), else ``""``."""
    return url if url.startswith(("https://", "http://")) else ""


def _open_invoices(workspace: Workspace, customer_id: str) -> list[MirrorInvoice]:
    return list(
        MirrorInvoice.objects.filter(
            workspace=workspace, customer_id=customer_id, status="open", amount_remaining__gt=0
        )
        .defer("data")
        .order_by("-created", "-stripe_id")[:OPEN_INVOICES_SHOWN]
    )


def answer_next_invoice(
    *, workspace: Workspace, customer: MirrorCustomer, now: datetime
) -> WidgetAnswer:
    facts = customer_facts_load(
        workspace=workspace, customer=customer, now=now, real_now=timezone.now()
    )
    upcoming = next_invoice(
        facts.live,
        catalog=facts.catalog,
        discounts=facts.discounts,
        pending_prices=facts.pending_prices,
        currency=facts.currency,
    )
    lines: list[str] = []
    data: dict[str, Any] = {"next_invoice": None, "open_invoices": []}
    if upcoming is None:
        lines.append(gettext("You have no upcoming invoice: no subscription of yours renews."))
    else:
        amount = upcoming["amount"]
        when = datetime.fromisoformat(upcoming["date"])
        lines.append(
            gettext("Your next invoice is due on %(date)s for %(amount)s.")
            % {
                "date": date_words(when),
                "amount": format_money(amount["amount"], amount["currency"]),
            }
        )
        data["next_invoice"] = {"amount": amount, "date": upcoming["date"]}
    items = []
    for invoice in _open_invoices(workspace, customer.stripe_id):
        due = format_money(invoice.amount_remaining, invoice.currency)
        url = _http_url(invoice.hosted_invoice_url)
        items.append(
            WidgetItem(
                label=gettext("Open invoice %(number)s: %(amount)s to pay")
                % {"number": invoice.number or invoice.stripe_id, "amount": due},
                detail=date_words(invoice.created) if invoice.created else "",
                links=[WidgetLink(gettext("Pay now"), url, "pay")] if url else [],
            )
        )
        data["open_invoices"].append(
            {
                "id": invoice.stripe_id,
                "amount_remaining": money_json(invoice.amount_remaining, invoice.currency),
            }
        )
    return WidgetAnswer(
        "next_invoice", gettext("Next invoice"), lines=lines, items=items, data=data
    )


def _last_charge(workspace: Workspace, customer_id: str) -> MirrorCharge | None:
    return (
        charges_light(MirrorCharge.objects.filter(workspace=workspace, customer_id=customer_id))
        .order_by("-created", "-stripe_id")
        .first()
    )


def answer_last_payment(*, workspace: Workspace, customer: MirrorCustomer) -> WidgetAnswer:
    title = gettext("Last payment")
    charge = _last_charge(workspace, customer.stripe_id)
    if charge is None:
        return WidgetAnswer(
            "last_payment", title, lines=[gettext("We have no payment of yours on record yet.")]
        )
    values = {
        "amount": format_money(charge.amount, charge.currency),
        "date": date_words(charge.created) if charge.created else "",
        "method": charge_method_label(charge),
    }
    if charge.status == "failed":
        reason = decline(
            decline_code=charge.decline_code,
            failure_code=charge.failure_code,
            message=charge.failure_message,
        ).customer_text
        line = gettext(
            "Your payment of %(amount)s on %(date)s failed because of %(reason)s. "
            "Updating your card lets the next attempt go through."
        ) % {**values, "reason": reason}
    elif charge.status == "succeeded" and charge.amount_refunded:
        line = gettext(
            "Your payment of %(amount)s on %(date)s went through; %(refunded)s of it was refunded."
        ) % {**values, "refunded": format_money(charge.amount_refunded, charge.currency)}
    elif charge.status == "succeeded":
        line = gettext("Your payment of %(amount)s on %(date)s went through.") % values
    else:
        line = gettext("Your payment of %(amount)s on %(date)s is %(status)s.") % {
            **values,
            "status": status_label(charge.status).lower(),
        }
    lines = [line]
    if values["method"]:
        lines.append(gettext("Payment method: %(method)s") % values)
    return WidgetAnswer(
        "last_payment",
        title,
        lines=lines,
        data={
            "amount": money_json(charge.amount, charge.currency),
            "date": charge.created.date().isoformat() if charge.created else None,
            "status": charge.status,
            "succeeded": charge.status == "succeeded",
        },
    )


def answer_invoices(*, workspace: Workspace, customer: MirrorCustomer) -> WidgetAnswer:
    invoices = list(
        MirrorInvoice.objects.filter(
            workspace=workspace,
            customer_id=customer.stripe_id,
            status__in=SHOWN_INVOICE_STATUSES,
        )
        .defer("data")
        .order_by("-created", "-stripe_id")[:INVOICES_SHOWN]
    )
    title = gettext("Your invoices")
    if not invoices:
        return WidgetAnswer("invoices", title, lines=[gettext("You have no invoices yet.")])
    items = []
    for invoice in invoices:
        links = []
        if url := _http_url(invoice.hosted_invoice_url):
            links.append(WidgetLink(gettext("View"), url, "link"))
        if url := _http_url(invoice.invoice_pdf):
            links.append(WidgetLink(gettext("Download PDF"), url, "pdf"))
        items.append(
            WidgetItem(
                label=gettext("%(number)s · %(amount)s")
                % {
                    "number": invoice.number or invoice.stripe_id,
                    "amount": format_money(invoice.total, invoice.currency),
                },
                detail=gettext("%(date)s · %(status)s")
                % {
                    "date": date_words(invoice.created) if invoice.created else "",
                    "status": status_label(invoice.status),
                },
                links=links,
            )
        )
    return WidgetAnswer(
        "invoices",
        title,
        items=items,
        data={"invoices": [invoice.stripe_id for invoice in invoices]},
    )


def account_answer(
    *, question: str, workspace: Workspace, customer: MirrorCustomer, now: datetime
) -> WidgetAnswer:
    """The answer to one of ``ACCOUNT_QUESTIONS`` in the active language."""
    if question == "next_invoice":
        return answer_next_invoice(workspace=workspace, customer=customer, now=now)
    if question == "last_payment":
        return answer_last_payment(workspace=workspace, customer=customer)
    if question == "invoices":
        return answer_invoices(workspace=workspace, customer=customer)
    raise ValueError(f"not an account question: {question!r}")


__all__ = [
    "ACCOUNT_QUESTIONS",
    "WidgetAnswer",
    "WidgetItem",
    "WidgetLink",
    "account_answer",
    "origin_normalise",
    "widget_customer",
    "widget_events_counts",
    "widget_for_slug",
    "widget_origins",
]
