"""Payment failures on the sandbox, end to end: record, streak, warning, CSM outreach, recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import translation
from django.utils.translation import gettext

from billing_app.catalog import Role
from billing_app.errors import PreconditionFailed, ProviderUnavailable
from billing_app.models import (
    BillingAction,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    OutboxMessage,
    PaymentFailure,
)
from billing_app.providers.sandbox import objects as o
from billing_app.providers.sandbox.control import sandbox_control_set
from billing_app.providers.sandbox.payments import sandbox_payment_attempt
from billing_app.selectors.context import customer_context
from billing_app.selectors.dashboard import FAILURE_REASONS
from billing_app.services.mirror import mirror_upsert
from billing_app.services.outbox import outbox_redrive
from billing_app.services.payment_failures import (
    failure_reason,
    payment_failure_record,
    payment_failures_sync,
)
from helpdesk_connectors.demo.connector import DemoConnector
from helpdesk_connectors.models import DemoTicket, DemoTicketComment

from .context_support import AS_OF, seed_brief_day

NW = "cus_sbx_northwind"
NW_INVOICE = "in_sbx_northwind_07"
CSM_GROUP = "Customer Success"


@pytest.fixture
def seeded(db, settings):
    summary = seed_brief_day(settings)
    summary.workspace.csm_group = CSM_GROUP
    summary.workspace.save(update_fields=["csm_group"])
    return summary


@pytest.fixture
def ws(seeded):
    return seeded.workspace


def failures(ws, customer_id=NW):
    return list(
        PaymentFailure.objects.filter(workspace=ws, customer_id=customer_id).order_by("failed_at")
    )


def attempt(ws, *, decline="expired_card", hours=1, callbacks=None):
    """One collection attempt on Northwind's open invoice, run with the on-commit work."""
    with callbacks(execute=True):
        return sandbox_payment_attempt(
            workspace=ws,
            invoice_id=NW_INVOICE,
            decline_code=decline,
            at=AS_OF + timedelta(hours=hours),
        )


@pytest.fixture
def link_from_ticket(ws, api_as, django_capture_on_commit_callbacks):
    """An L1 agent sends Northwind a payment link from ticket NW-1 (the customer's latest ticket)."""

    def send():
        client = api_as(ws, Role.L1)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/v1/actions/",
                {
                    "kind": "generate_payment_link",
                    "customer_id": NW,
                    "ticket_id": "NW-1",
                    "params": {"invoice_id": NW_INVOICE},
                    "idempotency_key": "nw-link-1",
                },
                format="json",
            )
        assert response.status_code == 201, response.json()
        return BillingAction.objects.get(pk=response.json()["id"])

    return send


# --- decline codes in plain words -------------------------------------------------------------


@pytest.mark.parametrize(
    ("decline", "failure", "category", "text"),
    [
        ("expired_card", "expired_card", "card_expired", "Card expired"),
        ("insufficient_funds", "card_declined", "insufficient_funds", "Insufficient funds"),
        ("generic_decline", "card_declined", "card_declined", "Card declined (bank)"),
        ("do_not_honor", "card_declined", "card_declined", "Card declined (bank)"),
        ("", "incorrect_number", "card_not_recognized", "Card not recognized"),
        ("invalid_account", "card_declined", "card_not_recognized", "Card not recognized"),
        ("", "processing_error", "other", "Gateway error"),
        ("", "", "other", "Payment failed"),
    ],
)
def test_decline_codes_read_in_plain_words(decline, failure, category, text):
    reason = failure_reason(decline_code=decline, failure_code=failure)
    assert (reason.category, reason.text) == (category, text)


def test_the_stored_reason_is_english_whatever_the_active_language():
    # a failure recorded while a German agent's request is active stores the same words
    # as one recorded by a webhook: readers translate them when they show them
    with translation.override("de"):
        reason = failure_reason(decline_code="expired_card")
        shown = gettext(reason.text)
    assert reason.text == "Card expired"
    assert shown != reason.text


