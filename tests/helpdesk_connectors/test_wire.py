"""The shared wire helpers: the one error envelope, and JSON read without recursing into depth."""

from __future__ import annotations

import pytest

from helpdesk_connectors.wire import (
    MAX_JSON_DEPTH,
    BodyRejected,
    error_body,
    error_response,
    json_depth,
    json_loads_bounded,
)


def test_the_envelope_has_code_message_and_details():
    assert error_body("not_found", "No such thing.") == {
        "error": {"code": "not_found", "message": "No such thing.", "details": {}}
    }
    response = error_response(413, "body_too_large", "Too big.", {"max_bytes": 10})
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[[[", "b": "\\"[[[", "c": [1]}', 2),  # brackets in strings do not count
        (b"[" * 100_000, 100_000),  # no recursion, whatever the depth
        (b'["\xff[[", 1]', 1),  # bytes that are not UTF-8 do not confuse the count
    ],
)
def test_depth_is_measured_without_parsing(raw, depth):
    assert json_depth(raw) == depth


def test_depth_at_the_limit_is_read_and_beyond_it_refused():
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert json_loads_bounded(at_limit) is not None

    with pytest.raises(BodyRejected) as refused:
        json_loads_bounded(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    assert (refused.value.code, refused.value.status) == ("nesting_too_deep", 400)


def test_wide_but_shallow_bodies_are_fine():
    wide = b"[" + b",".join([b"[1]"] * 10_000) + b"]"
    assert len(json_loads_bounded(wide)) == 10_000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": "\xff"}', "not_utf8"),
        (b'{"a": ', "not_json"),
        (b"", "not_json"),
        (b"NaN", "not_json"),
        (b'{"a": Infinity}', "not_json"),
    ],
)
def test_undecodable_bodies_are_malformed(raw, reason):
    with pytest.raises(BodyRejected) as refused:
        json_loads_bounded(raw)
    assert refused.value.code == "malformed_request"
    assert refused.value.details == {"reason": reason}
