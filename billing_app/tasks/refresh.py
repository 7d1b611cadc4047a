"""Background refresh of a customer's mirrored billing data."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="billing_app.refresh_customer", ignore_result=True)
def customer_refresh_task(workspace_id: int, customer_id: str) -> None:
    """Ids in, one service call out; safe to retry (an upsert of the provider's current state)."""
    from ..services.refresh import customer_refresh

    customer_refresh(workspace_id=workspace_id, customer_id=customer_id)
