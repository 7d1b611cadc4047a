"""The demo page's tickets: one per playbook scenario, then the reading edge cases.

Every ticket but the last comes from its customer's module (its requester is that
sandbox customer); the last has a requester with no billing account.
"""

from __future__ import annotations

from .customers import (
    acme,
    globex,
    hooli,
    initech,
    northwind,
    piedpiper,
    sakura,
    soylent,
    stark,
    umbrella,
    vandelay,
    wayne,
)
from .scenario import Message, Scenario, ask

NO_ACCOUNT = Scenario(
    key="no-account",
    label="Requester with no billing account",
    number="1011",
    subject="Pricing question",
    requester_name="Jordan Lee",
    requester_email="jordan.lee@example.org",
    organization="",
    tags=("billing", "presales"),
    messages=ask(
        "Jordan Lee",
        "Hi! I'm paying with my company's account but I don't know which email it's "
        "under. How much is the Enterprise Pro plan per seat?",
    ),
)

# The playbook scenarios, in the order of the demo page's ticket list.
SCENARIOS: tuple[Scenario, ...] = (
    acme.TICKET,
    northwind.TICKET,
    globex.TICKET,
    initech.TICKET,
    umbrella.TICKET,
    hooli.TICKET,
    vandelay.TICKET,
)
# The reading edge cases of DESIGN.md section 10, as tickets too.
EDGE_CASES: tuple[Scenario, ...] = (
    wayne.TICKET,
    sakura.TICKET,
    stark.TICKET,
    piedpiper.TICKET,  # a paused subscription
    soylent.TICKET,  # a subscription set to cancel at the period end
    NO_ACCOUNT,
)
ALL_SCENARIOS = SCENARIOS + EDGE_CASES
SCENARIO_BY_KEY = {s.key: s for s in ALL_SCENARIOS}

__all__ = [
    "ALL_SCENARIOS",
    "EDGE_CASES",
    "NO_ACCOUNT",
    "SCENARIOS",
    "SCENARIO_BY_KEY",
    "Message",
    "Scenario",
]
