"""Loading and copying the permission matrix (the write side of ``policy``)."""

from __future__ import annotations

from django.apps import apps as django_apps
from django.db import transaction

from ..catalog import PolicyAction, Role
from ..models import ActionPolicy, ApprovalRoute, Workspace
from ..policy import PolicyCell, PolicyRoute, PolicyRules
from ..policy_defaults import CELL_FIELDS, seed_default_policies


@transaction.atomic
def policy_copy_defaults(*, workspace: Workspace) -> None:
    """Copy the product-default matrix into ``workspace`` (cells it already has are kept)."""
    if not ActionPolicy.objects.filter(workspace=None).exists():
        seed_default_policies(django_apps)
    have = set(ActionPolicy.objects.filter(workspace=workspace).values_list("action", "role"))
    ActionPolicy.objects.bulk_create(
        [
            ActionPolicy(
                workspace=workspace,
                action=cell.action,
                role=cell.role,
                **{field: getattr(cell, field) for field in CELL_FIELDS},
            )
            for cell in ActionPolicy.objects.filter(workspace=None)
            if (cell.action, cell.role) not in have
        ]
    )
    have_routes = set(
        ApprovalRoute.objects.filter(workspace=workspace).values_list("action", "threshold")
    )
    ApprovalRoute.objects.bulk_create(
        [
            ApprovalRoute(
                workspace=workspace,
                action=route.action,
                threshold=route.threshold,
                threshold_inclusive=route.threshold_inclusive,
                approver_roles=route.approver_roles,
            )
            for route in ApprovalRoute.objects.filter(workspace=None)
            if (route.action, route.threshold) not in have_routes
        ]
    )


def _route_shape(route: ApprovalRoute | None) -> tuple[bool, list[str]] | None:
    return None if route is None else (route.threshold_inclusive, list(route.approver_roles))


def policy_default_differences(*, workspace: Workspace) -> list[str]:
    """Where ``workspace``'s matrix differs from the product default, one line per cell or route."""
    default = {(c.action, c.role): c for c in ActionPolicy.objects.filter(workspace=None)}
    own = {(c.action, c.role): c for c in ActionPolicy.objects.filter(workspace=workspace)}
    lines = []
    for key in sorted(default.keys() | own.keys()):
        want, have = default.get(key), own.get(key)
        if want is None or have is None:
            where = "only in the product default" if have is None else "only in this workspace"
            lines.append(f"{key[0]} · {key[1]}: {where}")
            continue
        changed = [
            f"{field} {getattr(have, field)!r} → {getattr(want, field)!r}"
            for field in CELL_FIELDS
            if getattr(have, field) != getattr(want, field)
        ]
        if changed:
            lines.append(f"{key[0]} · {key[1]}: {', '.join(changed)}")
    default_routes = {
        (r.action, r.threshold): r for r in ApprovalRoute.objects.filter(workspace=None)
    }
    own_routes = {
        (r.action, r.threshold): r for r in ApprovalRoute.objects.filter(workspace=workspace)
    }
    for route_key in sorted(default_routes.keys() | own_routes.keys()):
        want_route, have_route = default_routes.get(route_key), own_routes.get(route_key)
        if _route_shape(want_route) != _route_shape(have_route):
            lines.append(
                f"route {route_key[0]} ≥ {route_key[1]}: {_route_shape(have_route)} → {_route_shape(want_route)}"
            )
    return lines


@transaction.atomic
def policy_adopt_defaults(*, workspace: Workspace) -> list[str]:
    """Replace ``workspace``'s matrix and routes with the product default; return what changed."""
    changes = policy_default_differences(workspace=workspace)
    if changes:
        ActionPolicy.objects.filter(workspace=workspace).delete()
        ApprovalRoute.objects.filter(workspace=workspace).delete()
        policy_copy_defaults(workspace=workspace)
    return changes


def policy_rules_load(*, workspace: Workspace) -> PolicyRules:
    """The workspace's matrix, routes and rates as the pure ``PolicyRules`` value."""
    from ..models import CurrencyRate

    cells = {
        (PolicyAction(c.action), Role(c.role)): PolicyCell(
            effect=c.effect,
            limit=c.limit,
            limit_inclusive=c.limit_inclusive,
            above_limit=c.above_limit,
            customer_requested_only=c.customer_requested_only,
        )
        for c in ActionPolicy.objects.filter(workspace=workspace)
    }
    routes: dict[PolicyAction, list[PolicyRoute]] = {}
    for r in ApprovalRoute.objects.filter(workspace=workspace).order_by("threshold"):
        routes.setdefault(PolicyAction(r.action), []).append(
            PolicyRoute(
                r.threshold, r.threshold_inclusive, tuple(Role(x) for x in r.approver_roles)
            )
        )
    rates = {r.currency: r.rate for r in CurrencyRate.objects.filter(workspace=workspace)}
    return PolicyRules(
        base_currency=workspace.base_currency,
        cells=cells,
        routes={k: tuple(v) for k, v in routes.items()},
        rates=rates,
        refund_pattern_count=workspace.refund_pattern_count,
        refund_pattern_days=workspace.refund_pattern_days,
    )
