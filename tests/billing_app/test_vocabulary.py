"""The vocabulary is defined once and sent to the panel whole."""

from __future__ import annotations

import json

from billing_app import vocabulary as v
from billing_app.catalog import ActionKind


def test_every_decline_code_has_a_known_category_and_both_texts():
    for code, d in v.DECLINE_CODES.items():
        assert d.code == code
        assert d.category in v.FAILURE_CATEGORIES
        assert d.agent_text and d.customer_text


def test_issuer_decline_code_wins_over_stripe_failure_code():
    d = v.decline(decline_code="insufficient_funds", failure_code="card_declined")
    assert (d.category, d.agent_text) == ("insufficient_funds", "Insufficient funds")
    assert v.decline(failure_code="expired_card").customer_text == "an expired card"
    assert v.decline(decline_code="processing_error").agent_text == "Gateway error"


def test_unknown_codes_fall_back_to_the_message_then_the_code():
    d = v.decline(decline_code="weird_new_code", message="Your card was declined.")
    assert (d.category, d.agent_text) == ("other", "Your card was declined")
    assert v.decline(decline_code="weird_new_code").agent_text == "Payment failed (weird new code)"
    assert v.decline().agent_text == "Payment failed"


def test_refund_reasons_map_to_stripe_reasons():
    for reason in v.REFUND_REASONS.values():
        assert reason.stripe_reason in v.STRIPE_REFUND_REASONS
    assert v.REFUND_REASONS["billing_error"].stripe_reason == "requested_by_customer"


def test_every_action_kind_has_a_label():
    assert {str(k) for k in ActionKind} == {str(k) for k in v.ACTION_LABELS}
    assert v.action_label("issue_refund") == "Issue refund"


def test_payload_is_json_and_ordered_pairs():
    payload = json.loads(json.dumps(v.vocabulary_payload()))
    assert payload["refund_reasons"][0] == ["requested_by_customer", "Requested by customer"]
    assert ["too_expensive", "Too expensive"] in payload["cancellation_feedback"]
    assert payload["decline_codes"]["expired_card"]["category"] == "card_expired"
    assert ["l1", "L1 Agent"] in payload["role_labels"]


def test_the_failure_model_stores_the_vocabulary_categories():
    from billing_app.models import PaymentFailure

    assert dict(PaymentFailure.ReasonCategory.choices) == dict(v.FAILURE_CATEGORIES)
