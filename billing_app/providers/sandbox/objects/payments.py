"""Charges (succeeded or failed, with Stripe's failure codes), refunds and balance transactions."""

from __future__ import annotations

from datetime import datetime

from .common import (
    SANDBOX_HOST,
    Obj,
    _list,
    digest_id,
    unix,
)
from .customers import (
    payment_method_details,
)

# Stripe's failure codes and the issuer's decline reasons, with Stripe's messages.
FAILURES: dict[str, tuple[str, str, str]] = {
    # failure_code: (outcome.reason / decline code, failure_message, outcome.type)
    "expired_card": ("expired_card", "Your card has expired.", "issuer_declined"),
    "card_declined": ("generic_decline", "Your card was declined.", "issuer_declined"),
    "insufficient_funds": (
        "insufficient_funds",
        "Your card has insufficient funds.",
        "issuer_declined",
    ),
}


def charge(
    *,
    id: str,
    customer_id: str,
    amount: int,
    currency: str,
    created: datetime,
    payment_method: Obj,
    payment_intent: str | None,
    description: str | None = None,
    failure_code: str | None = None,
    refunds: list[Obj] | None = None,
    disputed: bool = False,
    receipt_email: str | None = None,
) -> Obj:
    """A succeeded charge, or a failed one when ``failure_code`` is given."""
    refunds = list(refunds or [])
    failed = failure_code is not None
    refunded_total = sum(int(r["amount"]) for r in refunds if r.get("status") == "succeeded")
    if failed:
        reason, message, outcome_type = FAILURES.get(
            failure_code or "", (failure_code or "", "Your card was declined.", "issuer_declined")
        )
        outcome: Obj = {
            "advice_code": "do_not_try_again" if failure_code == "expired_card" else None,
            "network_advice_code": None,
            "network_decline_code": "54" if failure_code == "expired_card" else "05",
            "network_status": "declined_by_network",
            "reason": reason,
            "risk_level": "normal",
            "seller_message": f"The bank returned the decline code `{reason}`.",
            "type": outcome_type,
        }
    else:
        message = None
        outcome = {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": 0 if failed else amount,
        "amount_refunded": refunded_total,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None if failed else digest_id("txn", id),
        "billing_details": payment_method.get("billing_details"),
        "calculated_statement_descriptor": "BILLING DESK SANDBOX",
        "captured": not failed,
        "created": unix(created),
        "currency": currency.lower(),
        "customer": customer_id,
        "description": description,
        "disputed": disputed,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": message,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": not failed,
        "payment_intent": payment_intent,
        "payment_method": payment_method["id"],
        "payment_method_details": payment_method_details(payment_method),
        "receipt_email": receipt_email,
        "receipt_number": None,
        "receipt_url": None if failed else f"{SANDBOX_HOST}/r/{id}",
        "refunded": bool(refunds) and refunded_total >= amount,
        "refunds": _list(refunds, f"/v1/charges/{id}/refunds"),
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "failed" if failed else "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(
    *,
    id: str,
    charge_id: str,
    payment_intent: str | None,
    amount: int,
    currency: str,
    created: datetime,
    reason: str | None,
    metadata: dict[str, str] | None = None,
) -> Obj:
    return {
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": digest_id("txn", id),
        "charge": charge_id,
        "created": unix(created),
        "currency": currency.lower(),
        "destination_details": {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": dict(metadata or {}),
        "payment_intent": payment_intent,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def balance_transaction(
    *,
    id: str,
    customer_id: str,
    amount: int,
    currency: str,
    created: datetime,
    ending_balance: int,
    type: str = "adjustment",
    description: str | None = None,
    invoice_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Obj:
    return {
        "id": id,
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": unix(created),
        "credit_note": None,
        "currency": currency.lower(),
        "customer": customer_id,
        "description": description,
        "ending_balance": ending_balance,
        "invoice": invoice_id,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "type": type,
    }
