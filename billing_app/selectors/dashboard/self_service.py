"""Self-service on the dashboard and in the monthly report (issue 18, docs/self-service.md §4).

Three figures sets, each for the month and the month before with the change, each read
with aggregate queries over the two months' rows (the database counts and sums; Python
only subtracts and formats):

* **Card-update prompts** (``CardPrompt``), by the month the prompt was *sent*
  (``sent_at``): a month's prompts keep gaining outcomes after the month ends, so its
  figures are "so far". *Cards updated*: the prompt has a ``card_updated_at`` (the
  default card changed after it, from webhooks). *Failures avoided*: updated **and** the
  next renewal invoice paid (``renewal_paid_at``). *Revenue kept*: Σ
  ``renewal_amount_base`` of those (base currency; renewals without a rate are counted in
  ``revenue_unconverted``, not guessed). *Update rate*: updated / sent. One query.
* **Self-service refund requests** (``SelfServiceRefundRequest``), by the month the
  request was made: *executed within the self-service limit* (``refunded``), *sent to
  agents* (``with_agents`` pending, ``approved``, ``denied``), *refused* — not eligible by
  the agents' own rules (``refused``) —, and the rest (received, being confirmed, failed).
  *Refunded amount*: Σ ``amount_base`` of ``refunded`` and ``approved``. *Agent time per
  request*: a request executed or refused took no agent (0); one sent to agents took its
  approval's decision time, measured as the dashboard's "average approval time" is
  (``ApprovalRequest`` created → decided, expiry included) — time to a decision, waiting
  included, not working minutes. Averaged over the requests that are settled (pending and
  failed ones are left out; ``agent_time_measured`` says how many). Compared with the
  handling time the dashboard shows for agent-initiated ``issue_refund`` actions (panel
  open → action done or submitted), which this month's action roll-ups already hold:
  a self-service action carries no panel-open time, so it is not in that average. One query.
* **Billing help widget** (``BillingWidgetEvent``), by the event's month: *visits*
  (distinct widget visits: customer and the script's visit id), *questions answered*
  (``answered`` events), *answered visits*, *visits that contacted support*, *deflected*:
  answered visits without a ``contact`` event in the visit and without a contact by the
  customer (from any visit) within 24 hours after any of its answers — a visit is the
  script's tab session, and a customer who reads an answer and writes to support on the
  next page, or the next morning, was not helped; *deflection rate* = deflected / answered
  visits. By question: answered events per question. Two queries (the visits, grouped per
  visit in a subquery, each answer checked for a later contact by a correlated
  ``EXISTS``; the questions).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Sum,
    Value,
    When,
)
from django.utils.translation import gettext, gettext_noop

from ...models import BillingWidgetEvent, CardPrompt, SelfServiceRefundRequest, Workspace
from ...vocabulary import Labels
from ..months import Month
from .shared import money, number_text, pct, pct_text, round_or_none, seconds

RefundStatus = SelfServiceRefundRequest.Status
SENT_TO_AGENTS = (RefundStatus.WITH_AGENTS, RefundStatus.APPROVED, RefundStatus.DENIED)
# Refunds that happened through self-service: within the limit, or approved by an agent.
REFUNDED = (RefundStatus.REFUNDED, RefundStatus.APPROVED)
# Settled without an agent: no agent time (0).
NO_AGENT = (RefundStatus.REFUNDED, RefundStatus.REFUSED)

# The widget's questions (``BillingWidgetEvent.question``; ``services.widget.QUESTIONS``),
# named for the dashboard, read in the active language when looked up; a question not
# listed here is shown by its key.
QUESTION_LABELS: Labels = Labels(
    {
        "next_invoice": gettext_noop("Next invoice"),
        "last_payment": gettext_noop("Last payment"),
        "invoices": gettext_noop("Invoices to download"),
        "update_card": gettext_noop("Update card"),
        "refund": gettext_noop("Request a refund"),
    }
)

# The figures of each part, in the order the page, the CSV and the text show them:
# (key, English label, kind). Kinds: count, money, pct, minutes, hours.
CARD_PROMPT_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("sent", gettext_noop("Prompts sent"), "count"),
    ("cards_updated", gettext_noop("Cards updated after a prompt"), "count"),
    ("update_rate_pct", gettext_noop("Update rate (cards updated / prompts sent)"), "pct"),
    (
        "failures_avoided",
        gettext_noop("Failures avoided (card updated, next renewal paid)"),
        "count",
    ),
    ("revenue_kept", gettext_noop("Revenue kept (those renewals, base currency)"), "money"),
)
REFUND_REQUEST_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("requests", gettext_noop("Refund requests"), "count"),
    ("executed", gettext_noop("Executed within the self-service limit"), "count"),
    ("sent_to_agents", gettext_noop("Sent to agents (approval request and ticket)"), "count"),
    ("refused", gettext_noop("Refused as not eligible (the agents' rules)"), "count"),
    ("in_progress", gettext_noop("Received, being confirmed or failed"), "count"),
    ("refunded_amount", gettext_noop("Refunded (within the limit or approved)"), "money"),
    (
        "agent_minutes_per_request",
        gettext_noop("Agent time per request (approval decision time; 0 without an agent)"),
        "minutes",
    ),
    (
        "avg_approval_hours",
        gettext_noop("Average approval time of requests sent to agents"),
        "hours",
    ),
)
WIDGET_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("visits", gettext_noop("Widget visits"), "count"),
    ("questions_answered", gettext_noop("Questions answered"), "count"),
    ("answered_visits", gettext_noop("Visits with an answered question"), "count"),
    ("contact_visits", gettext_noop("Visits that contacted support"), "count"),
    ("deflected_visits", gettext_noop("Deflected (answered, no contact)"), "count"),
    ("deflection_rate_pct", gettext_noop("Deflection rate (deflected / answered visits)"), "pct"),
)


def _current(month: Month, field: str) -> Q:
    return Q(**{f"{field}__gte": month.start})


def _previous(month: Month, field: str) -> Q:
    return Q(**{f"{field}__lt": month.start})


def _window(month: Month, field: str) -> dict[str, datetime]:
    """The two months' rows: from the previous month's first instant to this month's end."""
    return {f"{field}__gte": month.shift(-1).start, f"{field}__lt": month.end}


