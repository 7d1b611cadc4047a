"""The shape of a demo ticket: a requester, a subject and the requester's message.

Each demo customer module holds its own ticket; ``billing_app.demo.tickets`` lists
them in the order the demo page shows them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    author: str
    when: str
    body: str
    agent: bool = False


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    number: str
    subject: str
    requester_name: str
    requester_email: str
    organization: str
    tags: tuple[str, ...]
    messages: tuple[Message, ...]


def ask(name: str, body: str) -> tuple[Message, ...]:
    """The requester's opening message, sent this morning."""
    return (Message(author=name, when="today, 09:12", body=body),)
