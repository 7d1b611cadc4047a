"""``GET /demo/``: a helpdesk-like ticket view with the Billing Desk panel framed beside it.

Demo mode only (404 otherwise). The page shows one ticket per playbook scenario,
whose requester is one of the sandbox customers ``seed_demo`` creates, and a
switcher for the four agent roles. Its script (``static/demo/host.js``) mints a
demo app session through ``POST /demo/session/`` and opens the panel with
``POST /demo/panel/`` inside the frame — the same way the Freshdesk app frame does
— then plays the helpdesk's part of the panel's postMessage protocol (ticket
context, frame height, public reply into the editor, session renewal).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from helpdesk_connectors.demo.connector import DEMO_ROLES, demo_agent, demo_enabled
from helpdesk_connectors.models import DemoTicketComment, Installation
from helpdesk_connectors.wire import error_body

from ..models import Workspace

# The demo pages load only our own static files; the panel frame is this origin.
DEMO_HOST_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Message:
    author: str
    when: str
    body: str
    agent: bool = False


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    number: str
    subject: str
    requester_name: str
    requester_email: str
    organization: str
    tags: tuple[str, ...]
    messages: tuple[Message, ...]


def _ask(name: str, body: str) -> tuple[Message, ...]:
    return (Message(author=name, when="today, 09:12", body=body),)


# Requester emails are the sandbox customers of ``billing_app.services.demo_seed``.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="acme",
        label="Acme Corp — renewal question",
        number="1001",
        subject="Confirming our Enterprise Pro renewal",
        requester_name="Dana Whitfield",
        requester_email="billing@acme.example",
        organization="Acme Corp",
        tags=("billing", "renewal"),
        messages=_ask(
            "Dana Whitfield",
            "Hi team,\n\nWe're planning next quarter's budget. Can you confirm what we'll be "
            "charged at the renewal on the 28th, and whether our three add-ons are included?\n\n"
            "Thanks,\nDana — Acme Corp finance",
        ),
    ),
    Scenario(
        key="failed-payment",
        label="Payment failed (expired card)",
        number="1002",
        subject="My payment failed",
        requester_name="Priya Nair",
        requester_email="ap@northwind.example",
        organization="Northwind Traders",
        tags=("billing", "payment_failed"),
        messages=_ask(
            "Priya Nair",
            "Hello, we got an email saying this month's payment failed. I think the card on "
            "file expired. How do I fix this without losing access?",
        ),
    ),
    Scenario(
        key="duplicate-charge",
        label="Charged twice",
        number="1003",
        subject="I was charged twice",
        requester_name="Marco Rossi",
        requester_email="finance@globex.example",
        organization="Globex",
        tags=("billing", "duplicate_charge"),
        messages=_ask(
            "Marco Rossi",
            "Our card statement shows two identical charges from you yesterday. "
            "Please refund the second one.",
        ),
    ),
    Scenario(
        key="overcharge",
        label="Invoice higher than usual",
        number="1004",
        subject="Why is this invoice so much higher?",
        requester_name="Lena Fischer",
        requester_email="accounts@initech.example",
        organization="Initech",
        tags=("billing", "overcharge"),
        messages=_ask(
            "Lena Fischer",
            "Our latest invoice is higher than our plan price. Nobody here remembers changing "
            "anything. Can you explain the charge?",
        ),
    ),
    Scenario(
        key="trialing",
        label="Trial extension request",
        number="1005",
        subject="Could we get a few more trial days?",
        requester_name="Sam Okafor",
        requester_email="sam@umbrella.example",
        organization="Umbrella Labs",
        tags=("billing", "trial"),
        messages=_ask(
            "Sam Okafor",
            "We're still evaluating with two teams and our trial ends soon. "
            "Could you extend it by a week?",
        ),
    ),
    Scenario(
        key="tax-invoice",
        label="Tax invoice request",
        number="1006",
        subject="We need a tax invoice with our VAT number",
        requester_name="Jonas Weber",
        requester_email="buchhaltung@hooli.example",
        organization="Hooli GmbH",
        tags=("billing", "tax_invoice"),
        messages=_ask(
            "Jonas Weber",
            "Guten Tag, for our accounting we need last month's invoice as a proper tax "
            "invoice showing our VAT number DE123456789 and our Berlin address.",
        ),
    ),
    Scenario(
        key="refund-request",
        label="Refund request",
        number="1007",
        subject="Requesting a refund",
        requester_name="Alex Chen",
        requester_email="alex@vandelay.example",
        organization="Vandelay Industries",
        tags=("billing", "refund"),
        messages=_ask(
            "Alex Chen",
            "We signed up for the annual plan by mistake — we only needed one month. "
            "Can we get a refund for the difference?",
        ),
    ),
)
# The reading edge cases of DESIGN.md section 10, as tickets too.
EDGE_CASES: tuple[Scenario, ...] = (
    Scenario(
        key="refund-pattern",
        label="Refund pattern (Manager review)",
        number="1008",
        subject="Another refund, please",
        requester_name="Bruce Kane",
        requester_email="ops@wayne-services.example",
        organization="Wayne Services",
        tags=("billing", "refund"),
        messages=_ask(
            "Bruce Kane",
            "The service was down again last week. Please refund this month's charge too.",
        ),
    ),
    Scenario(
        key="jpy",
        label="Yen customer (zero-decimal currency)",
        number="1009",
        subject="請求書について / About our invoice",
        requester_name="Yuki Tanaka",
        requester_email="keiri@sakura-trading.example",
        organization="Sakura Trading KK",
        tags=("billing",),
        messages=_ask(
            "Yuki Tanaka",
            "Hello, could you tell us the amount and date of our next invoice? "
            "We were also promised a small credit for the onboarding delay.",
        ),
    ),
    Scenario(
        key="several-matches",
        label="Two accounts on one email",
        number="1010",
        subject="Which account am I paying for?",
        requester_name="Pepper Potts",
        requester_email="billing@stark.example",
        organization="",
        tags=("billing",),
        messages=_ask(
            "Pepper Potts",
            "We have two companies with you and both use this email. "
            "Can you check the payment method on the active one?",
        ),
    ),
    Scenario(
        key="no-account",
        label="Requester with no billing account",
        number="1011",
        subject="Pricing question",
        requester_name="Jordan Lee",
        requester_email="jordan.lee@example.org",
        organization="",
        tags=("billing", "presales"),
        messages=_ask(
            "Jordan Lee",
            "Hi! I'm paying with my company's account but I don't know which email it's "
            "under. How much is the Enterprise Pro plan per seat?",
        ),
    ),
)
ALL_SCENARIOS = SCENARIOS + EDGE_CASES
SCENARIO_BY_KEY = {s.key: s for s in ALL_SCENARIOS}


def demo_workspace() -> Workspace | None:
    """The workspace the demo runs on: the seeded one, else any with a demo installation."""
    try:
        from ..services.demo_seed import DEMO_WORKSPACE_SLUG as seeded
    except ImportError:
        seeded = ""
    links = Workspace.objects.filter(
        is_active=True,
        installation_links__installation__connector=Installation.Connector.DEMO,
        installation_links__installation__is_active=True,
    ).order_by("pk")
    return (seeded and links.filter(slug=seeded).first()) or links.first()


@require_GET
@never_cache
def demo_host(request: HttpRequest) -> HttpResponse:
    if not demo_enabled():
        raise Http404("The demo is not enabled.")
    role = request.GET.get("role", "l1")
    if role not in DEMO_ROLES:
        role = "l1"
    scenario = SCENARIO_BY_KEY.get(request.GET.get("scenario", ""), SCENARIOS[0])
    workspace = demo_workspace()
    notes = []
    if workspace is not None:
        installation = Installation.objects.filter(
            connector=Installation.Connector.DEMO, workspace_link__workspace=workspace
        ).first()
        notes = list(
            DemoTicketComment.objects.filter(installation=installation, ticket_id=scenario.number)
        )
    context = {
        "ticket": scenario,
        "scenarios": SCENARIOS,
        "edge_cases": EDGE_CASES,
        "role": role,
        "roles": list(DEMO_ROLES.items()),
        "role_label": DEMO_ROLES[role],
        "agent_name": demo_agent(role).name,
        "workspace": workspace,
        "notes": notes,
    }
    status = 200 if workspace is not None else 503
    response = render(request, "demo/host.html", context, status=status)
    response["Content-Security-Policy"] = DEMO_HOST_CSP
    if workspace is None:
        # A browser keeps this page; any other client gets the same advice as the envelope.
        response.error_envelope = error_body(  # type: ignore[attr-defined]
            "demo_not_seeded",
            "The demo has no sandbox data yet: run `python manage.py seed_demo` (or `make demo`).",
        )
    return response
