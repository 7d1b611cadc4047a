"""The demo, in one place: the sandbox seed, the dashboard history and the demo page.

* ``seed`` — ``demo_seed``: the sandbox workspace, its demo installation, the admin
  user and the customers (a service; the ``seed_demo`` command calls it).
* ``customers/`` — one module per demo customer: its Stripe-shaped history
  (``build``) and its ticket on the demo page (``TICKET``).
* ``catalog`` and ``builders`` — the products and prices every customer buys, and
  the shared builders of cards, items, paid invoices and monthly runs.
* ``history/`` — ``demo_history_seed``: months of dashboard history.
* ``page`` and ``tickets`` — ``GET /demo/`` (a web view) and the tickets it shows.

Layers: the page may import the seed; the seed and the history call services;
nothing below (services, selectors, providers) imports this package. This module
imports nothing, so importing one part does not load the others.
"""
