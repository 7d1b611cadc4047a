"""The billing support dashboard for one workspace and one month (DESIGN.md section 7).

Tickets, actions and approvals are read from the daily roll-ups that
``services.rollups`` keeps at write time (``MonthRollups``: one query for the
month, O(days × keys) rows whatever the volume); payment failures, provider calls,
webhook events and mirrored charges are aggregates of the month's rows computed by
the database. Python only sums and formats the few rows that come back. The number
of queries is fixed (16 for the dashboard, 18 for the report, besides the
transaction's BEGIN/set_config/COMMIT) whatever the amount of data. Months are
calendar months in UTC, days UTC days; a record belongs to the month of its creation
time (tickets: the helpdesk's ``created_at``; actions, approvals, provider calls: ours;
charges: Stripe's).

Definitions (what each figure means):

* **Billing ticket**: a synced helpdesk ticket that a ``TicketCategoryRule``
  put in a billing category.
* **Escalated**: the helpdesk marked the ticket escalated, or an action on the
  ticket needed approval (the permission matrix's ⬆ — DESIGN.md section 3).
* **Resolved without escalation**: solved/closed and not escalated.
* **Resolution time**: from the helpdesk (Zendesk's full-resolution metric,
  else solved − created), averaged over resolved billing tickets.
* **Auto-resolved** (per category): resolved without escalation, and the ticket
  has a succeeded action of that category's kind (``CATEGORY_ACTION_KINDS``)
  taken directly — no approval. ``other_billing`` accepts any kind.
* **Agent actions**: every agent's ``BillingAction`` (``channel`` ``agent``: not a
  customer's self-service refund) except those refused as not
  permitted; success rate = succeeded / (succeeded + failed); average time = the
  agent's handling time (``actions``); execution time = ``duration_ms`` of executed
  actions; "requiring approval" = decision
  ``approval``; approval time = ``ApprovalRequest`` created → decided.
* **Refunds processed**: succeeded refund actions (``issue_refund``,
  ``refund_duplicate_charge``) of both channels, amounts in the base currency; the
  approval path breakdown covers every refund request that was not refused outright
  (a customer's request refunded within the self-service limit: "Self-service").
* **Payment failures**: ``PaymentFailure`` rows (one per failed attempt, kept by
  ``services.payment_failures`` from webhooks, the sandbox and the mirror
  backfill) whose ``failed_at`` is in the month; *recovered* when it has a
  ``recovered_at`` (a later payment settled it), *after agent action* when that
  payment followed an agent's action; recovery time = failed → recovered;
  *churned* accounts: customers whose subscription ended after an unrecovered
  failure; *revenue at risk*: the MRR of every subscription with a failure in
  the month; *retained*: the MRR of those that recovered and did not end;
  *churned MRR*: of those that ended. MRR = Σ item unit amount × quantity
  normalised to a month, converted to the base currency with the workspace's
  ``CurrencyRate``s. Payment processing success = mirrored charges succeeded /
  (succeeded + failed).
* **System health**: ``ProviderCall`` rows (``InstrumentedProvider``):
  availability = calls not ``unavailable`` / calls (the uptime figure);
  API success rate = ``ok`` / calls; a component is Operational at ≥ 99.5 %
  availability, Degraded at ≥ 95 %, else Outage, and "No data" without calls.
  Webhook delivery = Stripe events processed or ignored / events finished.
  The provider's status *now* (shown with any month) uses its last 100 calls.
* **Recommendations**: ``recommendations_derive``; each rule and its threshold is
  in ``RECOMMENDATION_RULES``; the self-service features' rules read the workspace's
  state (``features``, in ``workspace.features``).

One module per section: ``tickets`` (tickets and categories), ``actions``, ``refunds``,
``failures`` (payment failures and their trend), ``health``, ``recommendations``,
``self_service`` (card-update prompts, self-service refund requests, the help widget);
``shared`` holds the month's record sets, percentages and money conversion, and
``build`` puts the sections together in one analytics transaction.
"""

from __future__ import annotations

from .actions import ACTION_LABELS, action_metrics, credit_bands
from .build import (
    analytics_session,
    dashboard_build,
    dashboard_default_month,
    report_default_month,
)
from .failures import FAILURE_REASONS, TREND_MONTHS, failure_trend, payment_failure_metrics
from .health import HEALTH_COMPONENTS, RESPONSE_TARGETS, STATUS_LABELS, health_metrics
from .recommendations import RECOMMENDATION_RULES, recommendations_derive
from .refunds import APPROVAL_PATHS, REFUND_KINDS, REFUND_REASON_LABELS, refund_metrics
from .self_service import QUESTION_LABELS, self_service_metrics
from .shared import (
    MonthRollups,
    action_groups,
    currency_rates,
    money,
    number_text,
    pct,
    pct_text,
    plural,
    to_base_exact,
    whole_minor_units,
)
from .tickets import (
    CATEGORY_ACTION_KINDS,
    CATEGORY_LABELS,
    RESOLUTION_TARGET_SECONDS,
    category_metrics,
    ticket_groups,
    ticket_metrics,
)

__all__ = [
    "ACTION_LABELS",
    "APPROVAL_PATHS",
    "CATEGORY_ACTION_KINDS",
    "CATEGORY_LABELS",
    "FAILURE_REASONS",
    "HEALTH_COMPONENTS",
    "QUESTION_LABELS",
    "RECOMMENDATION_RULES",
    "REFUND_KINDS",
    "REFUND_REASON_LABELS",
    "RESOLUTION_TARGET_SECONDS",
    "RESPONSE_TARGETS",
    "STATUS_LABELS",
    "TREND_MONTHS",
    "MonthRollups",
    "action_groups",
    "action_metrics",
    "analytics_session",
    "category_metrics",
    "credit_bands",
    "currency_rates",
    "dashboard_build",
    "dashboard_default_month",
    "failure_trend",
    "health_metrics",
    "money",
    "number_text",
    "payment_failure_metrics",
    "pct",
    "pct_text",
    "plural",
    "recommendations_derive",
    "refund_metrics",
    "report_default_month",
    "self_service_metrics",
    "ticket_groups",
    "ticket_metrics",
    "to_base_exact",
    "whole_minor_units",
]
