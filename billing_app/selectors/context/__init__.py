"""The billing context: everything the panel shows about one customer, read from the mirror.

``customer_context`` returns the JSON shape of ``docs/api.md``. It never calls the
billing provider and costs a bounded number of queries whatever the length of the
customer's history (about ten; see ``tests/billing_app/test_context.py``).

The package follows the context's seams; each module's docstring says how its
figures are computed:

* ``facts`` — ``customer_facts_load``: every mirror and Billing Desk row the context
  reads, loaded once into ``CustomerFacts``;
* ``products`` — product names and add-on flags, items read through the rulebook
  (``billing_app.subscriptions``);
* ``subscription`` — the primary subscription, each subscription's block, the next invoice;
* ``lifetime`` — revenue, months active, MRR and ARR;
* ``payment`` — the payment method, the last payment, the credits;
* ``churn`` — churn risk, a pure function of the facts;
* ``alerts`` — failed payments, duplicate charges, approvals, monitoring, provider down;
* ``actions`` — approvals pending and recent actions;
* ``compose`` — ``customer_context``, which puts the blocks together.
"""

from __future__ import annotations

from .compose import customer_context
from .facts import CustomerFacts, customer_facts_load
from .products import Catalog, interval_text, sub_items
from .subscription import primary_subscription

__all__ = [
    "Catalog",
    "CustomerFacts",
    "customer_context",
    "customer_facts_load",
    "interval_text",
    "primary_subscription",
    "sub_items",
]
