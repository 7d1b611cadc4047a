"""Card-update prompts: the daily scan, the email sent once, unsubscribe, templates, outcomes.

The workspace is a sandbox one whose mirror holds Stripe-shaped objects (the project's
fixtures): Acme Corp's Visa 4242 expires 03/2027, so on ``NOW`` (5 March 2027) it expires
within the default 30-day window (it works until 1 April). Emails go to Django's locmem
backend (``mail.outbox``); delivery is the outbox's, driven by hand.
"""

from __future__ import annotations

import re
import smtplib
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

from billing_app.checks import card_prompts_email
from billing_app.errors import ValidationFailed
from billing_app.models import (
    CardPrompt,
    CardPromptTemplate,
    CustomerOptOut,
    OutboxMessage,
    PaymentFailure,
)
from billing_app.providers.sandbox.control import sandbox_control_set
from billing_app.selectors.card_prompts import card_expires_at, card_prompt_candidates
from billing_app.services.card_prompts import (
    card_prompt_template_validate,
    card_prompts_scan,
    card_prompts_scan_all,
    unsubscribe_token_read,
)
from billing_app.services.mirror import mirror_upsert
from billing_app.services.outbox import outbox_message_deliver, outbox_redrive

from .stripe_support import load

ACME = "cus_RbAcmeCorp0001"
VISA = "pm_1RbAcmeVisa4242"
SUB = "sub_1RbAcmeEnterprise01"
NOW = datetime(2027, 3, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def ws(make_workspace):
    workspace = make_workspace("acme-prompts")
    workspace.card_prompts_enabled = True
    workspace.save(update_fields=["card_prompts_enabled"])
    # The billing clock is NOW too (delivery asks it whether the card still expires): on
    # the wall clock the fixture card would have expired from April 2027 on.
    sandbox_control_set(workspace=workspace, clock=NOW)
    mirror_upsert(workspace=workspace, obj=load("customer"))
    mirror_upsert(workspace=workspace, obj=load("payment_method", customer=ACME))
    mirror_upsert(workspace=workspace, obj=load("subscription"))
    return workspace


def _message(prompt: CardPrompt) -> OutboxMessage:
    return OutboxMessage.objects.get(kind=OutboxMessage.Kind.CARD_PROMPT, target_id=str(prompt.pk))


def _deliver(prompt: CardPrompt, *, now: datetime | None = None) -> str:
    return outbox_message_deliver(message_id=_message(prompt).pk, now=now, first=now is None)


def _failure(
    ws,
    *,
    category,
    n=1,
    recovered=False,
    failed_at=NOW - timedelta(days=1),
    card: str | None = VISA,
):
    """A payment failure on Acme's open invoice; the failed charge (paid with ``card``) is in
    the mirror unless ``card`` is None (a charge the mirror does not know)."""
    if card is not None:
        mirror_upsert(
            workspace=ws,
            obj=load(
                "charge_failed",
                id=f"ch_fail_{n}",
                customer=ACME,
                payment_method=card,
                invoice="in_1RbAcmeOpen0023",
            ),
        )
    return PaymentFailure.objects.create(
        workspace=ws,
        customer_id=ACME,
        subscription_id=SUB,
        invoice_id="in_1RbAcmeOpen0023",
        charge_id=f"ch_fail_{n}",
        attempt_key=f"attempt-{n}",
        amount=240000,
        currency="usd",
        decline_code="expired_card" if category == "card_expired" else "",
        failure_code="expired_card" if category == "card_expired" else "processing_error",
        reason_category=category,
        reason="Card expired",
        failed_at=failed_at,
        recovered_at=failed_at + timedelta(hours=1) if recovered else None,
    )


def test_card_expiry_is_the_end_of_its_month():
    assert card_expires_at(2027, 3) == datetime(2027, 4, 1, tzinfo=UTC)
    assert card_expires_at(2027, 12) == datetime(2028, 1, 1, tzinfo=UTC)
    assert card_expires_at(2028, 2) == datetime(2028, 3, 1, tzinfo=UTC)  # leap year


def test_an_expiring_card_gets_one_prompt_and_one_email_across_scans_and_redeliveries(ws):
    # Given the Visa expiring within the window
    # When the scan runs twice (a retry, a restart, beat and a manual run)
    first = card_prompts_scan(workspace=ws, now=NOW)
    second = card_prompts_scan(workspace=ws, now=NOW + timedelta(days=1))

    # Then one prompt and one outbox message exist
    assert (first.candidates, first.created) == (1, 1)
    assert (second.candidates, second.created) == (1, 0)
    prompt = CardPrompt.objects.get(workspace=ws)
    assert (prompt.customer_id, prompt.payment_method_id, prompt.reason, prompt.window) == (
        ACME,
        VISA,
        "expiring",
        "exp-2027-03",
    )
    assert OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CARD_PROMPT).count() == 1

    # When the outbox delivers it, and the message is delivered again (a redelivered doorbell)
    assert _deliver(prompt) == OutboxMessage.Status.DONE
    OutboxMessage.objects.filter(pk=_message(prompt).pk).update(
        status=OutboxMessage.Status.PENDING, next_attempt_at=NOW
    )
    assert _deliver(prompt, now=NOW + timedelta(days=400)) == OutboxMessage.Status.DONE

    # Then exactly one email went out, to the customer, with the signed link and RFC 8058 headers
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["billing@acme.example"]
    assert email.subject == "Your payment card for Acme Prompts expires soon"
    assert "Visa ending in 4242" in email.body and "03/2027" in email.body
    assert "http://127.0.0.1:8000/billing/card/" in email.body
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = email.extra_headers["List-Unsubscribe"].strip("<>")
    assert one_click.endswith("/one-click/")
    token = one_click.split("/billing/card/unsubscribe/")[1].split("/")[0]
    claim = unsubscribe_token_read(token)
    assert (claim.workspace_id, claim.customer_id) == (ws.pk, ACME)
    assert email.extra_headers["Message-ID"] == f"<card-prompt-{prompt.pk}.{ws.pk}@127.0.0.1>"
    assert "4242" not in email.extra_headers["List-Unsubscribe"]  # ids only in links
    html = email.alternatives[0][0]
    assert 'href="http://127.0.0.1:8000/billing/card/unsubscribe/' in html
    prompt.refresh_from_db()
    assert prompt.status == CardPrompt.Status.SENT
    assert prompt.sent_at is not None and prompt.email == "billing@acme.example"


