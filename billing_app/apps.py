from django.apps import AppConfig


class BillingAppConfig(AppConfig):
    name = "billing_app"
    verbose_name = "Billing Desk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            tasks,  # noqa: F401  (registers every task name for billing_app.queue)
        )
        from .device_credentials import register
        from .services import (  # noqa: F401
            auth_signals,  # bumps the cached sign-in state when a membership, role or installation changes
            card_prompts,  # registers the card_prompt outbox kind and its webhook hooks
            customer_tickets,  # registers the customer_ticket outbox kind
            payment_failures,  # registers its webhook hooks
            snapshot_signals,  # marks context snapshots stale on admin edits
            widget,  # the billing widget: keeps each contact's ticket reference
        )
        from .services.self_service_refunds import (  # noqa: F401
            requests as _self_service_requests,  # the refund requests' customer_ticket hook
        )

        register()  # the workspace's device_credential_days for Freshdesk device credentials