# --- card-update prompts -----------------------------------------------------------------------


def _card_prompt_sums(workspace: Workspace, month: Month) -> dict[str, dict[str, Any]]:
    updated = Q(card_updated_at__isnull=False)
    avoided = updated & Q(renewal_paid_at__isnull=False)
    measures: dict[str, Any] = {}
    for period, when in (("current", _current), ("previous", _previous)):
        sent = when(month, "sent_at")
        measures |= {
            f"{period}__sent": Count("pk", filter=sent),
            f"{period}__sent_expiring": Count(
                "pk", filter=sent & Q(reason=CardPrompt.Reason.EXPIRING)
            ),
            f"{period}__sent_failed": Count("pk", filter=sent & Q(reason=CardPrompt.Reason.FAILED)),
            f"{period}__cards_updated": Count("pk", filter=sent & updated),
            f"{period}__failures_avoided": Count("pk", filter=sent & avoided),
            f"{period}__revenue_kept": Sum("renewal_amount_base", filter=sent & avoided),
            f"{period}__revenue_unconverted": Count(
                "pk", filter=sent & avoided & Q(renewal_amount_base__isnull=True)
            ),
        }
    row = CardPrompt.objects.filter(workspace=workspace, **_window(month, "sent_at")).aggregate(
        **measures
    )
    return _split(row)


def _card_prompt_figures(sums: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "sent": sums["sent"],
        "sent_expiring": sums["sent_expiring"],
        "sent_failed": sums["sent_failed"],
        "cards_updated": sums["cards_updated"],
        "update_rate_pct": pct(sums["cards_updated"], sums["sent"]),
        "failures_avoided": sums["failures_avoided"],
        "revenue_kept": money(sums["revenue_kept"], currency),
        "revenue_unconverted": sums["revenue_unconverted"],
    }