def test_a_new_card_gets_its_own_prompt_in_the_same_month(ws):
    card_prompts_scan(workspace=ws, now=NOW)
    # The customer replaced the card with another one expiring this month too.
    mirror_upsert(
        workspace=ws, obj=load("payment_method", id="pm_new", customer=ACME, created=1800000000)
    )
    mirror_upsert(
        workspace=ws, obj=load("subscription", default_payment_method="pm_new", created=1710806400)
    )
    result = card_prompts_scan(workspace=ws, now=NOW)
    assert result.created == 1
    assert set(CardPrompt.objects.values_list("payment_method_id", flat=True)) == {VISA, "pm_new"}


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (NOW - timedelta(days=30), 0),  # 4 February: expires in 55 days, outside the window
        (datetime(2027, 3, 2, tzinfo=UTC), 1),  # 30 days before 1 April
        (datetime(2027, 4, 1, tzinfo=UTC), 0),  # already expired: the failure path's business
    ],
)
def test_only_cards_expiring_within_the_window(ws, now, expected):
    assert len(card_prompt_candidates(workspace=ws, now=now)) == expected


def test_the_window_is_the_workspace_setting(ws):
    ws.card_prompt_window_days = 60
    ws.save(update_fields=["card_prompt_window_days"])
    assert len(card_prompt_candidates(workspace=ws, now=NOW - timedelta(days=30))) == 1


def test_no_prompt_without_opt_in_or_a_live_automatically_charged_subscription(ws):
    ws.card_prompts_enabled = False
    ws.save(update_fields=["card_prompts_enabled"])
    assert card_prompts_scan(workspace=ws, now=NOW).created == 0
    assert card_prompts_scan_all(now=NOW) == []
    ws.card_prompts_enabled = True
    ws.save(update_fields=["card_prompts_enabled"])
    mirror_upsert(workspace=ws, obj=load("subscription", cancel_at_period_end=True))
    assert card_prompt_candidates(workspace=ws, now=NOW) == []
    assert not CardPrompt.objects.exists()


