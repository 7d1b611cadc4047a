"""Helpdesk tickets for the dashboard: export from each installation, categorise, store.

Each installation's connector pages through the tickets changed since the last
run (Zendesk: the cursor-based incremental export; Freshdesk: tickets updated
since a time). Every page is written in one transaction together with the new
cursor, so an interrupted sync resumes where it stopped and never double-counts
(tickets are upserted on (installation, external id)). One sync per installation
runs at a time: a short lease on ``TicketSyncState`` is claimed with a
conditional UPDATE instead of a row lock held across network calls.

Billing categories come from the workspace's ``TicketCategoryRule``s (tags first,
then subject keywords, by priority); resolution time, escalation, reopens and
CSAT come from the helpdesk's own data in the ``TicketRecord``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from helpdesk_connectors.base import TicketRecord
from helpdesk_connectors.models import Installation
from helpdesk_connectors.registry import get_connector

from ..errors import NotFound
from ..models import (
    HelpdeskTicket,
    TicketCategory,
    TicketCategoryRule,
    TicketSyncState,
    Workspace,
    WorkspaceInstallation,
)
from .rollups import rollups_tickets_changed

TAG = TicketCategoryRule.MatchType.TAG
KEYWORD = TicketCategoryRule.MatchType.SUBJECT_KEYWORD
RESOLVED_STATUSES = frozenset({"solved", "closed", "resolved"})
SYNC_LEASE = timedelta(minutes=30)
# The connector feature that says it can export tickets (``HelpdeskConnector.features``).
FEATURE_TICKET_EXPORT = "ticket_export"

# (category, tags, subject keywords). Tag rules get priorities 10–90 in this order and
# keyword rules 110–190, so a deliberate helpdesk tag always beats a subject word, and
# the specific categories beat the generic "billing" catch-all (900/950).
DEFAULT_RULES: tuple[tuple[TicketCategory, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        TicketCategory.DUPLICATE_CHARGE,
        ("duplicate_charge", "double_charge", "charged_twice"),
        ("charged twice", "double charge", "double charged", "duplicate charge"),
    ),
    (
        TicketCategory.OVERCHARGE_DISPUTE,
        ("overcharge", "overcharged", "billing_dispute"),
        ("overcharged", "overcharge", "charged too much", "wrong amount"),
    ),
    (
        TicketCategory.REFUND_REQUEST,
        ("refund", "refund_request"),
        ("refund", "money back"),
    ),
    (
        TicketCategory.PAYMENT_FAILED,
        ("payment_failed", "failed_payment", "card_declined"),
        ("payment failed", "failed payment", "card declined", "declined", "payment failure"),
    ),
    (
        TicketCategory.PAYMENT_METHOD_UPDATE,
        ("payment_method", "update_card", "payment_method_update"),
        ("update card", "update my card", "new card", "payment method", "change card"),
    ),
    (
        TicketCategory.TAX_QUESTION,
        ("tax", "vat", "tax_invoice", "gst"),
        ("tax invoice", "tax", "vat", "gst", "tax id"),
    ),
    (
        TicketCategory.PLAN_CHANGE_REQUEST,
        ("plan_change", "upgrade", "downgrade"),
        ("upgrade", "downgrade", "change plan", "change my plan", "switch plan"),
    ),
    (
        TicketCategory.INVOICE_DISCREPANCY,
        ("invoice_discrepancy", "invoice_issue", "wrong_invoice"),
        ("invoice", "receipt"),
    ),
)
CATCH_ALL = (
    TicketCategory.OTHER_BILLING,
    ("billing", "billing_question", "subscription"),
    ("billing", "charge", "payment", "subscription", "pricing"),
)


@transaction.atomic
def ticket_category_rules_seed(*, workspace: Workspace) -> int:
    """Give a workspace the default categorisation rules. Idempotent; returns rules created."""
    wanted: list[TicketCategoryRule] = []
    for position, (category, tags, keywords) in enumerate(DEFAULT_RULES, start=1):
        wanted += [
            TicketCategoryRule(
                workspace=workspace,
                category=category,
                match_type=TAG,
                value=v,
                priority=position * 10,
            )
            for v in tags
        ]
        wanted += [
            TicketCategoryRule(
                workspace=workspace,
                category=category,
                match_type=KEYWORD,
                value=v,
                priority=100 + position * 10,
            )
            for v in keywords
        ]
    category, tags, keywords = CATCH_ALL
    wanted += [
        TicketCategoryRule(
            workspace=workspace, category=category, match_type=TAG, value=v, priority=900
        )
        for v in tags
    ]
    wanted += [
        TicketCategoryRule(
            workspace=workspace, category=category, match_type=KEYWORD, value=v, priority=950
        )
        for v in keywords
    ]
    before = TicketCategoryRule.objects.filter(workspace=workspace).count()
    TicketCategoryRule.objects.bulk_create(wanted, ignore_conflicts=True)
    return TicketCategoryRule.objects.filter(workspace=workspace).count() - before


class TicketCategorizer:
    """The workspace's active rules, compiled once; ``categorize`` is pure."""

    def __init__(self, rules: Iterable[TicketCategoryRule]):
        ordered = sorted(
            (r for r in rules if r.is_active),
            key=lambda r: (r.priority, 0 if r.match_type == TAG else 1, r.pk or 0),
        )
        self._rules: list[tuple[str, str, re.Pattern[str] | None]] = []
        for rule in ordered:
            value = rule.value.strip().lower()
            if not value:
                continue
            pattern = (
                re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE)
                if rule.match_type == KEYWORD
                else None
            )
            self._rules.append((rule.category, value, pattern))

    @classmethod
    def for_workspace(cls, workspace: Workspace) -> TicketCategorizer:
        return cls(TicketCategoryRule.objects.filter(workspace=workspace, is_active=True))

    def categorize(self, *, subject: str, tags: Sequence[str]) -> str:
        """The category key, or ``""`` when the ticket is not a billing ticket."""
        tag_set = {t.strip().lower() for t in tags}
        for category, value, pattern in self._rules:
            if pattern is None:
                if value in tag_set:
                    return category
            elif pattern.search(subject or ""):
                return category
        return ""


