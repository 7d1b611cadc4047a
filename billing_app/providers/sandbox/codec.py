"""JSON encoding of provider results, so the sandbox can replay the first answer to a key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime
from typing import Any

from ...money import Money
from .. import base

RESULT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        base.LinkResult,
        base.InvoiceSendResult,
        base.CreditResult,
        base.RefundResult,
        base.SubscriptionResult,
        base.ProrationLine,
        base.PlanChangePreview,
        base.PlanChangeResult,
        base.DiscountResult,
        base.TaxDetailsResult,
    )
}


def encode(value: Any) -> Any:
    if isinstance(value, Money):
        return {"__money__": [value.amount, value.currency]}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__result__": type(value).__name__,
            "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__money__" in value:
        amount, currency = value["__money__"]
        return Money(int(amount), str(currency))
    if "__datetime__" in value:
        return datetime.fromisoformat(value["__datetime__"])
    if "__result__" in value:
        cls = RESULT_TYPES[value["__result__"]]
        return cls(**{k: decode(v) for k, v in value["fields"].items()})
    return {k: decode(v) for k, v in value.items()}


def request_hash(operation: str, params: dict[str, Any]) -> str:
    payload = json.dumps([operation, encode(params)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
