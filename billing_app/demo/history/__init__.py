"""The demo workspace's dashboard history (``demo_history_seed``): months of tickets,
actions, approvals, provider calls, webhook events and mirrored payments.

``seed`` is the entry; ``profile`` the shapes it draws from; ``writer`` collects and
bulk-writes the rows; ``actions`` the billing actions and approvals; ``subscriptions``
what plan changes, seat changes and discounts act on (and their MRR change);
``payments`` the mirrored renewals and failed payments.
"""

from __future__ import annotations

from .profile import MARKER
from .seed import DemoHistory, demo_history_seed

__all__ = ["MARKER", "DemoHistory", "demo_history_seed"]