def test_reasons_fall_in_the_dashboards_categories():
    for key, label, codes in FAILURE_REASONS:
        for code in codes:
            assert failure_reason(decline_code=code).category == key, code
        assert failure_reason(decline_code=codes[0]).text.startswith(label.split(" (")[0])


def test_an_unknown_code_keeps_the_banks_message():
    reason = failure_reason(decline_code="weird_new_code", message="Your card was declined.")
    assert (reason.category, reason.text) == ("other", "Your card was declined")


# --- the demo's failed payment ------------------------------------------------------------------


def test_the_seed_records_northwinds_two_failed_attempts_once(ws):
    rows = failures(ws)

    assert [(f.charge_id, f.attempt_count, f.consecutive_count) for f in rows] == [
        ("ch_sbx_northwind_07_attempt1", 1, 1),
        ("ch_sbx_northwind_07_attempt2", 2, 2),
    ]
    latest = rows[-1]
    assert (latest.amount, latest.currency, latest.reason, latest.reason_category) == (
        14_900,
        "USD",
        "Card expired",
        "card_expired",
    )
    assert latest.invoice_id == NW_INVOICE
    assert latest.subscription_id == "sub_sbx_northwind"
    assert latest.next_retry_at == AS_OF + timedelta(days=2)
    assert rows[0].next_retry_at is None
    assert all(f.recovered_at is None and f.suspension_warning_sent_at is None for f in rows)
    # and a second backfill changes nothing
    assert payment_failures_sync(workspace=ws, customer_ids=[NW]) == 2
    assert PaymentFailure.objects.filter(workspace=ws).count() == 2


def test_third_consecutive_failure_warns_once_and_opens_one_csm_ticket(
    ws, link_from_ticket, django_capture_on_commit_callbacks
):
    # given the agent sent a payment link from ticket NW-1
    action = link_from_ticket()
    notes_before = DemoTicketComment.objects.filter(ticket_id="NW-1").count()

    # when the third attempt fails
    charge = attempt(ws, callbacks=django_capture_on_commit_callbacks)

    # then the failure is recorded with the invoice's attempt and retry
    third = PaymentFailure.objects.get(workspace=ws, charge_id=charge["id"])
    assert (third.attempt_count, third.consecutive_count) == (3, 3)
    assert third.next_retry_at == AS_OF + timedelta(hours=1, days=3)
    assert third.source == PaymentFailure.Source.SANDBOX
    # and the account suspension warning went out once: a flag, a note on the latest ticket
    assert third.suspension_warning_sent_at is not None
    assert third.suspension_note_status == "posted"
    notes = DemoTicketComment.objects.filter(
        ticket_id="NW-1", public=False, body__contains="Account suspension warning"
    )
    assert notes.count() == 1
    assert DemoTicketComment.objects.filter(ticket_id="NW-1").count() == notes_before + 1
    assert "Northwind Traders" in notes[0].body and "$149.00" in notes[0].body
    # and one CSM outreach ticket for the CSM group
    (ticket,) = DemoTicket.objects.all()
    assert ticket.group == CSM_GROUP
    assert ticket.subject == "CSM outreach: Northwind Traders — 3 consecutive payment failures"
    assert third.csm_outreach_status == "ticket"
    assert third.csm_outreach_ref == f"demo:{ticket.ticket_id}"
    body = DemoTicketComment.objects.get(ticket_id=ticket.ticket_id).body
    assert "Card expired (attempt 3)" in body
    assert action.ticket_id == "NW-1"

    # when a fourth attempt fails too
    attempt(ws, hours=2, callbacks=django_capture_on_commit_callbacks)

    # then nothing is sent twice
    assert DemoTicket.objects.count() == 1
    assert notes.count() == 1
    fourth = failures(ws)[-1]
    assert (fourth.consecutive_count, fourth.suspension_warning_sent_at) == (4, None)
    assert (
        PaymentFailure.objects.filter(
            workspace=ws, suspension_warning_sent_at__isnull=False
        ).count()
        == 1
    )


