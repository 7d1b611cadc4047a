"""The demo's sandbox customers, one module per customer (Stark's two accounts share one).

Each module holds its ``CUSTOMER_IDS``, its ticket on the demo page (``TICKET``) and
``build(objects)``, which adds its Stripe-shaped history to a ``DemoObjects``. The
order here is the order they are built and mirrored.
"""

from __future__ import annotations

from ..builders import DemoObjects
from . import (
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

CUSTOMER_MODULES = (
    acme,
    northwind,
    globex,
    initech,
    umbrella,
    hooli,
    vandelay,
    wayne,
    sakura,
    stark,
    piedpiper,
    soylent,
)
SEEDED_CUSTOMERS: tuple[str, ...] = tuple(
    customer_id for module in CUSTOMER_MODULES for customer_id in module.CUSTOMER_IDS
)


def customers_build(objects: DemoObjects) -> None:
    """Every demo customer's objects, added to ``objects`` in the order above."""
    for module in CUSTOMER_MODULES:
        module.build(objects)


__all__ = ["CUSTOMER_MODULES", "SEEDED_CUSTOMERS", "customers_build"]