def _resolution_seconds(record: TicketRecord, resolved: bool) -> int | None:
    """Zendesk's own full-resolution metric when the export carries it, else solved − created."""
    if not resolved:
        return None
    metric = (record.raw.get("metric_set") or {}).get("full_resolution_time_in_minutes")
    minutes = metric.get("calendar") if isinstance(metric, dict) else None
    if isinstance(minutes, int | float) and not isinstance(minutes, bool) and minutes >= 0:
        return round(minutes * 60)
    if record.solved_at is not None and record.created_at is not None:
        return max(0, round((record.solved_at - record.created_at).total_seconds()))
    return None


def _csat(score: float | None) -> int | None:
    if score is None:
        return None
    return min(5, max(1, round(score)))


def ticket_from_record(
    *,
    record: TicketRecord,
    workspace: Workspace,
    installation: Installation,
    categorizer: TicketCategorizer,
) -> HelpdeskTicket:
    status = (record.status or "").strip().lower()
    resolved = record.solved_at is not None or status in RESOLVED_STATUSES
    category = categorizer.categorize(subject=record.subject, tags=record.tags)
    return HelpdeskTicket(
        workspace=workspace,
        installation=installation,
        external_id=str(record.ticket_id)[:64],
        subject=(record.subject or "")[:500],
        status=status[:32],
        tags=list(record.tags),
        category=category,
        is_billing=bool(category),
        created_at=record.created_at,
        updated_at=record.updated_at,
        solved_at=record.solved_at,
        resolution_seconds=_resolution_seconds(record, resolved),
        escalated=bool(record.escalated),
        reopens=max(0, int(record.reopens or 0)),
        csat_score=_csat(record.satisfaction_score),
        requester_email=(record.requester_email or "").strip().lower()[:255],
        raw=record.raw,
    )


_UPDATE_FIELDS = [
    "workspace",
    "subject",
    "status",
    "tags",
    "category",
    "is_billing",
    "created_at",
    "updated_at",
    "solved_at",
    "resolution_seconds",
    "escalated",
    "reopens",
    "csat_score",
    "requester_email",
    "raw",
    "synced_at",
]


def tickets_upsert(
    *,
    records: Iterable[TicketRecord],
    workspace: Workspace,
    installation: Installation,
    categorizer: TicketCategorizer,
) -> int:
    """Insert or update one page of tickets with one statement; returns how many."""
    by_id: dict[str, HelpdeskTicket] = {}
    for record in records:
        ticket = ticket_from_record(
            record=record, workspace=workspace, installation=installation, categorizer=categorizer
        )
        by_id[ticket.external_id] = ticket  # a ticket twice in a page: its last state wins
    if not by_id:
        return 0
    HelpdeskTicket.objects.bulk_create(
        list(by_id.values()),
        update_conflicts=True,
        unique_fields=["installation", "external_id"],
        update_fields=_UPDATE_FIELDS,
    )
    rollups_tickets_changed(
        workspace=workspace,
        tickets=HelpdeskTicket.objects.filter(installation=installation, external_id__in=by_id),
    )
    return len(by_id)