def test_a_recent_card_failure_prompts_once_per_failed_invoice(ws):
    _failure(ws, category="card_expired", n=1)
    _failure(ws, category="card_expired", n=2, failed_at=NOW - timedelta(hours=2))
    candidates = card_prompt_candidates(workspace=ws, now=NOW)
    # The failed card is also the expiring one: one email about it, the failure's
    assert [(c.reason, c.window, c.subscription_id) for c in candidates] == [
        ("failed", "fail-in_1RbAcmeOpen0023", SUB),
    ]
    card_prompts_scan(workspace=ws, now=NOW)
    prompt = CardPrompt.objects.get(reason="failed")
    _deliver(prompt)
    email = mail.outbox[0]
    assert email.subject == "Your payment to Acme Prompts did not go through"
    assert "$2,400.00" in email.body and "Card expired" in email.body
    # A third retry fails on the same invoice: no second prompt.
    _failure(ws, category="card_expired", n=3, failed_at=NOW - timedelta(hours=1))
    assert card_prompts_scan(workspace=ws, now=NOW).created == 0


@pytest.mark.parametrize(
    ("category", "recovered", "age"),
    [
        ("other", False, timedelta(days=1)),  # a processing error: a new card does not help
        ("card_declined", True, timedelta(days=1)),  # paid since
        ("card_declined", False, timedelta(days=20)),  # older than the lookback
    ],
)
def test_no_failure_prompt_for_other_reasons_recovered_or_old(ws, category, recovered, age):
    _failure(ws, category=category, recovered=recovered, failed_at=NOW - age)
    assert [c.reason for c in card_prompt_candidates(workspace=ws, now=NOW)] == ["expiring"]


def test_an_unsubscribed_customer_gets_no_prompt_and_a_pending_one_is_suppressed(ws):
    card_prompts_scan(workspace=ws, now=NOW)
    prompt = CardPrompt.objects.get()
    # Unsubscribes after the scan, before the email goes out
    CustomerOptOut.objects.create(workspace=ws, customer_id=ACME)
    assert _deliver(prompt) == OutboxMessage.Status.DONE
    prompt.refresh_from_db()
    assert (prompt.status, prompt.error) == (CardPrompt.Status.SUPPRESSED, "unsubscribed")
    assert mail.outbox == []
    # And later scans leave the customer out
    assert card_prompt_candidates(workspace=ws, now=NOW + timedelta(days=3)) == []


def test_no_email_address_suppresses(ws):
    mirror_upsert(workspace=ws, obj=load("customer", email=None))
    card_prompts_scan(workspace=ws, now=NOW)
    _deliver(CardPrompt.objects.get())
    assert CardPrompt.objects.get().status == CardPrompt.Status.SUPPRESSED
    assert mail.outbox == []


