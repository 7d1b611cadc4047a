"""Sandbox invoice numbers: ``PREFIX-NNNN``, unique per prefix and rising, like Stripe's.

The demo seeds each customer's past invoices (``NWT-0001`` … ``NWT-0007``) without moving
the customer's ``next_invoice_sequence``; the sandbox used to number its next invoice from
that sequence and issued ``NWT-0001`` a second time.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from billing_app.demo.seed import demo_seed
from billing_app.models import MirrorCustomer, MirrorInvoice
from billing_app.providers.sandbox.provider import SandboxProvider, sandbox_advance

from ..context_support import forget_provider_health

AS_OF = datetime(2026, 1, 15, 12, tzinfo=UTC)
NUMBER = re.compile(r"^([A-Z]+)-([0-9]{4,})$")


@pytest.fixture
def seeded(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield demo_seed(as_of=AS_OF)
    forget_provider_health()


def _numbers(workspace) -> list[str]:
    return list(
        MirrorInvoice.objects.filter(workspace=workspace)
        .exclude(number="")
        .values_list("number", flat=True)
    )


def test_renewals_never_reuse_a_seeded_invoice_number(seeded):
    workspace = seeded.workspace
    before = _numbers(workspace)
    highest: dict[str, int] = {}
    for number in before:
        if match := NUMBER.match(number):
            prefix, seq = match.group(1), int(match.group(2))
            highest[prefix] = max(highest.get(prefix, 0), seq)
    assert highest["NWT"] >= 7  # Northwind's seeded history

    # when a month passes and every monthly subscription renews
    sandbox_advance(workspace=workspace, to=AS_OF + timedelta(days=32))

    # then every new invoice has a number of its customer's prefix, above the ones the
    # prefix already had, and no number appears twice
    new = [n for n in _numbers(workspace) if n not in before]
    assert new, "the renewals issued invoices"
    for number in new:
        match = NUMBER.match(number)
        assert match, number
        assert int(match.group(2)) > highest.get(match.group(1), 0), number
    duplicates = [n for n, count in Counter(_numbers(workspace)).items() if count > 1]
    assert duplicates == []


def test_numbers_rise_one_by_one_and_the_customer_sequence_moves_past_them(seeded):
    workspace = seeded.workspace
    sandbox = SandboxProvider(workspace)
    customer = dict(
        MirrorCustomer.objects.get(workspace=workspace, stripe_id="cus_sbx_northwind").data
    )

    first = sandbox._next_number(customer)
    second = sandbox._next_number(customer)

    assert (first, second) == ("NWT-0008", "NWT-0009")
    assert customer["next_invoice_sequence"] == 10
