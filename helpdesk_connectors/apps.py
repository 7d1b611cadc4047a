from django.apps import AppConfig


class HelpdeskConnectorsConfig(AppConfig):
    name = "helpdesk_connectors"
    verbose_name = "Helpdesk connectors"
    default_auto_field = "django.db.models.BigAutoField"
