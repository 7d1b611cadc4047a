"""Shared by the billing widget tests: a widget for a seeded workspace, and its callers."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from billing_app.models import BillingWidget

ORIGIN = "https://app.acme-product.example"
SECRET = "0f" * 32
VISIT = "visit-0001-abcdef"


def widget_enable(workspace, *, origins: str = ORIGIN, secret: str = SECRET) -> BillingWidget:
    return BillingWidget.objects.create(
        workspace=workspace, enabled=True, allowed_origins=origins, identity_secret=secret
    )


def sign(customer_id: str, secret: str = SECRET) -> str:
    """What the product's backend computes — written out here, not through our helper."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def call(
    client,
    workspace,
    endpoint: str,
    *,
    customer: Any = "cus_acme",
    signature: Any = None,
    origin: str | None = ORIGIN,
    visit: str = VISIT,
    **extra: Any,
):
    """POST one widget call as the script makes it (JSON, the page's Origin, no cookies)."""
    body = {
        "customer": customer,
        "signature": sign(customer) if signature is None else signature,
        "visit": visit,
        **extra,
    }
    headers = {"HTTP_ORIGIN": origin} if origin is not None else {}
    return client.post(
        f"/widget/api/v1/{workspace.slug}/{endpoint}",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )
