"""Idempotency keys and action tags on Stripe writes.

Every write sends the caller's key (derived from the ``BillingAction`` id) as Stripe's
``Idempotency-Key``. An action that needs several Stripe writes derives one key per
step as ``"<key>:<step>"``, so a retry of the whole action replays each step instead
of repeating it. Writes also carry the action id in their metadata
(``billing_desk_action``): once Stripe's keys expire (24 h) it is the only way to find
what an action whose answer was lost did (``find_action_write``).
"""

from __future__ import annotations

import re
from typing import Any

from ..arguments import idempotency_key_check

Obj = dict[str, Any]

_ACTION_IN_KEY = re.compile(
    r"^billing-desk-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-"
)

# Kinds whose only write is one subscription update tagged with the action id: an
# untagged subscription proves the write did not happen.
TAGGED_SUBSCRIPTION_KINDS = frozenset(
    {
        "extend_trial",
        "pause_subscription",
        "cancel_subscription",
        "adjust_seats",
        "apply_discount",
        "extend_grace_period",
        "resume_subscription",
        "undo_cancellation",
    }
)


def step_key(key: str, step: str) -> str:
    """The idempotency key of one step of a multi-write action."""
    return f"{key}:{step}"


def action_tag(key: str, metadata: dict[str, str] | None = None) -> dict[str, str]:
    """Stripe metadata naming the action a write belongs to (``billing_desk_action``).

    The action id is read from the idempotency key (``billing-desk-<action id>-<kind>``).
    """
    tagged = dict(metadata or {})
    match = _ACTION_IN_KEY.match(key)
    if match:
        tagged.setdefault("billing_desk_action", match.group(1))
    return tagged


def action_meta(key: str) -> dict[str, Any]:
    """``{"metadata": …}`` for a write's params when the key names an action, else nothing."""
    tag = action_tag(key)
    return {"metadata": tag} if tag else {}


def tagged_by(obj: Obj | None, action_id: str) -> bool:
    """Whether a Stripe object carries ``action_id`` in ``metadata.billing_desk_action``."""
    return bool(obj) and (obj.get("metadata") or {}).get("billing_desk_action") == action_id  # type: ignore[union-attr]


def key_required(idempotency_key: str) -> str:
    return idempotency_key_check(idempotency_key)
