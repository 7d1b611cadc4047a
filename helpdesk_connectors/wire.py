"""What every JSON endpoint shares on the wire: the error envelope and a bounded JSON reader.

Why here: the envelope ``{"error": {"code", "message", "details"}}`` is answered by the
API (``billing_app.api``), the webhook endpoint, the helpdesk entry views and the error
middleware alike. ``billing_app`` may import ``helpdesk_connectors`` but never the other
way round (DESIGN.md section 1), so the one builder lives in the lower package.

Why a bounded reader: ``json.loads`` recurses once per ``[`` or ``{``; a few thousand
of them (a 4 kB body) raise ``RecursionError`` deep inside the C scanner, which used to
escape as an HTML 500. The depth is measured on the raw bytes first, without recursing
(strings removed by one regular expression, the brackets summed by ``accumulate``), and
only a body within :data:`MAX_JSON_DEPTH` is handed to ``json.loads``.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

from django.http import JsonResponse

# No request of ours nests deeper than ~5; 64 leaves room and stays far from the stack.
MAX_JSON_DEPTH = 64

# A JSON string, escapes included (the unrolled form: linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPENERS = b"[{"
# translate(): openers -> +1, closers -> -1 (0xff as a signed byte), everything else deleted.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[{]}")))


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one error shape of every JSON endpoint (DESIGN.md section 11)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details if details is not None else {},
        }
    }


def error_response(status: int, code: str, message: str, details: Any = None) -> JsonResponse:
    """:func:`error_body` as a ``JsonResponse`` that no cache keeps."""
    response = JsonResponse(error_body(code, message, details), status=status)
    response["Cache-Control"] = "no-store"
    return response


class BodyRejected(ValueError):
    """A request body we refuse to interpret; carries the code and status it is answered with."""

    def __init__(self, message: str, *, code: str, status: int = 400, details: Any = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details if details is not None else {}


def json_depth(raw: bytes) -> int:
    """The deepest ``[``/``{`` nesting in ``raw``, brackets inside strings not counted.

    Linear time and constant stack whatever the input. On malformed input (an unclosed
    string) the figure is an upper bound, which only matters for a body that is refused
    anyway.
    """
    if raw.count(b"[") + raw.count(b"{") == 0:
        return 0
    if b'"' in raw:
        raw = _STRING.sub(b"", raw)
    steps = array("b", raw.translate(_STEPS, _NOT_BRACKETS))
    return max(accumulate(steps), default=0)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_loads_bounded(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a UTF-8 JSON body, refusing what would hurt: depth, bad UTF-8, non-JSON.

    Raises :class:`BodyRejected` with code ``nesting_too_deep`` or ``malformed_request``
    (400). ``NaN``/``Infinity`` are refused like DRF's strict JSON parser does.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.count(b"[") + raw.count(b"{") > max_depth and json_depth(raw) > max_depth:
        raise BodyRejected(
            f"The JSON body nests deeper than {max_depth} levels.",
            code="nesting_too_deep",
            details={"max_depth": max_depth},
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyRejected(
            "The request body is not valid UTF-8.",
            code="malformed_request",
            details={"reason": "not_utf8"},
        ) from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:  # belt and braces: the depth check above should make this unreachable
        raise BodyRejected(
            "The JSON body nests too deeply.",
            code="nesting_too_deep",
            details={"max_depth": max_depth},
        ) from None
    except ValueError:
        raise BodyRejected(
            "The request body is not valid JSON.",
            code="malformed_request",
            details={"reason": "not_json"},
        ) from None
