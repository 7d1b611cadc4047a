"""Send work to the Celery workers by task name.

Services decide *that* something runs in the background; the ``tasks`` modules are the
workers' entry points (ids in, one service call out) and sit above the services. A
service therefore never imports a task: it names it. Every task module is imported when
Django starts (``BillingAppConfig.ready``), so the names resolve in the web process, the
workers and the tests alike; eager mode (tests, the demo) runs the task in-process.
"""

from __future__ import annotations

from typing import Any

from celery import current_app


class UnknownTask(LookupError):
    """A service named a task no module registered: a programming error, never a runtime one."""


def task_named(name: str) -> Any:
    try:
        return current_app.tasks[name]
    except KeyError:
        raise UnknownTask(f"No Celery task named {name!r} is registered.") from None


def enqueue(name: str, *args: Any, **options: Any) -> Any:
    """Queue ``name(*args)``; ``options`` go to ``apply_async`` (``countdown``, ``queue``…).

    Raises what the broker raises when it is down: callers that must not fail on a
    lost doorbell (the outbox, webhook intake) catch it, as they did for ``delay``.
    """
    return task_named(name).apply_async(args=args, **options)


__all__ = ["UnknownTask", "enqueue", "task_named"]
