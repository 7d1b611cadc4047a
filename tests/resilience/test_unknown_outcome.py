"""Unknown outcomes are a state, not a failure (issue 12, DESIGN.md section 9).

A fake Stripe, kept in memory behind ``responses`` callbacks, *acts* — it records the
refund under its idempotency key, replaying it for the same key as Stripe does —
and then loses the answer: a read timeout, a connection reset, or a 500. The action
must stay open (``outcome_unknown``), a fresh submission from the panel under a new
key must be refused (409) instead of refunding twice, and reconciliation must find
the refund and record it once: one note, one customer message.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from django.db import connection
from django.utils import timezone

from billing_app.catalog import Role
from billing_app.models import BillingAction
from billing_app.providers.stripe.client import NEVER_SENT, OUTCOME_UNKNOWN, transport_error_kind
from billing_app.services import notes as notes_service
from billing_app.services.reconcile import actions_unknown_reconcile
from tests.billing_app.stripe_support import API, load, stripe_error

from .conftest import CH, CUS, NOW, refund_body

REFUNDS = f"{API}/v1/refunds"


def _lost_after_sending(fault: str) -> Any:
    if fault == "read_timeout":
        raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)")
    if fault == "connection_reset":
        raise requests.exceptions.ConnectionError(
            ConnectionResetError(104, "Connection reset by peer")
        )
    return (500, {}, json.dumps(stripe_error("api_error", "Something went wrong on Stripe's end.")))


class FakeStripe:
    """One charge and its refunds, as Stripe keeps them.

    ``fault`` decides what happens to each refund request:
    ``None`` answers; ``read_timeout`` / ``connection_reset`` / ``server_error`` act,
    then lose the answer; ``lose_without_acting`` answers 500 without acting;
    ``refused_connection`` never lets the request in; ``invalid`` answers 400.
    """

    def __init__(self, http: Any):
        self.refunds: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}
        self.fault: str | None = None
        self.sequence: list[str] = []  # faults for the next requests, before ``fault``
        self.lock = threading.Lock()
        http.add_callback("POST", REFUNDS, callback=self._create)
        http.add_callback("GET", REFUNDS, callback=self._list)
        http.add_callback("GET", f"{API}/v1/charges/{CH}", callback=self._charge)

    def _create(self, request: Any) -> Any:
        fault = self.sequence.pop(0) if self.sequence else self.fault
        if fault == "refused_connection":
            raise requests.exceptions.ConnectionError(
                ConnectionRefusedError(111, "Connection refused")
            )
        if fault == "invalid":
            body = stripe_error(
                "invalid_request_error", "Charge is not refundable.", param="charge"
            )
            return (400, {}, json.dumps(body))
        if fault == "in_progress":  # the first request with this key is still running
            body = stripe_error(
                "idempotency_error",
                "There is currently another in-progress request using this Idempotency Key.",
            )
            return (409, {}, json.dumps(body))
        if fault == "lose_without_acting":
            return _lost_after_sending("server_error")
        key = request.headers["Idempotency-Key"]
        with self.lock:
            if key not in self.by_key:
                params = dict(
                    parse_qsl(
                        request.body if isinstance(request.body, str) else request.body.decode()
                    )
                )
                metadata = {
                    k[len("metadata[") : -1]: v
                    for k, v in params.items()
                    if k.startswith("metadata[")
                }
                refund = load(
                    "refund",
                    id=f"re_3RbFake{len(self.refunds) + 1:08d}",
                    amount=int(params["amount"]),
                    charge=params["charge"],
                    reason=params.get("reason"),
                    metadata=metadata,
                    status="succeeded",
                )
                self.refunds.append(refund)
                self.by_key[key] = refund
            refund = self.by_key[key]
        if fault is not None:
            return _lost_after_sending(fault)
        return (200, {}, json.dumps(refund))

    def _list(self, request: Any) -> Any:
        listing = {
            "object": "list",
            "data": list(reversed(self.refunds)),
            "has_more": False,
            "url": "/v1/refunds",
        }
        return (200, {}, json.dumps(listing))

    def _charge(self, request: Any) -> Any:
        refunded = sum(r["amount"] for r in self.refunds)
        charge = load(
            "charge",
            created=NOW - 2 * 86400,
            amount_refunded=refunded,
            refunded=refunded >= 340000,
        )
        return (200, {}, json.dumps(charge))


@pytest.fixture
def fake(http):
    return FakeStripe(http)


@pytest.fixture
def notes(monkeypatch):
    """Every internal note recorded with an outcome, by action id (the note path itself is
    tested elsewhere)."""
    posted: list[str] = []
    real = notes_service.action_note_record

    def spy(*, action: BillingAction) -> bool:
        posted.append(str(action.pk))
        return real(action=action)

    monkeypatch.setattr(notes_service, "action_note_record", spy)
    return posted


LOST = ["read_timeout", "connection_reset", "server_error"]


@pytest.mark.parametrize("fault", LOST)
def test_a_refund_stripe_made_but_did_not_confirm_is_made_once_and_recorded_once(
    ws, fake, api_as, notes, fault
):
    # given Stripe performs every refund but the answer is lost after sending
    fake.fault = fault
    client = api_as(ws, Role.MANAGER)

    # when a Manager refunds $500
    first = client.post("/api/v1/actions/", refund_body(key="panel-key-1"), format="json")

    # then the action is open — "confirming with Stripe" — and says nothing false
    assert first.status_code == 202, first.json()
    body = first.json()
    assert body["status"] == "outcome_unknown"
    assert body["error"]["code"] == "provider_outcome_unknown"
    assert "nothing was changed" not in body["error"]["message"].lower()
    assert "do not retry" in body["error"]["message"].lower()
    assert len(fake.refunds) == 1
    action = BillingAction.objects.get(pk=body["id"])
    assert (action.customer_message, action.completed_at, notes) == ("", None, [])

    # when the panel submits the refund again under a fresh idempotency key
    again = client.post("/api/v1/actions/", refund_body(key="panel-key-2"), format="json")

    # then it is refused with the open action's id, and Stripe is not asked to refund again
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "action_outcome_unknown"
    assert error["details"]["action_id"] == body["id"]
    assert len(fake.refunds) == 1
    assert BillingAction.objects.filter(workspace=ws).count() == 1

    # when Stripe answers again and reconciliation runs
    fake.fault = None
    settled = actions_unknown_reconcile()

    # then the refund Stripe made is found and recorded once, with its note and message
    assert settled == 1
    action.refresh_from_db()
    assert action.status == BillingAction.Status.SUCCEEDED
    assert action.provider_object_id == fake.refunds[0]["id"]
    assert action.completed_at is not None
    assert action.customer_message
    assert action.error_code == ""
    assert notes == [str(action.pk)]
    assert len(fake.refunds) == 1

    # and a second run finds nothing left to do
    assert actions_unknown_reconcile() == 0
    assert notes == [str(action.pk)]


def test_a_refund_whose_request_was_lost_before_stripe_acted_is_made_once_by_replay(
    ws, fake, api_as, notes
):
    # given Stripe answers 500 without acting
    fake.fault = "lose_without_acting"
    client = api_as(ws, Role.MANAGER)
    first = client.post("/api/v1/actions/", refund_body(key="k1"), format="json")
    assert first.json()["status"] == "outcome_unknown"
    assert fake.refunds == []

    # when Stripe answers again and reconciliation runs
    fake.fault = None
    assert actions_unknown_reconcile() == 1

    # then the same idempotency key is replayed: one refund, recorded once
    action = BillingAction.objects.get(pk=first.json()["id"])
    assert action.status == BillingAction.Status.SUCCEEDED
    assert len(fake.refunds) == 1
    assert fake.refunds[0]["metadata"]["billing_desk_action"] == str(action.pk)
    assert set(fake.by_key) == {f"billing-desk-{action.pk}-issue_refund"}
    assert notes == [str(action.pk)]


def test_reconciliation_leaves_the_action_open_while_stripe_still_does_not_answer(
    ws, fake, api_as, notes, http
):
    # given an open refund, and Stripe still failing every request
    fake.fault = "read_timeout"
    first = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")
    http.replace("GET", REFUNDS, body=requests.exceptions.ReadTimeout("Read timed out."))

    # when reconciliation runs
    settled = actions_unknown_reconcile()

    # then nothing is settled and nothing is recorded
    assert settled == 0
    action = BillingAction.objects.get(pk=first.json()["id"])
    assert action.status == BillingAction.Status.OUTCOME_UNKNOWN
    assert notes == []
    assert len(fake.refunds) == 1


def test_after_the_key_lifetime_an_action_stripe_has_no_record_of_fails(ws, fake, api_as, notes):
    # given an open refund Stripe never made, first sent more than a day ago
    fake.fault = "lose_without_acting"
    first = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")
    action = BillingAction.objects.get(pk=first.json()["id"])
    old = (timezone.now() - timedelta(hours=25)).isoformat()
    BillingAction.objects.filter(pk=action.pk).update(result={**action.result, "sent_at": old})
    fake.fault = None

    # when reconciliation runs
    actions_unknown_reconcile()

    # then only the metadata search is used (no replay of an expired key): failed, no refund
    action.refresh_from_db()
    assert action.status == BillingAction.Status.FAILED
    assert action.error_code == "provider_no_record"
    assert fake.refunds == []
    assert notes == []


def test_a_connection_refused_before_sending_fails_and_says_nothing_changed(ws, fake, api_as):
    # given Stripe's address refuses connections
    fake.fault = "refused_connection"

    # when a Manager refunds
    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then the request never left: failed, and that nothing changed is known
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "provider_unavailable"
    assert "nothing was changed" in body["error"]["message"]
    assert fake.refunds == []


def test_a_stripe_refusal_fails_the_action(ws, fake, api_as):
    # given Stripe refuses the refund (400)
    fake.fault = "invalid"

    # when a Manager refunds
    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then the action failed with Stripe's refusal, and a new attempt is allowed
    assert (response.status_code, response.json()["status"]) == (201, "failed")
    assert response.json()["error"]["code"] == "invalid_request"
    fake.fault = None
    retry = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(key="k2"), format="json")
    assert (retry.status_code, retry.json()["status"]) == (201, "succeeded")
    assert len(fake.refunds) == 1


def test_a_reset_on_one_attempt_then_refused_connections_stays_unknown(ws, fake, api_as):
    # given the first attempt acts and is reset, every later one is refused before sending
    fake.sequence = ["connection_reset"]
    fake.fault = "refused_connection"

    # when a Manager refunds
    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then a later refusal does not undo the first attempt: the outcome is unknown
    assert response.json()["status"] == "outcome_unknown"
    assert "nothing was changed" not in response.json()["error"]["message"]
    assert len(fake.refunds) == 1


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (requests.exceptions.ReadTimeout("read timed out"), OUTCOME_UNKNOWN),
        (requests.exceptions.ConnectTimeout("connect timed out"), NEVER_SENT),
        (requests.exceptions.ConnectionError(ConnectionResetError(104, "reset")), OUTCOME_UNKNOWN),
        (requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused")), NEVER_SENT),
        (requests.exceptions.ChunkedEncodingError("broken body"), OUTCOME_UNKNOWN),
        (requests.exceptions.ConnectionError("Remote end closed connection"), OUTCOME_UNKNOWN),
    ],
    ids=["read-timeout", "connect-timeout", "reset", "refused", "chunked", "remote-closed"],
)
def test_transport_failures_are_classified_by_whether_the_request_left(exc, kind):
    assert transport_error_kind(exc) == kind


def test_a_real_refused_connection_is_never_sent():
    # given urllib3's own wrapping of a refused connection, as requests raises it
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    exc = requests.exceptions.ConnectionError(MaxRetryError(None, "/v1/refunds", reason))

    assert transport_error_kind(exc) == NEVER_SENT


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_on_postgres_act_then_hang_and_a_panel_retry_make_one_refund(ws, fake, api_as, notes):
    # given Stripe refunds and then hangs until the client's read timeout
    fake.fault = "read_timeout"
    client = api_as(ws, Role.MANAGER)

    # when the agent submits, then retries from the panel with a new key
    first = client.post("/api/v1/actions/", refund_body(key="pg-1"), format="json")
    again = client.post("/api/v1/actions/", refund_body(key="pg-2"), format="json")

    # then the retry is refused and only one refund exists
    assert first.json()["status"] == "outcome_unknown"
    assert (again.status_code, again.json()["error"]["code"]) == (409, "action_outcome_unknown")
    assert len(fake.refunds) == 1

    # when Stripe answers again and reconciliation runs
    fake.fault = None
    assert actions_unknown_reconcile() == 1

    # then the one refund is recorded once, with one note and a customer message
    action = BillingAction.objects.get(pk=first.json()["id"])
    assert action.status == BillingAction.Status.SUCCEEDED
    assert action.provider_object_id == fake.refunds[0]["id"]
    assert action.customer_message
    assert notes == [str(action.pk)]
    assert len(fake.refunds) == 1
    assert action.customer_id == CUS


def test_a_credit_stripe_made_but_did_not_confirm_is_found_by_its_metadata(ws, api_as, http, notes):
    # given Stripe records every balance transaction, then the answer times out
    made: list[dict[str, Any]] = []
    path = f"{API}/v1/customers/{CUS}/balance_transactions"

    def create(request: Any) -> Any:
        params = dict(parse_qsl(request.body))
        if not made:
            made.append(
                load(
                    "customer_balance_transaction",
                    amount=int(params["amount"]),
                    metadata={"billing_desk_action": params["metadata[billing_desk_action]"]},
                )
            )
        raise requests.exceptions.ReadTimeout("Read timed out.")

    def listing(request: Any) -> Any:
        return (200, {}, json.dumps({"object": "list", "data": made, "has_more": False}))

    http.add_callback("POST", path, callback=create)
    http.add_callback("GET", path, callback=listing)
    client = api_as(ws, Role.L2)
    credit = {
        "kind": "apply_credit",
        "customer_id": CUS,
        "ticket_id": "4821",
        "params": {"amount": 2500, "currency": "USD"},
    }

    # when an agent applies a credit, then tries again under a new key
    first = client.post("/api/v1/actions/", {**credit, "idempotency_key": "c-1"}, format="json")
    again = client.post("/api/v1/actions/", {**credit, "idempotency_key": "c-2"}, format="json")

    # then the first is open, the second refused, and Stripe holds one credit
    assert (first.status_code, first.json()["status"]) == (202, "outcome_unknown")
    assert again.json()["error"]["code"] == "action_outcome_unknown"
    assert len(made) == 1

    # when reconciliation runs
    assert actions_unknown_reconcile() == 1

    # then the credit is found by the action id in its metadata and recorded once
    action = BillingAction.objects.get(pk=first.json()["id"])
    assert action.status == BillingAction.Status.SUCCEEDED
    assert action.provider_object_id == made[0]["id"]
    assert action.result["reconciled"] == "metadata"
    assert notes == [str(action.pk)]


def test_a_replay_stripe_says_is_still_in_progress_keeps_the_action_open(ws, fake, api_as, notes):
    # given a refund whose answer was lost, and Stripe still running the first request
    fake.fault = "lose_without_acting"
    first = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")
    fake.fault = "in_progress"

    # when reconciliation runs (the search finds no refund yet; the replay gets 409)
    assert actions_unknown_reconcile() == 0

    # then that is no proof nothing happened: the action stays open
    action = BillingAction.objects.get(pk=first.json()["id"])
    assert action.status == BillingAction.Status.OUTCOME_UNKNOWN
    assert notes == []

    # and once Stripe answers, it settles
    fake.fault = None
    assert actions_unknown_reconcile() == 1
    action.refresh_from_db()
    assert action.status == BillingAction.Status.SUCCEEDED
    assert len(fake.refunds) == 1