# --- self-service refund requests --------------------------------------------------------------


def _refund_request_sums(workspace: Workspace, month: Month) -> dict[str, dict[str, Any]]:
    decided = Q(action__approval__decided_at__isnull=False)
    decision_time = ExpressionWrapper(
        F("action__approval__decided_at") - F("action__approval__created_at"),
        output_field=DurationField(),
    )
    measures: dict[str, Any] = {}
    for period, when in (("current", _current), ("previous", _previous)):
        made = when(month, "created_at")
        measures |= {
            f"{period}__requests": Count("pk", filter=made),
            f"{period}__executed": Count("pk", filter=made & Q(status=RefundStatus.REFUNDED)),
            f"{period}__sent_to_agents": Count("pk", filter=made & Q(status__in=SENT_TO_AGENTS)),
            f"{period}__approved": Count("pk", filter=made & Q(status=RefundStatus.APPROVED)),
            f"{period}__declined": Count("pk", filter=made & Q(status=RefundStatus.DENIED)),
            f"{period}__with_agents": Count("pk", filter=made & Q(status=RefundStatus.WITH_AGENTS)),
            f"{period}__refused": Count("pk", filter=made & Q(status=RefundStatus.REFUSED)),
            f"{period}__refunded_amount": Sum("amount_base", filter=made & Q(status__in=REFUNDED)),
            f"{period}__refunded_unconverted": Count(
                "pk", filter=made & Q(status__in=REFUNDED, amount_base__isnull=True)
            ),
            f"{period}__measured": Count("pk", filter=made & (Q(status__in=NO_AGENT) | decided)),
            f"{period}__approvals_decided": Count("pk", filter=made & decided),
            f"{period}__decision_time": Sum(decision_time, filter=made & decided),
        }
    row = SelfServiceRefundRequest.objects.filter(
        workspace=workspace, **_window(month, "created_at")
    ).aggregate(**measures)
    return _split(row)


def _refund_request_figures(sums: dict[str, Any], currency: str) -> dict[str, Any]:
    decision_seconds = seconds(sums["decision_time"]) or 0.0
    decided = sums["approvals_decided"]
    measured = sums["measured"]
    settled = (
        sums["executed"] + sums["sent_to_agents"] + sums["refused"]
    )  # every request but those received, being confirmed or failed
    return {
        "requests": sums["requests"],
        "executed": sums["executed"],
        "executed_pct": pct(sums["executed"], sums["requests"]),
        "sent_to_agents": sums["sent_to_agents"],
        "sent_to_agents_pct": pct(sums["sent_to_agents"], sums["requests"]),
        "approved": sums["approved"],
        "declined": sums["declined"],
        "with_agents": sums["with_agents"],
        "refused": sums["refused"],
        "in_progress": sums["requests"] - settled,
        "refunded_amount": money(sums["refunded_amount"], currency),
        "refunded_unconverted": sums["refunded_unconverted"],
        "agent_time_measured": measured,
        "agent_minutes_per_request": (
            round_or_none(decision_seconds / measured / 60) if measured else None
        ),
        "approvals_decided": decided,
        "avg_approval_hours": round_or_none(decision_seconds / decided / 3600) if decided else None,
    }


def _agent_initiated(actions: dict[str, Any]) -> dict[str, Any]:
    """This month's handling time of agent-initiated refunds: the dashboard's own
    ``issue_refund`` row (no query)."""
    row = next((r for r in actions["rows"] if r["key"] == "issue_refund"), None)
    return {
        "avg_handling_minutes": row["avg_handling_minutes"] if row else None,
        "handling_measured": row["handling_measured"] if row else 0,
        "count": row["count"] if row else 0,
    }


# --- the billing help widget -------------------------------------------------------------------


