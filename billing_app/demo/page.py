"""``GET /demo/``: a helpdesk-like ticket view with the Billing Desk panel framed beside it.

Demo mode only (404 otherwise). The page shows one ticket per playbook scenario,
whose requester is one of the sandbox customers ``seed_demo`` creates, and a
switcher for the four agent roles. Its script (``static/demo/host.js``) mints a
demo app session through ``POST /demo/session/`` and opens the panel with
``POST /demo/panel/`` inside the frame — the same way the Freshdesk app frame does
— then plays the helpdesk's part of the panel's postMessage protocol (ticket
context, frame height, public reply into the editor, session renewal).

The agent's language (issue 16): the demo has no helpdesk profile to read it from, so the
page's language switcher (``?lang=de``) stands in for it — it is kept in Django's
language cookie, which the host's session request sends, and the demo connector signs
the demo agent in with the request's language (``helpdesk_connectors.demo``): the panel,
its API answers and its notes are then in that language, as for a German-speaking
Zendesk agent. Without a choice, the browser's ``Accept-Language`` decides.

A web view (the top layer): it reads the seed's workspace slug and the tickets.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from helpdesk_connectors.demo.connector import DEMO_ROLES, demo_agent, demo_enabled
from helpdesk_connectors.models import DemoTicketComment, Installation
from helpdesk_connectors.wire import error_body

from ..locales import language_normalise, language_or_default
from ..models import Workspace
from .seed import DEMO_WORKSPACE_SLUG
from .tickets import EDGE_CASES, SCENARIO_BY_KEY, SCENARIOS

# The demo pages load only our own static files; the panel frame is this origin.
DEMO_HOST_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
)


def demo_workspace() -> Workspace | None:
    """The workspace the demo runs on: the seeded one, else any with a demo installation."""
    links = Workspace.objects.filter(
        is_active=True,
        installation_links__installation__connector=Installation.Connector.DEMO,
        installation_links__installation__is_active=True,
    ).order_by("pk")
    return links.filter(slug=DEMO_WORKSPACE_SLUG).first() or links.first()


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
    # The language switcher's choice, else what LocaleMiddleware chose (cookie, browser).
    chosen = language_normalise(request.GET.get("lang", ""))
    lang = chosen or language_or_default(translation.get_language())
    context = {
        "lang": lang,
        "languages": list(settings.LANGUAGES),
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
    with translation.override(lang):
        response = render(request, "demo/host.html", context, status=status)
    response["Content-Language"] = lang
    if chosen:
        # The host's session request carries it: the demo agent speaks this language.
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            chosen,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            samesite="Lax",
            secure=request.is_secure(),
            httponly=True,
        )
    response["Content-Security-Policy"] = DEMO_HOST_CSP
    if workspace is None:
        # A browser keeps this page; any other client gets the same advice as the envelope.
        response.error_envelope = error_body(  # type: ignore[attr-defined]
            "demo_not_seeded",
            "The demo has no sandbox data yet: run `python manage.py seed_demo` (or `make demo`).",
        )
    return response