@dataclass(frozen=True)
class TicketSyncResult:
    installation_id: int
    tickets: int
    pages: int
    skipped: bool = False
    reason: str = ""


def _workspace_of(installation: Installation) -> Workspace:
    link = (
        WorkspaceInstallation.objects.select_related("workspace")
        .filter(installation=installation)
        .first()
    )
    if link is None:
        raise NotFound(
            f"Installation {installation.pk} is not linked to a workspace.",
            code="unknown_installation",
        )
    return link.workspace


def tickets_sync_installation(
    *,
    installation: Installation,
    on_page: Callable[[int], None] | None = None,
    max_pages: int | None = None,
) -> TicketSyncResult:
    """Export the installation's changed tickets into ``HelpdeskTicket`` until the stream ends.

    Raises the connector's ``HelpdeskApiError`` after saving the progress made
    so far (the caller — a Celery task — retries the retryable ones).
    """
    workspace = _workspace_of(installation)
    connector = get_connector(installation.connector)
    if FEATURE_TICKET_EXPORT not in connector.features:
        return TicketSyncResult(installation.pk, 0, 0, skipped=True, reason="no ticket export")
    state, _ = TicketSyncState.objects.get_or_create(installation=installation)
    now = timezone.now()
    claimed = (
        TicketSyncState.objects.filter(pk=state.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + SYNC_LEASE)
    )
    if not claimed:
        return TicketSyncResult(installation.pk, 0, 0, skipped=True, reason="already running")
    state.refresh_from_db()
    categorizer = TicketCategorizer.for_workspace(workspace)
    initial_days = int(getattr(settings, "TICKET_SYNC_INITIAL_DAYS", 365))
    since: datetime = state.since or (now - timedelta(days=initial_days))
    cursor: str | None = state.cursor or None
    total = pages = 0
    error = ""
    try:
        while max_pages is None or pages < max_pages:
            page = connector.tickets_updated_since(installation, since=since, cursor=cursor)
            newest = max((r.updated_at for r in page.tickets), default=None)
            with transaction.atomic():
                count = tickets_upsert(
                    records=page.tickets,
                    workspace=workspace,
                    installation=installation,
                    categorizer=categorizer,
                )
                if newest is not None and newest > since:
                    since = newest
                cursor = page.cursor or None
                TicketSyncState.objects.filter(pk=state.pk).update(
                    cursor=cursor or "",
                    since=since,
                    tickets_synced=state.tickets_synced + total + count,
                )
            total += count
            pages += 1
            if on_page is not None:
                on_page(count)
            if page.end_of_stream or (not page.tickets and not page.cursor):
                break
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        TicketSyncState.objects.filter(pk=state.pk).update(
            lease_until=None, last_run_at=timezone.now(), last_error=error
        )
    return TicketSyncResult(installation.pk, total, pages)


def installations_for_ticket_sync(
    *, workspace: Workspace | None = None, installation_id: int | None = None
) -> list[Installation]:
    """Active installations of active workspaces, optionally narrowed."""
    queryset = Installation.objects.filter(
        is_active=True, workspace_link__workspace__is_active=True
    )
    if workspace is not None:
        queryset = queryset.filter(workspace_link__workspace=workspace)
    if installation_id is not None:
        queryset = queryset.filter(pk=installation_id)
    return list(queryset.order_by("pk"))


def tickets_recategorize(*, workspace: Workspace, batch_size: int = 2000) -> int:
    """Re-apply the workspace's current rules to its stored tickets; returns tickets changed."""
    categorizer = TicketCategorizer.for_workspace(workspace)
    changed: list[HelpdeskTicket] = []
    total = 0
    tickets = HelpdeskTicket.objects.filter(workspace=workspace).only(
        "pk", "subject", "tags", "category", "is_billing"
    )
    for ticket in tickets.iterator(chunk_size=batch_size):
        category = categorizer.categorize(subject=ticket.subject, tags=ticket.tags or [])
        if category != ticket.category:
            ticket.category, ticket.is_billing = category, bool(category)
            changed.append(ticket)
        if len(changed) >= batch_size:
            _recategorized(workspace, changed)
            total += len(changed)
            changed = []
    if changed:
        _recategorized(workspace, changed)
        total += len(changed)
    return total


def _recategorized(workspace: Workspace, changed: list[HelpdeskTicket]) -> None:
    """Store the new categories and move the tickets' roll-ups with them, together."""
    with transaction.atomic():
        HelpdeskTicket.objects.bulk_update(changed, ["category", "is_billing"])
        rollups_tickets_changed(
            workspace=workspace,
            tickets=HelpdeskTicket.objects.filter(pk__in=[t.pk for t in changed]),
        )
