"""The contract covers the whole provider interface: a method added to ``BillingProvider``
without a contract case fails here, so the suite grows with the interface."""

from __future__ import annotations

import re
from pathlib import Path

from billing_app.providers.base import BillingProvider


def test_every_interface_method_is_exercised_by_the_contract():
    here = Path(__file__).parent
    sources = "\n".join(
        p.read_text()
        for p in [*here.glob("test_*.py"), here / "conftest.py"]
        if p.name != Path(__file__).name
    )
    methods = {
        name
        for name, value in vars(BillingProvider).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, classmethod))
    }
    missing = sorted(m for m in methods if not re.search(rf"\.{m}\(", sources))
    assert missing == [], f"no contract case calls {missing}"