def test_the_panel_shows_the_failure_with_its_actions_and_the_suspension_warning(
    ws, link_from_ticket, django_capture_on_commit_callbacks
):
    link_from_ticket()
    attempt(ws, callbacks=django_capture_on_commit_callbacks)

    customer = MirrorCustomer.objects.get(workspace=ws, stripe_id=NW)
    alerts = {a["type"]: a for a in customer_context(workspace=ws, customer=customer)["alerts"]}

    failed = alerts["payment_failed"]["data"]
    assert (failed["amount"]["display"], failed["reason"], failed["attempt_count"]) == (
        "$149.00",
        "Card expired",
        3,
    )
    assert failed["next_payment_attempt"] == "2026-01-18T13:00:00Z"
    assert failed["consecutive_failures"] == 3 and failed["suspension_warning"] is True
    assert failed["actions"] == [
        {
            "kind": "generate_payment_link",
            "label": "Send payment link",
            "params": {"invoice_id": NW_INVOICE},
        },
        {
            "kind": "extend_grace_period",
            "label": "Extend grace period",
            "params": {"subscription_id": "sub_sbx_northwind", "days": 7, "invoice_id": NW_INVOICE},
        },
    ]
    warning = alerts["suspension_warning"]
    assert warning["severity"] == "danger"
    assert warning["data"]["consecutive_failures"] == 3
    assert warning["data"]["csm_outreach"]["status"] == "ticket"
    assert warning["message"].startswith(
        "Account suspension warning: 3 consecutive payment failures"
    )


def test_a_later_payment_recovers_the_streak_with_its_time_to_recover(
    ws, link_from_ticket, django_capture_on_commit_callbacks
):
    # given three failures, the last one an hour after the brief's day began
    link_from_ticket()
    attempt(ws, callbacks=django_capture_on_commit_callbacks)

    # when the customer pays two days later
    attempt(ws, decline=None, hours=48, callbacks=django_capture_on_commit_callbacks)

    # then every open failure of the invoice is recovered at the payment, once
    paid_at = AS_OF + timedelta(hours=48)
    rows = failures(ws)
    assert [f.recovered_at for f in rows] == [paid_at] * 3
    assert [f.time_to_recover for f in rows] == [paid_at - f.failed_at for f in rows]
    assert rows[-1].time_to_recover == timedelta(hours=47)
    # the agent had sent a payment link during the streak
    assert {f.recovered_by for f in rows} == {"agent_action"}
    assert MirrorInvoice.objects.get(workspace=ws, stripe_id=NW_INVOICE).status == "paid"
    # and the panel has no failure alert left
    customer = MirrorCustomer.objects.get(workspace=ws, stripe_id=NW)
    types = {a["type"] for a in customer_context(workspace=ws, customer=customer)["alerts"]}
    assert not types & {"payment_failed", "suspension_warning"}


def test_after_recovery_the_consecutive_count_starts_again(ws, django_capture_on_commit_callbacks):
    # given Northwind recovered (without an agent's action)
    attempt(ws, decline=None, hours=5, callbacks=django_capture_on_commit_callbacks)
    assert {f.recovered_by for f in failures(ws)} == {"payment"}
    # and the next month's invoice is open
    customer = MirrorCustomer.objects.get(workspace=ws, stripe_id=NW).data
    start = AS_OF + relativedelta(days=27)
    line = o.line_item(
        id="il_sbx_northwind_08",
        invoice_id="in_sbx_northwind_08",
        amount=14_900,
        currency="usd",
        description="1 × Pro (at $149.00 / month)",
        period_start=start,
        period_end=start + relativedelta(months=1),
        subscription_id="sub_sbx_northwind",
        subscription_item_id="si_sbx_northwind_pro__monthly",
    )
    mirror_upsert(
        workspace=ws,
        obj=o.invoice(
            id="in_sbx_northwind_08",
            customer=customer,
            number="NWT-0008",
            created=start,
            lines=[line],
            status="open",
            period_start=start,
            period_end=start,
            subscription_id="sub_sbx_northwind",
            default_payment_method="pm_sbx_northwind_mastercard_4444",
        ),
    )

    # when its first attempt fails
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_payment_attempt(
            workspace=ws,
            invoice_id="in_sbx_northwind_08",
            decline_code="insufficient_funds",
            at=start + timedelta(hours=1),
        )

    # then it is the first of a new streak, in its own words
    latest = failures(ws)[-1]
    assert (latest.consecutive_count, latest.attempt_count) == (1, 1)
    assert (latest.reason, latest.decline_code, latest.failure_code) == (
        "Insufficient funds",
        "insufficient_funds",
        "card_declined",
    )
    assert latest.suspension_warning_sent_at is None