# A contact this soon after an answer means the answer did not help (not deflected).
CONTACT_AFTER_ANSWER = timedelta(hours=24)


def _widget_sums(workspace: Workspace, month: Month) -> dict[str, dict[str, Any]]:
    """Per visit (customer + visit id, per month) in a subquery, then counted per month."""
    Kind = BillingWidgetEvent.Kind
    events = BillingWidgetEvent.objects.filter(workspace=workspace, **_window(month, "created_at"))
    # the customer contacted support (from any visit) within a day after this answer
    contact_after = Exists(
        BillingWidgetEvent.objects.filter(
            workspace=workspace,
            customer_id=OuterRef("customer_id"),
            kind=Kind.CONTACT,
            created_at__gte=OuterRef("created_at"),
            created_at__lte=ExpressionWrapper(
                OuterRef("created_at") + CONTACT_AFTER_ANSWER, output_field=DateTimeField()
            ),
        )
    )
    visits = (
        events.annotate(
            current=Case(
                When(_current(month, "created_at"), then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
        )
        .values("current", "customer_id", "visit")
        .annotate(
            answered=Count("pk", filter=Q(kind=Kind.ANSWERED)),
            contacted=Count("pk", filter=Q(kind=Kind.CONTACT)),
            contacted_after=Count("pk", filter=Q(contact_after, kind=Kind.ANSWERED)),
        )
        .order_by()
    )
    measures: dict[str, Any] = {}
    for period, flag in (("current", 1), ("previous", 0)):
        mine = Q(current=flag)
        measures |= {
            f"{period}__visits": Count("visit", filter=mine),
            f"{period}__questions_answered": Sum("answered", filter=mine),
            f"{period}__answered_visits": Count("visit", filter=mine & Q(answered__gt=0)),
            f"{period}__contact_visits": Count("visit", filter=mine & Q(contacted__gt=0)),
            f"{period}__deflected_visits": Count(
                "visit", filter=mine & Q(answered__gt=0, contacted=0, contacted_after=0)
            ),
        }
    return _split(visits.aggregate(**measures))


def _widget_questions(workspace: Workspace, month: Month) -> list[dict[str, Any]]:
    rows = (
        BillingWidgetEvent.objects.filter(
            workspace=workspace,
            kind=BillingWidgetEvent.Kind.ANSWERED,
            **_window(month, "created_at"),
        )
        .values("question")
        .annotate(
            current=Count("pk", filter=_current(month, "created_at")),
            previous=Count("pk", filter=_previous(month, "created_at")),
        )
        .order_by()
    )
    found = []
    for row in rows:
        key = row["question"] or "other"
        found.append(
            {
                "key": key,
                "label": (
                    QUESTION_LABELS[key]
                    if key in QUESTION_LABELS
                    else key.replace("_", " ").capitalize()
                ),
                "current": row["current"],
                "previous": row["previous"],
                "change": row["current"] - row["previous"],
                "change_text": _count_change_text(row["current"], row["previous"]),
            }
        )
    found.sort(key=lambda r: (-r["current"], -r["previous"], r["key"]))
    return found


def _widget_figures(sums: dict[str, Any]) -> dict[str, Any]:
    answered_visits = sums["answered_visits"]
    return {
        "visits": sums["visits"],
        "questions_answered": sums["questions_answered"] or 0,
        "answered_visits": answered_visits,
        "contact_visits": sums["contact_visits"],
        "deflected_visits": sums["deflected_visits"],
        "deflection_rate_pct": pct(sums["deflected_visits"], answered_visits),
    }


# --- the section -------------------------------------------------------------------------------


def _split(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"current__sent": 3, "previous__sent": 1}`` → ``{"current": {"sent": 3}, …}``."""
    out: dict[str, dict[str, Any]] = {"current": {}, "previous": {}}
    for name, value in row.items():
        period, _, key = name.partition("__")
        out[period][key] = value if value is not None or key in _NULLABLE else 0
    return out


# Sums that stay None when there is nothing to sum (money → 0 later; durations → None).
_NULLABLE = {"decision_time", "revenue_kept", "refunded_amount"}


def _change(current: Any, previous: Any, kind: str, currency: str) -> Any:
    """This month − the month before: counts and money as a difference, rates and times in
    their own unit (percentage points, minutes, hours); None when either is unknown."""
    if kind == "money":
        return money(current["amount"] - previous["amount"], currency)
    if current is None or previous is None:
        return None
    if kind == "count":
        return current - previous
    return round(current - previous, 1)


def _signed(text: str, value: float | int) -> str:
    return f"+{text}" if value > 0 else text


def _count_change_text(current: int, previous: int) -> str:
    diff = current - previous
    text = _signed(number_text(diff, grouped=True), diff)
    relative = pct(diff, previous)
    if relative is None:
        return text
    return f"{text} ({_signed(pct_text(relative, 1), relative)})"


def _value_text(value: Any, kind: str) -> str:
    if kind == "money":
        return str(value["display"])
    if value is None:
        return gettext("n/a")
    if kind == "count":
        return number_text(value, grouped=True)
    if kind == "pct":
        return pct_text(value, 1)
    if kind == "minutes":
        return gettext("%(minutes)s min") % {"minutes": number_text(value, 1)}
    return gettext("%(hours)s hours") % {"hours": number_text(value, 1)}


def _change_text(current: Any, previous: Any, change: Any, kind: str) -> str:
    if kind == "count" and change is not None:
        return _count_change_text(current, previous)
    if kind == "money":
        diff = change["amount"]
        return f"+{change['display']}" if diff > 0 else str(change["display"])
    if change is None:
        return gettext("n/a")
    if kind == "pct":
        return gettext("%(points)s pp") % {"points": _signed(number_text(change, 1), change)}
    return _signed(_value_text(change, kind), change)


def _part(
    current: dict[str, Any],
    previous: dict[str, Any],
    figures: tuple[tuple[str, str, str], ...],
    currency: str,
) -> dict[str, Any]:
    change = {
        key: _change(current[key], previous[key], kind, currency) for key, _label, kind in figures
    }
    rows = [
        {
            "key": key,
            "label": gettext(label),
            "kind": kind,
            "current_text": _value_text(current[key], kind),
            "previous_text": _value_text(previous[key], kind),
            "change_text": _change_text(current[key], previous[key], change[key], kind),
        }
        for key, label, kind in figures
    ]
    return {"current": current, "previous": previous, "change": change, "rows": rows}


def self_service_metrics(
    *, workspace: Workspace, month: Month, actions: dict[str, Any]
) -> dict[str, Any]:
    """The dashboard's and the monthly report's "Self-service" section (four queries).

    ``actions`` is the dashboard's agent-actions figures of the same month (the
    agent-initiated refunds' handling time is read from it, not queried again).
    """
    currency = workspace.base_currency
    prompts = _card_prompt_sums(workspace, month)
    refunds = _refund_request_sums(workspace, month)
    widget = _widget_sums(workspace, month)
    refund_part = _part(
        _refund_request_figures(refunds["current"], currency),
        _refund_request_figures(refunds["previous"], currency),
        REFUND_REQUEST_FIGURES,
        currency,
    )
    refund_part["agent_initiated"] = _agent_initiated(actions)
    widget_part = _part(
        _widget_figures(widget["current"]),
        _widget_figures(widget["previous"]),
        WIDGET_FIGURES,
        currency,
    )
    widget_part["by_question"] = _widget_questions(workspace, month)
    previous = month.shift(-1)
    return {
        "previous_month": previous.key,
        "previous_month_label": previous.label,
        "card_prompts": _part(
            _card_prompt_figures(prompts["current"], currency),
            _card_prompt_figures(prompts["previous"], currency),
            CARD_PROMPT_FIGURES,
            currency,
        ),
        "refund_requests": refund_part,
        "widget": widget_part,
    }
