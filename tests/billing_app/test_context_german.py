"""The customer context in German (issue 16): every text the server writes for the panel
is translatable and translated, money and dates are written for the language, and the
codes, ids, ISO dates and what Stripe or the customers wrote stay as they are.

The walk over whole contexts is the Python half of "a test fails when a user-visible
string is not translatable": every human-text field of every demo customer's context
differs between English and German, or is one of the few words both languages write
alike (``SAME_IN_BOTH``). A new text built without gettext reads the same in both
languages and fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import translation
from rest_framework.renderers import JSONRenderer

from billing_app.catalog import Role
from billing_app.models import MirrorCustomer
from billing_app.money import format_money, short_money
from billing_app.providers.sandbox.control import sandbox_control_set
from billing_app.selectors.context import customer_context
from billing_app.selectors.context.serialize import PER_REQUEST_FIELDS, ContextSerializer
from billing_app.selectors.context.serialize_fast import context_to_json
from billing_app.selectors.context.subscription_state import date_words
from billing_app.services.snapshots import context_body
from billing_app.vocabulary import vocabulary_payload

from .context_support import (
    acme_refund_awaiting_approval_under_monitoring,
    forget_provider_health,
    seed_brief_day,
)

# Keys whose values are data, never Billing Desk's words: ids, codes and enums, numbers
# as text, ISO dates and times, links, and what Stripe, the customers or the agents
# wrote (names, addresses, e-mails, Stripe's descriptions and failure messages).
DATA_KEYS = frozenset(
    {
        "id",
        "type",
        "kind",
        "status",
        "state",
        "level",
        "severity",
        "currency",
        "brand",
        "last4",
        "code",
        "decline_code",
        "failure_code",
        "reason_category",
        "collection_method",
        "contract_term",
        "behavior",
        "duration",
        "interval",
        "billed_interval",
        "provider_status",
        "applicable_kinds",
        "required_roles",
        "tax_exempt",
        "tax_ids",
        "invoice_number",
        "charge_ids",
        "subscription_ids",
        "expires",
        "percent_off",
        # ISO dates and times
        "date",
        "datetime",
        "created",
        "as_of",
        "now",
        "until",
        "start_date",
        "trial_end",
        "renews_at",
        "ends_at",
        "cancel_at",
        "canceled_at",
        "ended_at",
        "resumes_at",
        "current_period_start",
        "current_period_end",
        "contract_end",
        "effective_date",
        "end",
        "grace_period_until",
        "monitoring_until",
        "failed_at",
        "warned_at",
        "next_payment_attempt",
        "expires_at",
        "created_at",
        "at",
        # links and cursors
        "hosted_invoice_url",
        "invoice_pdf",
        "next_cursor",
        # written by Stripe, the customers or the agents
        "name",
        "email",
        "billing_email",
        "address_display",
        "billing_address",
        "line1",
        "line2",
        "city",
        "postal_code",
        "country",
        "failure_message",
        "requested_by",
        "actor",
        "ticket_id",
        "note",
        "ref",
        # a payment's method: the card brand (a name) and its last four digits
        "method",
    }
)
# Words English and German write alike (the Manager role's name, in an approval alert).
SAME_IN_BOTH = frozenset({"Manager"})


def _data_key(key: str) -> bool:
    return key in DATA_KEYS or key.endswith(("_id", "_at"))


def human_texts(node: Any, path: str = "", parent: dict | None = None) -> Iterator[tuple[str, str]]:
    """(path, text) of every text of Billing Desk's own in a context's JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if isinstance(value, dict | list):
                if key == "failure":  # Stripe's code, decline code and message
                    continue
                yield from human_texts(value, here, node)
            elif isinstance(value, str) and value and not _data_key(key):
                if key == "description" and node.get("type") != "invoice":
                    continue  # Stripe's or the agent's words; an invoice's is its billing reason
                if key == "reason" and "pending_approvals" in path:
                    continue  # the policy's reason, stored when the approval was asked for
                yield here, value
    elif isinstance(node, list):
        for i, value in enumerate(node):
            here = f"{path}[{i}]"
            if isinstance(value, dict | list):
                yield from human_texts(value, here, parent)
            elif isinstance(value, str) and value and not _data_key(path.rsplit(".", 1)[-1]):
                yield here, value


