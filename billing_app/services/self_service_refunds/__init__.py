"""Self-service refund requests (issue 18, docs/self-service.md section 2).

- ``links``: the signed, expiring link a customer receives (``refund_link_create``).
- ``requests``: what the customer's page submits — one request per (link, charge), run
  through the agents' own ``action_submit`` under a self-service context.
- ``status``: the request's outcome as the customer reads it, and the approval hooks.

Import from the submodules (this package imports none of them, so ``customer_tickets``
and the request path can import each other's modules without a cycle).
"""
