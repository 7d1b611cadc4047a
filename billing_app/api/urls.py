"""``/api/v1/`` — one module of thin views per area, each with its own ``urlpatterns``."""

from . import (
    action_details,
    actions,
    approvals,
    customers,
    investigations,
    me,
    panel,
    reports,
    self_service,
)

urlpatterns = [
    *me.urlpatterns,
    *customers.urlpatterns,
    *actions.urlpatterns,
    *action_details.urlpatterns,
    *panel.urlpatterns,
    *approvals.urlpatterns,
    *reports.urlpatterns,
    *investigations.urlpatterns,
    *self_service.urlpatterns,
]
