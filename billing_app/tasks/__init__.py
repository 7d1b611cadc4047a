"""Celery tasks, one module per area. Tasks are interfaces: ids in, one service call out.

Each area's module is imported here so that Celery's autodiscovery of
``billing_app.tasks`` registers every task.
"""

from . import approvals  # noqa: F401
from . import failures  # noqa: F401
from . import notes  # noqa: E402,F401
from . import reconcile  # noqa: F401
from . import refresh  # noqa: E402,F401
from . import reports  # noqa: F401
from . import webhooks  # noqa: E402,F401
