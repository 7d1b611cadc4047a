"""The submission's decision read: one statement under the customer's decision lock.

``action_submit`` needs, before it decides, the customer, whether its idempotency key
was used (a replay), whether the object has an open action (the 409 guard) and the
permission matrix as it applies to this request — the role's cell for the kind, the
kind's approval routes and the exchange rate of the request's currency. They used
to be six reads (and the key was read twice, before and under the lock); here they
are one ``SELECT`` of the customer row with scalar subqueries, taken under the lock
so that what it sees is what the previous decider committed.

Only what this request's decision can use is read: ``policy.decide`` looks at one
cell (its action, the agent's role), that action's routes and the rate of the
amount's currency. A rate for another currency (a duplicate-charge refund names no
currency; the charge's is known after the read) is read when asked for
(``_Rates``): correct, one statement more, rare.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import DecimalField, Subquery, TextField
from django.db.models.expressions import RawSQL

from ...catalog import KIND_POLICY_ACTION, ActionKind, PolicyAction, Role
from ...models import (
    ActionPolicy,
    ApprovalRoute,
    BillingAction,
    CurrencyRate,
    MirrorCustomer,
    Workspace,
)
from ...policy import PolicyCell, PolicyRoute, PolicyRules
from ...policy_defaults import CELL_FIELDS
from .decision import open_outcome_scope


class _Rates(Mapping[str, Decimal]):
    """The workspace's exchange rates: the request's currency read with the decision, any
    other read (all of them, once) only if the decision asks for it."""

    def __init__(self, workspace: Workspace, known: dict[str, Decimal | None]):
        self._workspace = workspace
        self._known = known
        self._all: dict[str, Decimal] | None = None

    def _load(self) -> dict[str, Decimal]:
        if self._all is None:
            self._all = {
                r.currency: r.rate for r in CurrencyRate.objects.filter(workspace=self._workspace)
            }
        return self._all

    def __getitem__(self, currency: str) -> Decimal:
        if currency in self._known:
            rate = self._known[currency]
            if rate is None:
                raise KeyError(currency)
            return rate
        return self._load()[currency]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _routes_sql(workspace_id: int, action: str) -> RawSQL:
    """The action's approval routes as one JSON array of ``[threshold, inclusive, roles]``.

    Django has no portable JSON aggregate, so this one subquery is written per backend
    (PostgreSQL, SQLite — the two this project runs on).
    """
    table = connection.ops.quote_name(ApprovalRoute._meta.db_table)
    if connection.vendor == "postgresql":
        rows = "JSON_AGG(JSON_BUILD_ARRAY(r.threshold, r.threshold_inclusive, r.approver_roles))"
    else:
        rows = "JSON_GROUP_ARRAY(JSON_ARRAY(r.threshold, r.threshold_inclusive, JSON(r.approver_roles)))"
    sql = f"SELECT {rows} FROM {table} r WHERE r.workspace_id = %s AND r.action = %s"  # noqa: S608 - identifiers are ours, values bound
    return RawSQL(sql, (workspace_id, action), output_field=TextField())  # noqa: S611


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _routes(value: Any) -> tuple[PolicyRoute, ...]:
    routes = []
    for threshold, inclusive, roles in _json(value) or []:
        roles = _json(roles) or []
        routes.append(PolicyRoute(int(threshold), bool(inclusive), tuple(Role(r) for r in roles)))
    return tuple(sorted(routes, key=lambda r: r.threshold))


@dataclass(frozen=True)
class DecisionRead:
    """What the one read found. ``customer`` is None when the workspace has no such customer
    (then nothing else was read: the caller looks the key up on its own)."""

    customer: MirrorCustomer | None
    existing_id: Any = None
    open_action_id: Any = None
    open_noun: str = ""
    rules: PolicyRules | None = None


def decision_read(
    *,
    workspace: Workspace,
    customer_id: str,
    key: str,
    kind: ActionKind,
    params: Mapping[str, Any],
    role: Role,
) -> DecisionRead:
    """Customer, replay, open outcome and the applicable matrix in one statement."""
    policy_action: PolicyAction = KIND_POLICY_ACTION[kind]
    cell = ActionPolicy.objects.filter(
        workspace=workspace, action=policy_action.value, role=role.value
    )
    annotations: dict[str, Any] = {
        "bd_existing": Subquery(
            BillingAction.objects.filter(workspace=workspace, idempotency_key=key).values("pk")[:1]
        ),
        "bd_routes": _routes_sql(workspace.pk, policy_action.value),
        **{f"bd_cell_{name}": Subquery(cell.values(name)[:1]) for name in CELL_FIELDS},
    }
    currency = str(params.get("currency") or "").upper()
    if currency and currency != workspace.base_currency:
        annotations["bd_rate"] = Subquery(
            CurrencyRate.objects.filter(workspace=workspace, currency=currency).values("rate")[:1],
            output_field=DecimalField(max_digits=18, decimal_places=8),
        )
    found = open_outcome_scope(
        workspace=workspace, kind=kind, customer_id=customer_id, params=params
    )
    noun = ""
    if found is not None:
        open_actions, noun = found
        annotations["bd_open"] = Subquery(open_actions.values("pk")[:1])
    customer = (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id)
        .annotate(**annotations)
        .first()
    )
    if customer is None:
        return DecisionRead(customer=None)
    values = {name: getattr(customer, f"bd_cell_{name}") for name in CELL_FIELDS}
    cells = {}
    if values["effect"] is not None:
        cells[(policy_action, role)] = PolicyCell(
            effect=values["effect"],
            limit=values["limit"],
            limit_inclusive=bool(values["limit_inclusive"]),
            above_limit=values["above_limit"],
            customer_requested_only=bool(values["customer_requested_only"]),
        )
    known = {currency: getattr(customer, "bd_rate", None)} if "bd_rate" in annotations else {}
    rules = PolicyRules(
        base_currency=workspace.base_currency,
        cells=cells,
        routes={policy_action: _routes(getattr(customer, "bd_routes", None))},
        rates=_Rates(workspace, known),
        refund_pattern_count=workspace.refund_pattern_count,
        refund_pattern_days=workspace.refund_pattern_days,
    )
    return DecisionRead(
        customer=customer,
        existing_id=getattr(customer, "bd_existing", None),
        open_action_id=getattr(customer, "bd_open", None),
        open_noun=noun,
        rules=rules,
    )
