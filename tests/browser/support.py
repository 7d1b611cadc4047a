"""Helpers shared by the browser tests."""

from __future__ import annotations

from billing_app.catalog import Role
from billing_app.services.identity import AgentContext, agent_sign_in, app_session_resolve
from helpdesk_connectors import sessions
from helpdesk_connectors.base import HelpdeskIdentity
from helpdesk_connectors.demo.connector import demo_agent
from helpdesk_connectors.models import Installation


def demo_sign_in(workspace, role: Role) -> tuple[AgentContext, sessions.MintedSession]:
    """The demo agent of ``role``, signed in as the demo connector signs them in."""
    installation = Installation.objects.get(connector="demo", workspace_link__workspace=workspace)
    identity = HelpdeskIdentity(installation=installation, agent=demo_agent(role.value))
    _membership, minted = agent_sign_in(identity=identity, workspace=workspace, role_override=role)
    _user, context = app_session_resolve(
        claims=sessions.verify(minted.token), installation=installation
    )
    return context, minted


def demo_context(workspace, role: Role) -> AgentContext:
    return demo_sign_in(workspace, role)[0]


# Every state a ticket can open in: the billing context, the picker (several customers),
# the empty state (none) or the error banner.
PANEL_READY = (
    "[data-testid=section-account], [data-testid=customer-picker], "
    "[data-testid=empty-state], [data-testid=error-banner]"
)


def panel_settle(page, server_activity) -> None:
    """Waits until the panel shows no skeleton and the live server has answered all it was asked.

    The panel keeps asking after its first screen (investigation cards, history pages); a
    measurement or a screenshot waits for the server to have been idle for three polls.
    """
    from playwright.sync_api import expect

    panel = page.frame_locator("#panel-frame")
    expect(panel.locator(".bd-skel")).to_have_count(0)
    quiet = 0
    for _ in range(200):
        quiet = quiet + 1 if server_activity() <= 0 else 0
        if quiet >= 3:
            break
        page.wait_for_timeout(25)
    expect(panel.locator(".bd-skel")).to_have_count(0)


def demo_ticket_open(page, server_activity, *, role: str, scenario: str) -> None:
    """The demo page on ``scenario``'s ticket as ``role``, once the panel has settled."""
    from playwright.sync_api import expect

    page.goto(f"/demo/?role={role}&scenario={scenario}")
    expect(page.frame_locator("#panel-frame").locator(PANEL_READY).first).to_be_visible()
    panel_settle(page, server_activity)
