"""Stripe's wire format for the fake: form decoding, lists, errors."""

from __future__ import annotations

import re
from typing import Any

Obj = dict[str, Any]
Answer = tuple[int, Obj]


class StripeRefusal(Exception):
    def __init__(self, status: int, type_: str, message: str, *, code: str = "", param: str = ""):
        super().__init__(message)
        self.status, self.type, self.code, self.param = status, type_, code, param

    def body(self) -> Obj:
        error: Obj = {"type": self.type, "message": str(self)}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing(kind: str, object_id: str) -> StripeRefusal:
    return StripeRefusal(
        404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param="id",
    )


def nest(pairs: list[tuple[str, str]]) -> Obj:
    """Stripe's form encoding (``items[0][price]=…``) back into nested dicts and lists."""
    root: Obj = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            value = {k: listify(v) for k, v in value.items()}
            if value and all(k.isdigit() for k in value):
                return [value[k] for k in sorted(value, key=int)]
        return value

    return listify(root)


def to_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def listing(url: str, objects: list[Obj], params: Obj) -> Obj:
    limit = int(params.get("limit") or 10)
    after = params.get("starting_after")
    if after:
        ids = [o["id"] for o in objects]
        objects = objects[ids.index(after) + 1 :] if after in ids else []
    return {
        "object": "list",
        "data": objects[:limit],
        "has_more": len(objects) > limit,
        "url": url,
    }
