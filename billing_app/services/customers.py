"""Customer matching: the lookup (with a provider fallback) and the agent's pin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from ..errors import NotFound, ProviderError, ProviderUnavailable, ValidationFailed
from ..models import CustomerLink, MirrorCustomer, Workspace
from ..providers import get_provider
from ..selectors.customers import MAX_MATCHES, customer_matches
from .refresh import provider_health_record, provider_health_status


def _email(value: str) -> str:
    email = value.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationFailed("Not a valid email address.", code="invalid_email") from exc
    return email


def customer_lookup(
    *, workspace: Workspace, email: str = "", organization_id: str = ""
) -> dict[str, Any]:
    """Matches from pins and the mirror; for an unknown email, the provider's customers.

    The provider fallback only reads: its matches are returned, not mirrored (the
    context endpoint fetches and mirrors the one the agent opens). An outage
    leaves the mirrored answer with ``provider_status: "unavailable"``.
    """
    email = _email(email) if email.strip() else ""
    organization_id = organization_id.strip()[:255]
    if not email and not organization_id:
        raise ValidationFailed(
            "Give the requester's email or the helpdesk organization id.",
            code="lookup_key_required",
        )
    result = customer_matches(workspace=workspace, email=email, organization_id=organization_id)
    result["provider_status"] = provider_health_status(workspace_id=workspace.pk)
    result["source"] = "mirror"
    if result["matches"] or not email:
        return result
    try:
        found = get_provider(workspace).find_customers_by_email(email)
    except ProviderUnavailable:
        provider_health_record(workspace_id=workspace.pk, available=False)
        result["provider_status"] = "unavailable"
        return result
    except ProviderError:
        return result
    provider_health_record(workspace_id=workspace.pk, available=True)
    result["provider_status"] = "ok"
    result["source"] = "provider"
    result["matches"] = [
        {
            "id": obj.get("id"),
            "name": obj.get("name") or "",
            "email": (obj.get("email") or "").lower(),
            "currency": str(obj.get("currency") or "").upper(),
            "created": _created(obj.get("created")),
            "plan": None,
            "delinquent": bool(obj.get("delinquent")),
            "deleted": False,
            "pinned": False,
            "matched_by": ["email"],
        }
        for obj in found[:MAX_MATCHES]
        if obj.get("id") and not obj.get("deleted")
    ]
    return result


def _created(value: Any) -> str | None:
    return datetime.fromtimestamp(int(value), tz=UTC).date().isoformat() if value else None


@transaction.atomic
def customer_link_pin(
    *,
    workspace: Workspace,
    customer_id: str,
    user: User | None,
    email: str = "",
    organization_id: str = "",
) -> CustomerLink:
    """Pin a requester email or a helpdesk organization to a customer of this workspace.

    One pin per key: pinning the same email again moves it (``update_or_create``
    on the unique (workspace, key type, key value)). The customer must be
    mirrored in this workspace, so a pin can never point at another tenant's
    customer.
    """
    if bool(email.strip()) == bool(organization_id.strip()):
        raise ValidationFailed(
            "Pin either an email or an organization id, one at a time.", code="link_key_required"
        )
    if not MirrorCustomer.objects.filter(
        workspace=workspace, stripe_id=customer_id, deleted=False
    ).exists():
        raise NotFound("No such billing customer.", code="customer_not_found")
    if email.strip():
        key_type, key_value = CustomerLink.KeyType.EMAIL, _email(email)
    else:
        key_type, key_value = CustomerLink.KeyType.ORGANIZATION, organization_id.strip()
        if len(key_value) > 255:
            raise ValidationFailed("The organization id is too long.", code="invalid_organization")
    link, _ = CustomerLink.objects.update_or_create(
        workspace=workspace,
        key_type=key_type,
        key_value=key_value,
        defaults={"customer_id": customer_id, "pinned_by": user},
    )
    return link
