from django.apps import AppConfig


class HelpdeskConnectorsConfig(AppConfig):
    name = "helpdesk_connectors"
    verbose_name = "Helpdesk connectors"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, schema  # noqa: F401  (registers system checks and the OpenAPI scheme)
