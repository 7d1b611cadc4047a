"""Turning domain errors into ``CommandError`` for the setup commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from billing_app.errors import BillingDeskError


def command_error(exc: BillingDeskError) -> CommandError:
    """One readable message: the error, then each field's problems on its own line."""
    lines = [exc.message]
    details = exc.details if isinstance(exc.details, dict) else {}
    for field, messages in details.items():
        if isinstance(messages, (list, tuple)):
            messages = " ".join(str(m) for m in messages)
        line = f"  {field}: {messages}" if field != "__all__" else f"  {messages}"
        if str(messages) not in exc.message:
            lines.append(line)
    return CommandError("\n".join(lines) + "\nNothing was changed.")