def test_a_mail_outage_is_retried_by_the_outbox_and_sends_once(ws, monkeypatch):
    card_prompts_scan(workspace=ws, now=NOW)
    prompt = CardPrompt.objects.get()
    real_send = EmailMultiAlternatives.send
    calls = []

    def flaky(self, fail_silently=False):
        calls.append(1)
        if len(calls) == 1:
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real_send(self, fail_silently=fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", flaky)
    assert _deliver(prompt) == OutboxMessage.Status.PENDING
    prompt.refresh_from_db()
    assert prompt.status == CardPrompt.Status.PENDING and mail.outbox == []
    # The re-drive, after the backoff, sends it; a later re-drive finds nothing due.
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert outbox_redrive(now=later).delivered == 1
    assert outbox_redrive(now=later + timedelta(hours=2)).delivered == 0
    assert len(mail.outbox) == 1 and len(calls) == 2
    assert CardPrompt.objects.get().status == CardPrompt.Status.SENT


def test_a_refused_recipient_is_final(ws, monkeypatch):
    card_prompts_scan(workspace=ws, now=NOW)
    prompt = CardPrompt.objects.get()

    def refuse(self, fail_silently=False):
        raise smtplib.SMTPRecipientsRefused({"billing@acme.example": (550, b"no such user")})

    monkeypatch.setattr(EmailMultiAlternatives, "send", refuse)
    assert _deliver(prompt) == OutboxMessage.Status.FAILED
    prompt.refresh_from_db()
    assert (prompt.status, prompt.error) == (CardPrompt.Status.FAILED, "recipient_refused")


def test_the_workspace_wording_is_validated_and_used(ws):
    with pytest.raises(ValidationFailed) as refused:
        card_prompt_template_validate(reason="expiring", subject="Hi {name}", body="{link}")
    assert refused.value.code == "template_unknown_placeholder"
    with pytest.raises(ValidationFailed) as no_link:
        card_prompt_template_validate(reason="expiring", subject="Card", body="Update {card}")
    assert no_link.value.code == "template_missing_link"
    with pytest.raises(ValidationFailed):  # {amount} belongs to the failure email only
        card_prompt_template_validate(reason="expiring", subject="{amount}", body="{link}")

    subject, body = card_prompt_template_validate(
        reason="expiring",
        subject=" {company}: card {card} ",
        body="Dear[[ {customer_name}]], renew before {expiry}: {link}",
    )
    CardPromptTemplate.objects.create(workspace=ws, reason="expiring", subject=subject, body=body)
    card_prompts_scan(workspace=ws, now=NOW)
    _deliver(CardPrompt.objects.get())
    email = mail.outbox[0]
    assert email.subject == "Acme Prompts: card Visa ending in 4242"
    assert email.body.startswith("Dear Acme Corp, renew before 03/2027: http://127.0.0.1:8000/")
    assert "unsubscribe" in email.body  # the footer is always added


def test_the_email_is_in_the_customers_language(ws):
    mirror_upsert(workspace=ws, obj=load("customer", preferred_locales=["de-DE"]))
    card_prompts_scan(workspace=ws, now=NOW)
    _deliver(CardPrompt.objects.get())
    prompt = CardPrompt.objects.get()
    assert prompt.language == "de"
    assert translation.get_language() in (None, "en", "en-us")  # the override ended


def test_the_command_previews_scans_and_prints_a_link(ws, capsys):
    call_command("card_prompts", "--workspace", ws.slug, "--dry-run")
    assert not CardPrompt.objects.exists()
    call_command("card_prompts", "--workspace", ws.slug, "--link", ACME)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/billing/card/" in out
    call_command("card_prompts", "--workspace", ws.slug)
    line = capsys.readouterr().out.strip()
    found = re.fullmatch(rf"workspace {ws.pk}: (\d+) due, (\d+) new", line)
    assert found is not None, line
    assert CardPrompt.objects.count() == int(found.group(2))


@override_settings(
    DEBUG=False, TESTING=False, EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend"
)
def test_check_w021_warns_when_prompts_would_go_nowhere(ws):
    assert [w.id for w in card_prompts_email(None)] == ["billing.W021"]
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        DEFAULT_FROM_EMAIL="billing@acme.example",
    ):
        assert card_prompts_email(None) == []
    ws.card_prompts_enabled = False
    ws.save(update_fields=["card_prompts_enabled"])
    assert card_prompts_email(None) == []


# --- the prompt is about one scope's card, and still true when it is sent (review of issue 18)


def _card(pm_id, *, exp_year, exp_month=3, last4="4242"):
    pm = load("payment_method", id=pm_id, customer=ACME)
    pm["card"] = {**pm["card"], "exp_year": exp_year, "exp_month": exp_month, "last4": last4}
    return pm


def _customer_default(ws, card):
    mirror_upsert(workspace=ws, obj=_card(card, exp_year=2031, last4="5454"))
    customer = load("customer")
    customer["invoice_settings"] = {**customer["invoice_settings"], "default_payment_method": card}
    mirror_upsert(workspace=ws, obj=customer, source_updated=2000000000)


def test_the_prompt_names_the_subscription_whose_card_expires(ws):
    card_prompts_scan(workspace=ws, now=NOW)
    assert CardPrompt.objects.get().subscription_id == SUB


def test_a_queued_prompt_about_a_replaced_card_is_not_sent(ws):
    assert card_prompts_scan(workspace=ws, now=NOW).created == 1
    prompt = CardPrompt.objects.get()
    # The customer saves a new card before the outbox delivers (mail server down, backoff):
    # the subscription has no card of its own now, so it is charged the customer's new default
    _customer_default(ws, "pm_new")
    mirror_upsert(
        workspace=ws,
        obj=load("subscription", default_payment_method=None, created=1710806400),
        source_updated=2000000000,
    )
    assert card_prompt_candidates(workspace=ws, now=NOW) == []
    assert _deliver(prompt) == OutboxMessage.Status.DONE
    prompt.refresh_from_db()
    assert (prompt.status, prompt.error) == (CardPrompt.Status.SUPPRESSED, "card_replaced")
    assert mail.outbox == []


