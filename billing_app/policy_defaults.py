"""The brief's permission matrix (DESIGN.md section 3) as seed data.

Seeded as the product default (``workspace=None``) by a data migration and copied
into each new workspace by ``services.policy.policy_copy_defaults``. Limits are in
minor units of the workspace's base currency (amounts), percent, or days.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

ALLOW, REQUEST, DENY = "allow", "request", "deny"
L1, L2, MANAGER, SPECIALIST, VP, LEGAL = "l1", "l2", "manager", "specialist", "vp", "legal"


class Cell(NamedTuple):
    effect: str
    limit: int | None = None
    limit_inclusive: bool = True
    above_limit: str = REQUEST
    customer_requested_only: bool = False


# An ActionPolicy cell's own fields: exactly a ``Cell``'s.
CELL_FIELDS: tuple[str, ...] = Cell._fields


class Route(NamedTuple):
    threshold: int
    inclusive: bool
    approvers: tuple[str, ...]


_ALL_ALLOW = {L1: Cell(ALLOW), L2: Cell(ALLOW), MANAGER: Cell(ALLOW), SPECIALIST: Cell(ALLOW)}
# ❌ in the brief: not permitted and not offered. An admin may turn a cell into
# "May request approval" per workspace; the product default never does.
_MANAGER_UP = {L1: Cell(DENY), L2: Cell(DENY), MANAGER: Cell(ALLOW), SPECIALIST: Cell(ALLOW)}
_L2_UP = {L1: Cell(DENY), L2: Cell(ALLOW), MANAGER: Cell(ALLOW), SPECIALIST: Cell(ALLOW)}

DEFAULT_CELLS: dict[str, dict[str, Cell]] = {
    "view_billing": _ALL_ALLOW,
    "generate_payment_link": _ALL_ALLOW,
    "resend_invoice": _ALL_ALLOW,
    # < $100: L2; $100–500: Manager; > $500: Specialist after VP approval; ❌ otherwise.
    "apply_credit": {
        L1: Cell(DENY),
        L2: Cell(ALLOW, 10_000, limit_inclusive=False, above_limit=DENY),
        MANAGER: Cell(ALLOW, 50_000, above_limit=DENY),
        SPECIALIST: Cell(ALLOW, 50_000),
    },
    # Manager: yes; Specialist up to $1,000, above → Manager approval; L1/L2 ❌.
    "issue_refund": {
        L1: Cell(DENY),
        L2: Cell(DENY),
        MANAGER: Cell(ALLOW),
        SPECIALIST: Cell(ALLOW, 100_000),
    },
    # Up to 14 days; longer → Manager approval (a Manager's own extension needs none).
    "extend_trial": {
        L1: Cell(ALLOW, 14),
        L2: Cell(ALLOW, 14),
        MANAGER: Cell(ALLOW),
        SPECIALIST: Cell(ALLOW, 14),
    },
    "extend_grace_period": {
        L1: Cell(ALLOW, 14),
        L2: Cell(ALLOW, 14),
        MANAGER: Cell(ALLOW),
        SPECIALIST: Cell(ALLOW, 14),
    },
    "pause_subscription": _MANAGER_UP,
    "change_plan": _L2_UP,
    # Specialist: ✅ when customer-requested (otherwise not permitted: that is a force cancel).
    "cancel_subscription": {
        L1: Cell(DENY),
        L2: Cell(DENY),
        MANAGER: Cell(ALLOW),
        SPECIALIST: Cell(ALLOW, customer_requested_only=True, above_limit=DENY),
    },
    # Only the Specialist, and only with Legal approval.
    "force_cancel": {
        L1: Cell(DENY),
        L2: Cell(DENY),
        MANAGER: Cell(DENY),
        SPECIALIST: Cell(REQUEST),
    },
    "update_payment_method": _L2_UP,
    "adjust_seats": _L2_UP,
    # Up to 15%: Manager and Specialist; above 15%: Specialist after VP approval.
    "apply_discount": {
        L1: Cell(DENY),
        L2: Cell(DENY),
        MANAGER: Cell(ALLOW, 15, above_limit=DENY),
        SPECIALIST: Cell(ALLOW, 15),
    },
}

_MANAGER_ROUTE = (Route(0, True, (MANAGER,)),)
DEFAULT_ROUTES: dict[str, tuple[Route, ...]] = {
    action: _MANAGER_ROUTE for action in DEFAULT_CELLS
} | {
    "apply_credit": (Route(0, True, (MANAGER,)), Route(50_000, False, (VP,))),
    "apply_discount": (Route(0, True, (MANAGER,)), Route(15, False, (VP,))),
    "force_cancel": (Route(0, True, (LEGAL,)),),
}


def seed_default_policies(apps) -> None:  # type: ignore[no-untyped-def]
    """Write the product defaults (``workspace=None``); used by the data migration and tests.

    Idempotent and in bulk (two reads, then at most a create and an update per table):
    a cell or route that differs from the default is put back to it, a missing one added.
    """
    ActionPolicy = apps.get_model("billing_app", "ActionPolicy")
    ApprovalRoute = apps.get_model("billing_app", "ApprovalRoute")
    cells = {
        (action, role): cell._asdict()
        for action, by_role in DEFAULT_CELLS.items()
        for role, cell in by_role.items()
    }
    _seed(ActionPolicy, ("action", "role"), cells)
    routes = {
        (action, route.threshold): {
            "threshold_inclusive": route.inclusive,
            "approver_roles": list(route.approvers),
        }
        for action, by_threshold in DEFAULT_ROUTES.items()
        for route in by_threshold
    }
    _seed(ApprovalRoute, ("action", "threshold"), routes)


def _seed(  # type: ignore[no-untyped-def]
    model,
    key: tuple[str, str],
    wanted: Mapping[tuple[Any, Any], Mapping[str, Any]],
) -> None:
    """Make ``model``'s product-default rows (``workspace=None``) exactly ``wanted`` by key
    (each value maps the row's fields to their default)."""
    have = {
        (getattr(row, key[0]), getattr(row, key[1])): row
        for row in model.objects.filter(workspace=None)
    }
    changed: list[Any] = []
    fields: set[str] = set()
    for name, values in wanted.items():
        row = have.get(name)
        if row is not None and any(getattr(row, f) != v for f, v in values.items()):
            for field, value in values.items():
                setattr(row, field, value)
            changed.append(row)
            fields.update(values)
    model.objects.bulk_create(
        [
            model(workspace=None, **dict(zip(key, name, strict=True)), **values)
            for name, values in wanted.items()
            if name not in have
        ]
    )
    if changed:
        model.objects.bulk_update(changed, sorted(fields))