def test_recording_the_same_failure_again_changes_nothing(ws):
    charge = MirrorCharge.objects.get(workspace=ws, stripe_id="ch_sbx_northwind_07_attempt2")
    before = list(PaymentFailure.objects.filter(workspace=ws).values())

    again = payment_failure_record(workspace=ws, charge=charge)
    by_invoice = payment_failure_record(
        workspace=ws, invoice=MirrorInvoice.objects.get(workspace=ws, stripe_id=NW_INVOICE)
    )

    assert again.pk == by_invoice.pk == failures(ws)[-1].pk
    after = list(PaymentFailure.objects.filter(workspace=ws).values())
    strip = {"updated_at"}
    assert [{k: v for k, v in r.items() if k not in strip} for r in after] == [
        {k: v for k, v in r.items() if k not in strip} for r in before
    ]


def test_a_success_mirrored_before_the_failure_leaves_it_recovered(ws):
    # given Northwind's invoice was already paid when a late failure report is processed
    PaymentFailure.objects.filter(workspace=ws).delete()
    invoice = MirrorInvoice.objects.get(workspace=ws, stripe_id=NW_INVOICE)
    paid_at = AS_OF + timedelta(hours=6)
    mirror_upsert(
        workspace=ws,
        obj={
            **invoice.data,
            "status": "paid",
            "amount_paid": 14_900,
            "amount_remaining": 0,
            "status_transitions": {
                **invoice.data["status_transitions"],
                "paid_at": int(paid_at.timestamp()),
            },
        },
    )

    # when the failed attempt is recorded after that
    failure = payment_failure_record(
        workspace=ws,
        charge=MirrorCharge.objects.get(workspace=ws, stripe_id="ch_sbx_northwind_07_attempt2"),
    )

    # then it is not left open
    assert failure.recovered_at == paid_at
    assert failure.time_to_recover == paid_at - failure.failed_at
    assert failure.recovered_via == NW_INVOICE
    assert failure.suspension_warning_sent_at is None


class NoTicketsDemoConnector(DemoConnector):
    """The demo helpdesk, as one that cannot open tickets."""

    features = DemoConnector.features - {"create_ticket"}


def test_without_ticket_creation_the_csm_is_asked_on_the_latest_ticket(
    ws, settings, link_from_ticket, django_capture_on_commit_callbacks
):
    settings.HELPDESK_CONNECTORS = {
        **settings.HELPDESK_CONNECTORS,
        "demo": "tests.billing_app.test_payment_failures.NoTicketsDemoConnector",
    }
    link_from_ticket()

    attempt(ws, callbacks=django_capture_on_commit_callbacks)

    failure = failures(ws)[-1]
    assert failure.csm_outreach_status == "note"
    assert failure.csm_outreach_ref.startswith("NW-1:")
    assert not DemoTicket.objects.exists()
    bodies = list(DemoTicketComment.objects.filter(ticket_id="NW-1").values_list("body", flat=True))
    assert (
        sum("CSM outreach requested" in b and f"CSM group: {CSM_GROUP}" in b for b in bodies) == 1
    )
    assert sum("Account suspension warning" in b for b in bodies) == 1


class WorkerKilled(BaseException):
    """What SIGKILL looks like from inside: the worker never reaches its own bookkeeping."""


