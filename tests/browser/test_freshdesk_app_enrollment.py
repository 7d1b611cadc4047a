"""The Freshdesk app frame enrolls an agent's browser once (issue 17), in Chromium.

The built app frame runs with a fake FDK client whose request templates answer like Billing
Desk: ``createSession`` refuses without this agent's device credential
(``device_enrollment_required``, or ``device_credential_revoked`` once revoked);
``startEnrollment`` "emails" code 246810 and answers the masked address; ``verifyEnrollment``
answers a credential for that code. Time is Playwright's fake clock; nothing touches the
network.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import pytest

from .test_freshdesk_app_sessions import APP_FRAME, BILLING_DESK, PANEL_PAGE, START, app_files

__all__ = ["app_files"]

CODE = "246810"

FAKE_CLIENT = """
(function () {
  if (window.location.search.indexOf("blocked=1") >= 0) {
    // a browser that blocks third-party storage: localStorage throws in the app frame
    Object.defineProperty(window, "localStorage", {
      get: function () { throw new DOMException("blocked", "SecurityError"); }
    });
  }
  var fake = window.__fake = {
    calls: [], bodies: [], handlers: {}, issued: {}, revoked: {}, minted: 0, ready: 0,
    user: { id: 101, contact: { language: "en" } }, ticketId: 1, domain: "acme.freshdesk.com",
    activate: function () { return Promise.resolve(fake.handlers["app.activated"]()); }
  };
  window.addEventListener("message", function (event) {
    if (event.origin === "%(origin)s" && event.data && event.data.type === "billing-desk:ready") {
      fake.ready += 1;
      document.body.setAttribute("data-ready", String(fake.ready));
    }
  });
  function refuse(code, details) {
    return Promise.reject({ status: 401, response: JSON.stringify(
      { error: { code: code, message: code, details: details || {} } }) });
  }
  var client = {
    data: { get: function (name) {
      var values = {
        loggedInUser: fake.user,
        ticket: { id: fake.ticketId, subject: "Refund please", tags: ["billing"] },
        requester: { email: "ap@acme.example" },
        domainName: fake.domain
      };
      var answer = {}; answer[name] = values[name];
      return Promise.resolve(answer);
    } },
    request: { invokeTemplate: function (name, options) {
      var body = JSON.parse(options.body);
      fake.calls.push(name);
      fake.bodies.push(body);
      document.body.setAttribute("data-calls", fake.calls.join(","));
      if (name === "startEnrollment") {
        return Promise.resolve({ status: 200, response: JSON.stringify(
          { enrollment: "attempt-" + body.agent_id, email: "m\u2022\u2022\u2022@acme.example", expires_in: 600 }) });
      }
      if (name === "verifyEnrollment") {
        if (body.enrollment !== "attempt-" + body.agent_id) return refuse("enrollment_unknown");
        if (body.code !== "%(code)s") return refuse("code_wrong", { attempts_left: 4 });
        var credential = "dc-" + body.agent_id + "-" + (Object.keys(fake.issued).length + 1);
        fake.issued[credential] = String(body.agent_id);
        return Promise.resolve({ status: 200, response: JSON.stringify(
          { device_credential: credential, expires_at: "2026-04-05T08:00:00+00:00" }) });
      }
      var owner = fake.issued[body.device_credential];
      if (!body.device_credential) return refuse("device_enrollment_required");
      if (owner !== String(body.agent_id)) return refuse("device_credential_mismatch");
      if (fake.revoked[body.device_credential]) return refuse("device_credential_revoked");
      fake.minted += 1;
      return Promise.resolve({ status: 200, response: JSON.stringify({
        token: "tok-" + fake.minted, expires_in: 900,
        expires_at: new Date(Date.now() + 900000).toISOString() }) });
    } },
    events: { on: function (name, handler) { fake.handlers[name] = handler; } },
    instance: { resize: function () { return Promise.resolve(); } },
    interface: { trigger: function () { return Promise.resolve(); } }
  };
  window.app = { initialized: function () { return Promise.resolve(client); } };
})();
""".replace("%(origin)s", BILLING_DESK).replace("%(code)s", CODE)


@pytest.fixture
def page(browser, app_files):
    context = browser.new_context()
    page = context.new_page()
    page.clock.install(time=START)
    page.panel_posts = []

    def serve(route):
        url = route.request.url
        if url.startswith(BILLING_DESK) and url.endswith("/freshdesk/panel/"):
            fields = parse_qs(route.request.post_data or "")
            page.panel_posts.append({k: v[0] for k, v in fields.items()})
            return route.fulfill(status=200, content_type="text/html", body=PANEL_PAGE)
        if url == APP_FRAME + "fake-client.js":
            return route.fulfill(status=200, content_type="text/javascript", body=FAKE_CLIENT)
        if url.startswith(APP_FRAME):
            name = url.removeprefix(APP_FRAME).split("?")[0]
            body = app_files.get(name)
            if body is None:
                return route.fulfill(status=404, body="")
            if name == "index.html":
                body = body.replace(b"{{{appclient}}}", b"fake-client.js")
            kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
            return route.fulfill(
                status=200,
                content_type=kind.get(name.rsplit(".", 1)[-1], "image/svg+xml"),
                body=body,
            )
        return route.abort()

    page.route("**/*", serve)
    page.goto(APP_FRAME + "index.html")
    page.wait_for_function("Boolean(window.__fake && window.__fake.handlers['app.activated'])")
    page.clock.pause_at(START + timedelta(seconds=1))
    yield page
    context.close()


def _calls(page) -> list[str]:
    return page.evaluate("window.__fake.calls")


def _enroll(page, code=CODE):
    from playwright.sync_api import expect

    expect(page.locator("#enroll")).to_be_visible()
    page.locator("#enroll-send").click()
    expect(page.locator("#enroll-intro")).to_contain_text("m•••@acme.example")
    page.locator("#enroll-code").fill(code)
    page.locator("#enroll-confirm").click()


def test_first_visit_enrolls_the_browser_then_opens_the_panel(page):
    from playwright.sync_api import expect

    # the agent opens a ticket on a browser Billing Desk does not know yet
    page.evaluate("window.__fake.activate()")

    # then the frame shows the code form instead of the panel; nothing was sent yet
    expect(page.locator("#enroll-intro")).to_contain_text("does not know this browser")
    assert _calls(page) == ["createSession"]
    assert page.locator("#panel").is_hidden()

    # when the agent asks for a code and types it
    _enroll(page)

    # then the credential is kept for this agent and sent with the session call: the panel loads
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    assert _calls(page) == ["createSession", "startEnrollment", "verifyEnrollment", "createSession"]
    start_body = page.evaluate("window.__fake.bodies[1]")
    # the frame names no address; its browser label goes along for the server's log
    assert set(start_body) == {"agent_id", "domain", "device_label"}
    assert (start_body["agent_id"], start_body["domain"]) == (101, "acme.freshdesk.com")
    assert start_body["device_label"] == page.evaluate("navigator.userAgent")[:200]
    assert page.evaluate("window.__fake.bodies[3].device_credential") == "dc-101-1"
    assert page.locator("#enroll").is_hidden()
    assert page.panel_posts[-1]["token"] == "tok-1"
    keys = page.evaluate("Object.keys(window.localStorage).sort()")
    assert "billing-desk:freshdesk-device:acme.freshdesk.com:101" in keys
    assert not any(k.startswith("billing-desk:freshdesk-enrollment:") for k in keys)


def test_a_wrong_code_is_said_and_the_right_one_then_works(page):
    from playwright.sync_api import expect

    page.evaluate("window.__fake.activate()")
    _enroll(page, code="111111")
    expect(page.locator("#enroll-message")).to_have_text("That code is not right. 4 tries left.")
    assert page.locator("#panel").is_hidden()

    page.locator("#enroll-code").fill(CODE)
    page.locator("#enroll-confirm").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "1")


def test_a_code_that_is_not_six_digits_is_not_sent(page):
    from playwright.sync_api import expect

    page.evaluate("window.__fake.activate()")
    _enroll(page, code="12a")
    expect(page.locator("#enroll-message")).to_have_text("Type the six-digit code from the email.")
    assert "verifyEnrollment" not in _calls(page)


def test_a_revoked_credential_is_dropped_and_the_browser_enrolled_again(page):
    from playwright.sync_api import expect

    page.evaluate("window.__fake.activate()")
    _enroll(page)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")

    # an admin revokes it; the agent closes the app and comes back after the session ended
    page.evaluate(
        """() => { window.__fake.revoked["dc-101-1"] = true; window.__fake.handlers["app.deactivated"](); }"""
    )
    page.clock.run_for(16 * 60 * 1000)
    page.evaluate("window.__fake.ticketId = 2; window.__fake.activate()")

    expect(page.locator("#enroll-intro")).to_contain_text("device_credential_revoked")
    keys = page.evaluate("Object.keys(window.localStorage)")
    assert not any(k.startswith("billing-desk:freshdesk-device:") for k in keys)
    _enroll(page)
    expect(page.locator("body")).to_have_attribute("data-ready", "2")
    assert page.evaluate("window.__fake.bodies.at(-1).device_credential") == "dc-101-2"


def test_another_agent_on_the_same_browser_enrolls_for_themselves(page):
    from playwright.sync_api import expect

    page.evaluate("window.__fake.activate()")
    _enroll(page)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")

    page.evaluate(
        "window.__fake.user = {id: 202, contact: {language: 'de'}}; window.__fake.activate()"
    )

    # agent 202 is never sent agent 101's credential: they enroll, in their language
    expect(page.locator("#enroll-intro")).to_contain_text("kennt diesen Browser noch nicht")
    assert page.evaluate("window.__fake.bodies.at(-1)").get("device_credential") == ""
    expect(page.locator("#enroll-send")).to_have_text("Code senden")


def test_with_storage_blocked_the_credential_serves_this_frame(page):
    from playwright.sync_api import expect

    page.goto(APP_FRAME + "index.html?blocked=1")
    page.wait_for_function("Boolean(window.__fake && window.__fake.handlers['app.activated'])")
    page.evaluate("window.__fake.activate()")
    _enroll(page)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")

    # the session ends; the next ticket in this frame renews it with the credential in memory
    page.evaluate('window.__fake.handlers["app.deactivated"]()')
    page.clock.run_for(16 * 60 * 1000)
    page.evaluate("window.__fake.ticketId = 2; window.__fake.activate()")

    expect(page.locator("body")).to_have_attribute("data-ready", "2")
    assert _calls(page)[-1] == "createSession"
    assert "startEnrollment" not in _calls(page)[3:]
    assert page.evaluate("window.__fake.bodies.at(-1).device_credential") == "dc-101-1"