def data_values(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every leaf that is not one of Billing Desk's texts."""
    texts = dict(human_texts(node, path))
    for leaf_path, value in _leaves(node, path):
        if leaf_path not in texts:
            yield leaf_path, value


def _leaves(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, node


def build(workspace, language: str, **kwargs) -> dict[str, dict]:
    """Every customer's context, built and converted (the snapshot's way) under ``language``."""
    with translation.override(language):
        return {
            customer.stripe_id: json.loads(
                json.dumps(
                    context_to_json(
                        customer_context(workspace=workspace, customer=customer, **kwargs)
                    )
                )
            )
            for customer in MirrorCustomer.objects.filter(workspace=workspace).order_by("stripe_id")
        }


def assert_every_text_translated(en: dict[str, dict], de: dict[str, dict]) -> int:
    untranslated = []
    checked = 0
    for customer_id, english in en.items():
        german = dict(human_texts(de[customer_id]))
        for path, text in human_texts(english):
            checked += 1
            if german.get(path) == text and text not in SAME_IN_BOTH:
                untranslated.append(f"{customer_id}{path}: {text!r}")
        # codes, ids, ISO dates, numbers and the customers' own words do not move
        assert dict(data_values(english)) == dict(data_values(de[customer_id])), customer_id
    assert not untranslated, "not translated:\n" + "\n".join(untranslated)
    return checked


@pytest.fixture(autouse=True)
def _forget_provider_health(db):
    yield
    forget_provider_health()


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


def test_every_text_of_every_demo_customer_is_translated(seeded):
    en = build(seeded.workspace, "en")
    de = build(seeded.workspace, "de")
    assert len(en) >= 10
    assert assert_every_text_translated(en, de) > 100


def test_approvals_monitoring_and_an_outage_are_translated(seeded, sign_in):
    workspace = seeded.workspace
    membership, _ = sign_in(workspace, Role.L1, agent_id="77")
    acme_refund_awaiting_approval_under_monitoring(workspace, membership.user)
    sandbox_control_set(workspace=workspace, down=True, reason="drill")
    en = build(workspace, "en", provider_status="unavailable")
    de = build(workspace, "de", provider_status="unavailable")
    assert_every_text_translated(en, de)
    messages = {a["type"]: a["message"] for a in de["cus_sbx_acme"]["alerts"]}
    assert messages["pending_approval"] == (
        "Erstattung veranlassen über 150,00\xa0$ wartet auf Freigabe durch Manager."
    )
    assert messages["payment_monitoring"].startswith(
        "Nach einer doppelten Abbuchung werden Zahlungen bis "
    )
    assert messages["provider_down"].startswith("Der Zahlungsanbieter antwortet nicht")


def test_german_texts_money_and_dates(seeded):
    de = build(seeded.workspace, "de")
    assert de["cus_sbx_initech"]["account"]["plan"]["display"] == "Business (1.050\xa0$/Monat)"
    assert de["cus_sbx_initech"]["account"]["plan"]["price"]["display"] == "1.050,00\xa0$"
    assert de["cus_sbx_sakura"]["account"]["plan"]["display"] == "Standard (49.800\xa0¥/Monat)"
    assert de["cus_sbx_sakura"]["account"]["plan"]["price"] == {
        "amount": 49800,
        "currency": "JPY",
        "exponent": 0,
        "display": "49.800\xa0¥",
    }
    assert de["cus_sbx_hooli"]["account"]["plan"]["display"] == "Growth (990\xa0€/Monat)"
    assert de["cus_sbx_vandelay"]["account"]["plan"]["display"] == "Pro (1.490\xa0$/Jahr)"
    assert de["cus_sbx_stark_ind"]["account"]["payment_method"]["display"] == (
        "Visa mit Endziffern 9995"
    )
    assert de["cus_sbx_northwind"]["alerts"][0]["message"] == (
        "Zahlung über 149,00\xa0$ fehlgeschlagen (Karte abgelaufen) — 2 Versuche. "
        "Nächster Versuch am 17. Januar 2026."
    )
    assert de["cus_sbx_globex"]["alerts"][0]["message"] == (
        "Mögliche doppelte Abbuchung: zwei Abbuchungen über 299,00\xa0$ im Abstand von 3 Minuten."
    )
    assert de["cus_sbx_umbrella"]["subscription"]["state_detail"] == (
        "In der Testphase bis 18. Januar 2026; dann folgt die erste Rechnung."
    )
    assert de["cus_sbx_wayne"]["churn_risk"]["reasons"] == [
        "Erstattungsmuster (3 Erstattungen in 90 Tagen)"
    ]
    assert de["cus_sbx_northwind"]["churn_risk"]["label"] == "Hoch"
    assert de["cus_sbx_northwind"]["subscription"]["state_label"] == "Überfällig"
    # the data fields keep their ISO dates and codes
    assert de["cus_sbx_umbrella"]["subscription"]["trial_end"] == "2026-01-18"
    assert de["cus_sbx_northwind"]["alerts"][0]["data"]["next_payment_attempt"].startswith(
        "2026-01-17"
    )


def test_english_money_and_dates_keep_their_format():
    with translation.override("en"):
        assert format_money(105_000, "USD") == "$1,050.00"
        assert short_money(105_000, "USD") == "$1,050"
        assert format_money(49_800, "JPY") == "¥49,800"
        assert format_money(-500, "EUR") == "-€5.00"
        assert format_money(1_234, "CHF") == "12.34 CHF"
        assert format_money(5_123, "KWD") == "5.123 KWD"
        assert date_words(_day(2026, 1, 18)) == "January 18, 2026"


def test_german_money_keeps_the_currency_exponent():
    with translation.override("de"):
        assert format_money(105_000, "USD") == "1.050,00\xa0$"
        assert short_money(105_000, "USD") == "1.050\xa0$"
        assert short_money(105_050, "USD") == "1.050,50\xa0$"
        assert format_money(49_800, "JPY") == "49.800\xa0¥"
        assert format_money(-500, "EUR") == "-5,00\xa0€"
        assert format_money(1_234, "CHF") == "12,34\xa0CHF"
        assert format_money(5_123, "KWD") == "5,123\xa0KWD"  # three decimals, as Stripe counts
        assert date_words(_day(2026, 1, 18)) == "18. Januar 2026"


def test_the_vocabulary_the_panel_labels_with_is_german():
    with translation.override("en"):
        en = vocabulary_payload()
    with translation.override("de"):
        de = vocabulary_payload()
    assert json.loads(json.dumps(de))  # plain JSON: no lazy object left
    for table in ("refund_reasons", "cancellation_feedback", "pause_behaviors", "action_labels"):
        assert [k for k, _ in de[table]] == [k for k, _ in en[table]]  # the codes stay
        assert all(d != e for (_, d), (_, e) in zip(de[table], en[table], strict=True)), table
    assert dict(de["action_labels"])["issue_refund"] == "Erstattung veranlassen"
    assert dict(de["failure_categories"])["card_expired"] == "Karte abgelaufen"
    assert de["decline_codes"]["expired_card"] == {
        "category": "card_expired",
        "agent_text": "Karte abgelaufen",
        "customer_text": "eine abgelaufene Karte",
    }


def test_the_german_build_converts_exactly_as_the_serializer(seeded):
    with translation.override("de"):
        for customer in MirrorCustomer.objects.filter(workspace=seeded.workspace):
            context = customer_context(workspace=seeded.workspace, customer=customer)
            fast = context_to_json(context)
            slow = dict(ContextSerializer(context).data)
            for name in PER_REQUEST_FIELDS:
                slow.pop(name)
            assert fast == slow
            assert json.dumps(fast) == json.dumps(slow)
            assert context_body(context) == JSONRenderer().render(slow).decode()


def _day(year: int, month: int, day: int):
    from datetime import date

    return date(year, month, day)