class DiesOnceAfterStoringDemoConnector(DemoConnector):
    """The demo helpdesk, whose worker dies once right after the helpdesk stored a note."""

    armed = False

    def post_internal_note(self, installation, ticket_id, body):
        note_id = super().post_internal_note(installation, ticket_id, body)
        if DiesOnceAfterStoringDemoConnector.armed:
            DiesOnceAfterStoringDemoConnector.armed = False
            raise WorkerKilled
        return note_id


def test_a_worker_killed_after_the_warning_note_was_stored_does_not_post_it_twice(
    ws, settings, link_from_ticket, django_capture_on_commit_callbacks
):
    # given the worker dies right after the helpdesk stored the suspension warning
    settings.HELPDESK_CONNECTORS = {
        **settings.HELPDESK_CONNECTORS,
        "demo": "tests.billing_app.test_payment_failures.DiesOnceAfterStoringDemoConnector",
    }
    link_from_ticket()
    DiesOnceAfterStoringDemoConnector.armed = True
    with pytest.raises(WorkerKilled):
        attempt(ws, callbacks=django_capture_on_commit_callbacks)
    message = OutboxMessage.objects.get(kind=OutboxMessage.Kind.FAILURE_ESCALATION)
    assert (message.status, message.outcome_unknown) == ("sending", True)
    warnings = DemoTicketComment.objects.filter(
        ticket_id="NW-1", body__contains="Account suspension warning"
    )
    assert warnings.count() == 1

    # when the re-drive takes the row once the dead worker's lease lapses
    assert outbox_redrive(now=message.lease_until).delivered == 1

    # then it found the warning by its marker instead of posting it again
    assert warnings.count() == 1
    failure = failures(ws)[-1]
    assert failure.suspension_note_status == "posted"
    assert failure.suspension_note_ref == f"NW-1:{warnings.get().pk}"
    # and the CSM outreach went out once
    assert DemoTicket.objects.count() == 1
    assert failure.csm_outreach_status == "ticket"


def test_with_no_csm_group_and_no_ticket_nothing_is_sent_and_that_is_recorded(
    ws, django_capture_on_commit_callbacks
):
    ws.csm_group = ""
    ws.save(update_fields=["csm_group"])

    attempt(ws, callbacks=django_capture_on_commit_callbacks)

    failure = failures(ws)[-1]
    assert failure.suspension_warning_sent_at is not None
    assert (failure.suspension_note_status, failure.csm_outreach_status) == (
        "no_ticket",
        "no_channel",
    )
    assert not DemoTicket.objects.exists() and not DemoTicketComment.objects.exists()


def test_simulated_payments_follow_the_sandbox_rules(ws):
    sandbox_control_set(workspace=ws, down=True, reason="drill")
    with pytest.raises(ProviderUnavailable):
        sandbox_payment_attempt(workspace=ws, invoice_id=NW_INVOICE, decline_code="expired_card")
    sandbox_control_set(workspace=ws, down=False)
    with pytest.raises(PreconditionFailed) as refused:
        sandbox_payment_attempt(workspace=ws, invoice_id="in_sbx_acme_2026_01")
    assert refused.value.code in {"invoice_not_open", "invoice_not_found"}
    assert len(failures(ws)) == 2
    assert MirrorInvoice.objects.get(workspace=ws, stripe_id=NW_INVOICE).attempt_count == 2


# --- GET customers/{id}/failures/ -------------------------------------------------------------


def test_failures_endpoint_lists_the_customers_failures(
    ws, api_as, django_capture_on_commit_callbacks
):
    attempt(ws, callbacks=django_capture_on_commit_callbacks)

    response = api_as(ws, Role.L1).get(f"/api/v1/customers/{NW}/failures/")

    assert response.status_code == 200
    body = response.json()
    assert body["summary"]["total"] == 3 and body["summary"]["open"] == 3
    assert body["summary"]["consecutive_failures"] == 3
    assert body["summary"]["suspension_warning"] is True
    first = body["items"][0]
    assert (first["reason"], first["attempt_count"], first["status"]) == ("Card expired", 3, "open")
    assert first["amount"] == {
        "amount": 14_900,
        "currency": "USD",
        "exponent": 2,
        "display": "$149.00",
    }
    assert first["csm_outreach"]["status"] == "ticket"


