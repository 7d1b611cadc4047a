"""What every builder shares: ids, timestamps, lists, addresses and the sandbox's hosted pages."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

Obj = dict[str, Any]

SANDBOX_HOST = "https://sandbox.billing-desk.invalid"
ACCOUNT_NAME = "Billing Desk Sandbox"


def unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def digest_id(prefix: str, *parts: object) -> str:
    """A deterministic object id: the same parts always give the same id."""
    raw = ":".join(str(p) for p in parts).encode()
    return f"{prefix}_sbx_{hashlib.sha256(raw).hexdigest()[:20]}"


def _list(data: list[Obj], url: str) -> Obj:
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "total_count": len(data),
        "url": url,
    }


def address(
    line1: str = "",
    city: str = "",
    state: str = "",
    postal_code: str = "",
    country: str = "",
    line2: str = "",
) -> Obj:
    return {
        "city": city or None,
        "country": country or None,
        "line1": line1 or None,
        "line2": line2 or None,
        "postal_code": postal_code or None,
        "state": state or None,
    }


def hosted_invoice_url(invoice_id: str) -> str:
    return f"{SANDBOX_HOST}/i/{invoice_id}"


def invoice_pdf_url(invoice_id: str) -> str:
    return f"{SANDBOX_HOST}/i/{invoice_id}/pdf"
