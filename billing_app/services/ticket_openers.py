"""Which of a workspace's helpdesk installations can open a ticket, in the order to try them.

One answer for every path that opens tickets: the CSM outreach of a payment-failure
escalation (``payment_failures.escalation``) and a customer's ticket
(``customer_tickets``). The workspace's active installations in the order they were
linked, the preferred one (the ticket's own installation, the one a refund link was sent
from) first, each with its connector when that connector opens tickets
(``FEATURE_CREATE_TICKET``); an unregistered connector is left out.
"""

from __future__ import annotations

from helpdesk_connectors.base import FEATURE_CREATE_TICKET, HelpdeskConnector, NotRegistered
from helpdesk_connectors.models import Installation
from helpdesk_connectors.registry import connector_for

from ..models import Workspace


def ticket_openers(
    workspace: Workspace, *, preferred_id: int | None = None
) -> list[tuple[Installation, HelpdeskConnector]]:
    """``(installation, connector)`` for each active installation that can open tickets."""
    found = [
        link.installation
        for link in workspace.installation_links.select_related("installation").order_by("pk")
        if link.installation.is_active
    ]
    if preferred_id is not None:
        found.sort(key=lambda i: i.pk != preferred_id)
    openers = []
    for installation in found:
        try:
            connector = connector_for(installation)
        except NotRegistered:
            continue
        if FEATURE_CREATE_TICKET in connector.features:
            openers.append((installation, connector))
    return openers