def test_failures_endpoint_refuses_strangers(ws, api_as, make_workspace, client):
    assert client.get(f"/api/v1/customers/{NW}/failures/").status_code == 401
    other = make_workspace("globex-corp")
    response = api_as(other, Role.MANAGER).get(f"/api/v1/customers/{NW}/failures/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


# --- under real concurrency (PostgreSQL) --------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    "postgresql" not in __import__("django.db").db.connection.vendor,
    reason="needs PostgreSQL (DATABASE_URL): SQLite has no row locks and one writer",
)
def test_concurrent_reports_of_the_third_failure_record_it_once_and_warn_once(make_workspace):
    import threading
    from datetime import UTC, datetime

    from django.db import connections

    ws = make_workspace("race")
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)
    card = o.card_payment_method(
        id="pm_race",
        customer_id="cus_race",
        created=now,
        brand="visa",
        last4="0002",
        exp_month=1,
        exp_year=2030,
        name="Race",
    )
    customer = o.customer(
        id="cus_race",
        name="Race Ltd",
        email="ap@race.example",
        created=now,
        currency="usd",
        default_payment_method=card,
    )
    line = o.line_item(
        id="il_race",
        invoice_id="in_race",
        amount=5_000,
        currency="usd",
        description="1 × Plan",
        period_start=now,
        period_end=now + timedelta(days=30),
        subscription_id="sub_race",
        subscription_item_id="si_race",
    )
    invoice = o.invoice(
        id="in_race",
        customer=customer,
        number="RACE-1",
        created=now,
        lines=[line],
        status="open",
        period_start=now,
        period_end=now,
        subscription_id="sub_race",
        payment_intent="pi_race",
        attempt_count=3,
        next_payment_attempt=now + timedelta(days=3),
    )
    for obj in (customer, card, invoice):
        mirror_upsert(workspace=ws, obj=obj)
    for n in (1, 2, 3):
        mirror_upsert(
            workspace=ws,
            obj=o.charge(
                id=f"ch_race_{n}",
                customer_id="cus_race",
                amount=5_000,
                currency="usd",
                created=now + timedelta(hours=n),
                payment_method=card,
                payment_intent="pi_race",
                failure_code="card_declined",
            ),
        )
    for n in (1, 2):
        payment_failure_record(
            workspace=ws, charge=MirrorCharge.objects.get(stripe_id=f"ch_race_{n}")
        )

    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def report(i: int) -> None:
        try:
            barrier.wait()
            if i % 2:
                payment_failure_record(
                    workspace=ws, invoice=MirrorInvoice.objects.get(stripe_id="in_race")
                )
            else:
                payment_failure_record(
                    workspace=ws, charge=MirrorCharge.objects.get(stripe_id="ch_race_3")
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=report, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert PaymentFailure.objects.filter(workspace=ws).count() == 3
    assert (
        PaymentFailure.objects.filter(
            workspace=ws, suspension_warning_sent_at__isnull=False
        ).count()
        == 1
    )
    assert PaymentFailure.objects.get(workspace=ws, charge_id="ch_race_3").consecutive_count == 3


# --- manage.py sandbox_payment ------------------------------------------------------------------


def test_the_command_simulates_a_failed_then_a_paid_attempt(ws):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command(
        "sandbox_payment",
        "--workspace",
        ws.slug,
        "--invoice",
        NW_INVOICE,
        "--decline",
        "insufficient_funds",
        stdout=out,
    )
    assert "Insufficient funds, attempt 3, 3 in a row (suspension warning sent)." in out.getvalue()
    call_command("sandbox_payment", "--workspace", ws.slug, "--invoice", NW_INVOICE, stdout=out)
    assert "Paid: charge" in out.getvalue()
    assert all(f.recovered_at is not None for f in failures(ws))
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("sandbox_payment", "--workspace", ws.slug, "--invoice", NW_INVOICE)
