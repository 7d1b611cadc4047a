"""Helpers for tests that talk to Stripe through ``responses``: fixtures, requests, signatures."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import responses
from django.conf import settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe"
API = "https://api.stripe.com"
SECRET_KEY = "sk_test_51BillingDeskAcmeWorkspaceKey000000000000"
WEBHOOK_SECRET = "whsec_billingdeskacmetestsigningsecret0001"


def load(name: str, **overrides: Any) -> dict[str, Any]:
    """A project fixture (a fresh copy), with top-level fields replaced."""
    obj = json.loads((FIXTURES / f"{name}.json").read_text())
    obj.update(copy.deepcopy(overrides))
    return obj


def listing(url: str, *objects: dict[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": list(objects), "has_more": has_more, "url": url}


def stripe_error(
    type_: str, message: str, *, code: str = "", param: str = "", decline_code: str = ""
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    if decline_code:
        error["decline_code"] = decline_code
    return {"error": error}


def make_stripe_workspace(make_workspace, slug: str = "acme-stripe", **kwargs):
    return make_workspace(
        slug,
        provider="stripe",
        stripe_secret_key=kwargs.pop("stripe_secret_key", SECRET_KEY),
        stripe_webhook_secret=kwargs.pop("stripe_webhook_secret", WEBHOOK_SECRET),
        **kwargs,
    )


class StripeMock:
    """Register Stripe answers on the ``responses`` mock and read back the requests sent."""

    def __init__(self, http):
        self.http = http

    def on(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        raw: str | None = None,
        exc: Exception | None = None,
    ) -> None:
        url = API + path
        if exc is not None:
            self.http.add(method, url, body=exc)
        elif raw is not None:
            self.http.add(method, url, body=raw, status=status, headers=headers or {})
        else:
            self.http.add(method, url, json=body, status=status, headers=headers or {})

    @property
    def calls(self) -> list[Any]:
        return [c for c in self.http.calls if c.request.url.startswith(API)]

    def requests_to(self, method: str, path: str) -> list[Any]:
        return [
            c
            for c in self.calls
            if c.request.method == method and urlsplit(c.request.url).path == path
        ]


def params_of(call: Any) -> dict[str, str]:
    """The request's parameters (query string and form body) as Stripe's flat keys."""
    pairs = parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True)
    body = call.request.body
    if body:
        text = body.decode() if isinstance(body, bytes) else body
        pairs += parse_qsl(text, keep_blank_values=True)
    return dict(pairs)


def assert_request(
    call: Any,
    method: str,
    path: str,
    params: dict[str, str],
    *,
    idempotency_key: str | None = None,
    api_key: str = SECRET_KEY,
) -> None:
    """Exactly this request: method, path, parameters, version, key, idempotency key, timeout."""
    request = call.request
    assert request.method == method
    assert urlsplit(request.url).path == path
    assert params_of(call) == params
    assert request.headers["Stripe-Version"] == settings.STRIPE_API_VERSION
    assert request.headers["Authorization"] == f"Bearer {api_key}"
    assert call.request.req_kwargs["timeout"] == settings.STRIPE_TIMEOUT_SECONDS
    if idempotency_key is None:
        if method == "GET":
            assert "Idempotency-Key" not in request.headers
    else:
        assert request.headers["Idempotency-Key"] == idempotency_key


class MirroringProvider:
    """A provider as the services use it: after each call, what the result says changed is
    written into the mirror (``services.mirror.mirror_provider_changes``), as the action
    executor and reconciliation do. Everything else passes through."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            from billing_app.services.mirror import mirror_provider_changes

            result = attr(*args, **kwargs)
            mirror_provider_changes(workspace=self.inner.workspace, result=result)
            return result

        return call


def sign(payload: str, secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header as Stripe computes it (HMAC-SHA256 of ``t.payload``)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def event(event_id: str, type_: str, obj: dict[str, Any], *, created: int | None = None, **extra):
    """A Stripe event (snapshot payload) around ``obj``, shaped like Stripe's ``event`` object."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": settings.STRIPE_API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj, **extra},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


def webhook_poster(client: Any, workspace: Any, capture_on_commit: Any):
    """``post(payload)``: an event POSTed as Stripe does (signed raw body) to ``workspace``'s
    endpoint, running what it enqueues on commit; asserts the 200 and returns its JSON."""

    def post(payload: dict[str, Any]) -> Any:
        body = json.dumps(payload)
        with capture_on_commit(execute=True):
            response = client.post(
                f"/webhooks/stripe/{workspace.slug}/",
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign(body),
            )
        assert response.status_code == 200, response.content
        return response.json()

    return post


def stripe_state_setter(http: Any):
    """``put(path, obj)``: what Stripe answers for a GET of ``path`` from now on."""

    def put(path: str, obj: dict[str, Any]) -> None:
        http.upsert(responses.GET, API + path, json=obj)

    return put