def test_a_queued_failure_prompt_is_not_sent_once_the_payment_recovered(ws):
    failure = _failure(ws, category="card_declined")
    card_prompts_scan(workspace=ws, now=NOW)
    prompt = CardPrompt.objects.get(reason="failed")
    PaymentFailure.objects.filter(pk=failure.pk).update(recovered_at=NOW)
    _deliver(prompt)
    prompt.refresh_from_db()
    assert (prompt.status, prompt.error) == (CardPrompt.Status.SUPPRESSED, "failure_resolved")
    assert mail.outbox == []


def test_a_queued_expiring_prompt_is_not_sent_once_the_card_was_renewed(ws):
    card_prompts_scan(workspace=ws, now=NOW)
    prompt = CardPrompt.objects.get()
    # the bank's card updater moved the same card's expiry to 2030
    mirror_upsert(workspace=ws, obj=_card(VISA, exp_year=2030), source_updated=2000000000)
    _deliver(prompt)
    prompt.refresh_from_db()
    assert (prompt.status, prompt.error) == (CardPrompt.Status.SUPPRESSED, "card_not_expiring")


def test_no_failure_prompt_when_the_failed_card_is_unknown_or_already_replaced(ws):
    _failure(ws, category="card_expired", card=None)  # the mirror does not know the charge
    assert [c.reason for c in card_prompt_candidates(workspace=ws, now=NOW)] == ["expiring"]
    PaymentFailure.objects.all().delete()
    # The renewal failed yesterday on the Visa; this morning the customer saved a new card
    _failure(ws, category="card_expired")
    _customer_default(ws, "pm_new")
    mirror_upsert(
        workspace=ws,
        obj=load("subscription", default_payment_method=None, created=1710806400),
        source_updated=2000000000,
    )
    assert card_prompt_candidates(workspace=ws, now=NOW) == []


def test_one_card_gets_one_email_a_day_and_no_expiring_email_within_7_days_of_another(ws):
    _failure(ws, category="insufficient_funds")
    assert card_prompts_scan(workspace=ws, now=NOW).created == 1
    for prompt in CardPrompt.objects.all():
        _deliver(prompt)
    assert [m.subject for m in mail.outbox] == ["Your payment to Acme Prompts did not go through"]
    # The failure is paid; the card still expires. Within 7 days of the failure's email no
    # "expiring" email is made, after them it is.
    PaymentFailure.objects.update(recovered_at=NOW)
    CardPrompt.objects.update(sent_at=NOW)
    assert card_prompts_scan(workspace=ws, now=NOW + timedelta(days=6)).created == 0
    assert card_prompts_scan(workspace=ws, now=NOW + timedelta(days=8)).created == 1
    assert CardPrompt.objects.filter(reason="expiring").exists()


def test_a_queued_expiring_prompt_waits_out_another_email_about_its_card(ws):
    card_prompts_scan(workspace=ws, now=NOW)
    expiring = CardPrompt.objects.get()
    CardPrompt.objects.create(
        workspace=ws,
        customer_id=ACME,
        payment_method_id=VISA,
        reason="failed",
        window="fail-in_other",
        status=CardPrompt.Status.SENT,
        sent_at=NOW - timedelta(days=2),
    )
    _deliver(expiring)
    expiring.refresh_from_db()
    assert (expiring.status, expiring.error) == (CardPrompt.Status.SUPPRESSED, "recently_prompted")
    assert mail.outbox == []


def _customers(ws, n):
    for i in range(n):
        customer_id, card = f"cus_bulk{i:05d}", f"pm_bulk{i:05d}"
        customer = load("customer", id=customer_id)
        customer["invoice_settings"] = {
            **customer["invoice_settings"],
            "default_payment_method": card,
        }
        mirror_upsert(workspace=ws, obj=customer)
        mirror_upsert(workspace=ws, obj=load("payment_method", id=card, customer=customer_id))
        subscription = load("subscription", id=f"sub_bulk{i:05d}", customer=customer_id)
        subscription["default_payment_method"] = card if i % 2 else None  # own card, or default
        mirror_upsert(workspace=ws, obj=subscription)


@pytest.mark.parametrize("n", [20, 120])
def test_a_rescan_costs_the_same_few_queries_for_any_number_of_customers(
    ws, n, django_assert_max_num_queries
):
    _customers(ws, n)
    assert card_prompts_scan(workspace=ws, now=NOW).created == n + 1
    with django_assert_max_num_queries(10):
        again = card_prompts_scan(workspace=ws, now=NOW + timedelta(days=1))
    assert (again.candidates, again.created) == (n + 1, 0)
