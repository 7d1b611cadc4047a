"""Opt-in fuzzing (``BILLING_DESK_FUZZ=1``): the ``fuzz`` marker and a request count at the end."""

from __future__ import annotations

REQUESTS = {"sent": 0, "by_status": {}}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fuzz: schema-driven fuzzing with schemathesis (BILLING_DESK_FUZZ=1 to run)"
    )


def pytest_terminal_summary(terminalreporter):
    if REQUESTS["sent"]:
        by_status = ", ".join(f"{k}: {v}" for k, v in sorted(REQUESTS["by_status"].items()))
        terminalreporter.write_line(
            f"schemathesis: {REQUESTS['sent']} generated requests ({by_status})"
        )
