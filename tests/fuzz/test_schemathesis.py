"""Every endpoint of the OpenAPI schema, fuzzed by schemathesis with a real app session.

Opt-in: ``BILLING_DESK_FUZZ=1`` (``make fuzz``); plain ``make test`` skips it. Each
operation of ``/api/schema/`` gets ``BILLING_DESK_FUZZ_EXAMPLES`` generated requests
(default 60: about 1,500 requests over the API), sent through the WSGI app with a
Manager's bearer token in the seeded demo workspace, and every answer must be
no server error (``not_a_server_error``) and must match the schema
(``response_schema_conformance``, ``content_type_conformance``). Hypothesis keeps
no example database (``database=None``): every run starts fresh.
"""

from __future__ import annotations

import json
import os

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from .conftest import REQUESTS  # noqa: E402

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.skipif(
        os.environ.get("BILLING_DESK_FUZZ") != "1",
        reason="fuzzing is opt-in: BILLING_DESK_FUZZ=1 (make fuzz)",
    ),
]

EXAMPLES = int(os.environ.get("BILLING_DESK_FUZZ_EXAMPLES", "60"))
# Seeded demo customers: half the generated customer ids are replaced by one of these.
KNOWN_CUSTOMERS = ["cus_sbx_acme", "cus_sbx_northwind", "cus_sbx_globex", "cus_sbx_hooli"]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def api_schema():
    """The schema ``/api/schema/`` serves, bound to the WSGI app (requests never leave the process)."""
    from drf_spectacular.generators import SchemaGenerator

    from billing_app.wsgi import application

    spec = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.app = application
    return loaded


@pytest.fixture
def wsgi_in_test_transaction():
    """Calls go through Django's WSGI handler, which closes the connection after each
    request; like Django's test client, keep it open (the test's transaction lives on it)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def manager_token(db, settings, wsgi_in_test_transaction):
    from billing_app.catalog import Role
    from billing_app.demo.seed import demo_seed
    from billing_app.services.identity import agent_sign_in
    from helpdesk_connectors.base import AgentProfile, HelpdeskIdentity

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed = demo_seed()
    link = seed.workspace.installation_links.select_related("installation").first()
    identity = HelpdeskIdentity(
        installation=link.installation,
        agent=AgentProfile(
            agent_id="fuzz-1",
            name="Fuzz Manager",
            email="fuzz@agents.example",
            helpdesk_role="agent",
        ),
    )
    _, minted = agent_sign_in(
        identity=identity, workspace=seed.workspace, role_override=Role.MANAGER
    )
    return minted.token


def test_every_endpoint_answers_within_its_schema_and_never_500(manager_token):
    headers = {"Authorization": f"Bearer {manager_token}"}
    failures: dict[str, str] = {}
    operations = []
    for result in api_schema().get_all_operations():
        operation = result.ok()
        operations.append(operation.label)

        @given(case=operation.as_strategy(), known=st.sampled_from([None, *KNOWN_CUSTOMERS]))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=os.environ.get("BILLING_DESK_FUZZ_DERANDOMIZE") == "1",
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case, known):
            if known and "customer_id" in (case.path_parameters or {}):
                case.path_parameters["customer_id"] = known  # reach past the 404 too
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            REQUESTS["sent"] += 1
            status = response.status_code
            REQUESTS["by_status"][status] = REQUESTS["by_status"].get(status, 0) + 1

        try:
            fuzz()
        except Exception as exc:  # every operation is fuzzed; all failures are reported
            failures[operation.label] = str(exc)[:4000]
    assert operations, "the schema lists no operation"
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
