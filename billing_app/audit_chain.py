"""The audit chain's arithmetic: canonical content, the entry hash, an offline check.

Pure Python, no Django: an auditor verifies an export (``AuditEntry`` rows as CSV or
JSON, see docs/audit.md) with this module alone. The database computes the same hash
on PostgreSQL (``services.audit``), so the formula is written once here and once in SQL:

    hash = sha256_hex(prev_hash + "\\n" + str(seq) + "\\n" + content)

``content`` is the canonical JSON of the entry (``canonical_json``): keys sorted, no
whitespace, UTF-8 (``ensure_ascii=False``). The first entry of a workspace has seq 1 and
``prev_hash`` ``""``. Hash fields are never part of ``content``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

GENESIS = ""


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not canonical JSON: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """The one text form of ``value`` that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def entry_hash(*, prev_hash: str, seq: int, content: str) -> str:
    """sha256 (hex) over the previous entry's hash, this entry's number and its content."""
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{content}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """The first entry that does not match: its position in the walk, seq and why.

    ``missing`` is the seq that should have come where the walk found another (an entry
    deleted, renumbered or moved away): the row the break is about."""

    index: int
    seq: int | None
    reason: str
    missing: int | None = None


def chain_verify(
    entries: Iterable[Mapping[str, Any]], *, anchor: tuple[int, str] | None = None
) -> ChainBreak | None:
    """Walk one workspace's entries in order; ``None`` when the chain holds.

    Each entry is a mapping with ``seq``, ``content`` (text), ``prev_hash`` and ``hash``
    (an export's rows as they are). Detects an edited field (its hash no longer matches),
    an edited hash (the next entry's ``prev_hash`` no longer matches, or its own
    recomputation), a deleted, inserted or moved entry (``seq`` not consecutive, or
    ``prev_hash`` not the previous hash; an entry put in with its own hash right is named
    when the entry after it still chains to the one before it). ``anchor`` (seq, hash) is a point recorded
    earlier (the last verification, an exported head): the chain must still hold it
    and reach it, so a truncated or wholly rewritten chain is detected too.
    """
    prev, before_prev, expected, index = GENESIS, None, 1, -1
    anchored = anchor is None
    for index, entry in enumerate(entries):
        seq = int(entry["seq"])
        content = str(entry["content"])
        if seq != expected:
            return ChainBreak(index, seq, f"seq {seq} where {expected} was expected", expected)
        if entry["prev_hash"] != prev:
            if before_prev is not None and entry["prev_hash"] == before_prev:
                # this entry chains to the one before the previous: the previous was put in
                return ChainBreak(
                    index - 1, seq - 1, "inserted: the next entry chains to the one before it"
                )
            return ChainBreak(index, seq, "prev_hash is not the previous entry's hash")
        try:
            parsed = json.loads(content)
        except ValueError:
            return ChainBreak(index, seq, "content is not JSON")
        if canonical_json(parsed) != content:
            return ChainBreak(index, seq, "content is not canonical")
        if entry_hash(prev_hash=prev, seq=seq, content=content) != entry["hash"]:
            return ChainBreak(index, seq, "hash does not match the content")
        if anchor is not None and seq == anchor[0]:
            if entry["hash"] != anchor[1]:
                return ChainBreak(index, seq, "hash differs from the one recorded earlier")
            anchored = True
        prev, before_prev, expected = str(entry["hash"]), prev, expected + 1
    if not anchored:
        assert anchor is not None
        reason = f"entries from {expected} on are missing (entry {anchor[0]} was recorded earlier)"
        return ChainBreak(index + 1, None, reason, expected)
    return None
