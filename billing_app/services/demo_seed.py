"""Moved to ``billing_app.demo.seed`` (issue 13). A shim for the importers other helpers own
(bench, tests/browser, tests/fuzz, context_support, test_panel_api, test_mirror_bulk,
test_sandbox_provider): the lead removes it once they import ``billing_app.demo.seed``.
"""

from billing_app.demo.seed import (
    ACME,
    DEMO_WORKSPACE_SLUG,
    SEEDED_CUSTOMERS,
    WORKSPACE_SLUG,
    DemoSeeder,
    SeededCustomer,
    SeedSummary,
    demo_seed,
)

_Seeder = DemoSeeder  # bench/* and test_mirror_bulk: ``_Seeder(as_of).build()``

__all__ = [
    "ACME",
    "DEMO_WORKSPACE_SLUG",
    "SEEDED_CUSTOMERS",
    "WORKSPACE_SLUG",
    "DemoSeeder",
    "SeedSummary",
    "SeededCustomer",
    "_Seeder",
    "demo_seed",
]
