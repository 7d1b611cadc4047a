"""Self-service refund requests (issue 18, docs/self-service.md section 2).

- ``services.refund_links`` (a sibling, so ``customer_tickets`` can hand it to the widget):
  the signed, expiring link a customer receives (``refund_link_create``).
- ``requests``: what the customer's page submits — one request per (link, charge), run
  through the agents' own ``action_submit`` under a self-service context.
- ``status``: the request's outcome as the customer reads it, and the approval hooks.

Import from the submodules (this package's ``__init__`` imports none of them).
"""
