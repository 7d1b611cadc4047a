"""The Freshdesk app frame keeps one session per agent: proxy calls stay far below FDK's limit.

Freshworks' request proxy allows 50 requests per minute per app per account ("Use request
method to place secure HTTP calls", FDK v3.0). The built app frame (index.html + app.js of
the archive ``build_freshdesk_package`` writes) runs in Chromium with a fake FDK client:
``client.request.invokeTemplate`` answers a session like /freshdesk/session/ does and counts
the calls. Time is Playwright's fake clock (paused; moved only by ``clock.run_for``), the
app frame's origin and the Billing Desk panel are served by ``page.route``: nothing touches
the network and nothing waits on the wall clock.
"""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from helpdesk_connectors.packaging.freshdesk import build_freshdesk_package

BILLING_DESK = "https://billing.acme-corp.com"
APP_FRAME = "https://d3h0owdjgzys62.cloudfront.net/app-assets/billing-desk/app/"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
SECOND = 1000
MINUTE = 60 * SECOND

# The FDK app client as the frame sees it: data methods, events, resize, and the request
# method answering like Billing Desk's /freshdesk/session/ (a 900 s session per call).
FAKE_CLIENT = """
(function () {
  if (window.location.search.indexOf("blocked=1") >= 0) {
    // a browser that blocks third-party storage: localStorage throws in the app frame
    Object.defineProperty(window, "localStorage", {
      get: function () { throw new DOMException("blocked", "SecurityError"); }
    });
  }
  if (window.location.search.indexOf("quota=1") >= 0) {
    // storage that reads, but is full: every write throws QuotaExceededError
    Storage.prototype.setItem = function () { throw new DOMException("full", "QuotaExceededError"); };
  }
  var fake = window.__fake = {
    calls: 0, minted: 0, fail: null, ready: 0, handlers: {}, bodies: [],
    user: { id: 101, contact: { language: "en" } },
    ticketId: 1, domain: "acme.freshdesk.com",
    activate: function () { return Promise.resolve(fake.handlers["app.activated"]()); },
    deactivate: function () { if (fake.handlers["app.deactivated"]) fake.handlers["app.deactivated"](); }
  };
  window.addEventListener("message", function (event) {
    if (event.origin === "%(origin)s" && event.data && event.data.type === "billing-desk:ready") {
      fake.ready += 1;
      document.body.setAttribute("data-ready", String(fake.ready));
    }
  });
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
    iparams: { get: function () { return Promise.reject(new Error("secure iparams stay with the proxy")); } },
    request: { invokeTemplate: function (name, options) {
      fake.calls += 1;
      document.body.setAttribute("data-calls", String(fake.calls));
      fake.bodies.push(JSON.parse(options.body));
      if (fake.fail) return Promise.reject(fake.fail);
      fake.minted += 1;
      var body = JSON.parse(options.body);
      return Promise.resolve({ status: 200, response: JSON.stringify({
        token: "tok-" + fake.minted + "-agent-" + body.agent_id,
        expires_at: new Date(Date.now() + (fake.ttl || 900) * 1000).toISOString(),
        expires_in: fake.ttl || 900
      }) });
    } },
    events: { on: function (name, handler) {
      fake.handlers[name] = handler;
      document.body.setAttribute("data-" + name.replace(".", "-"), "on");
    } },
    instance: { resize: function () { return Promise.resolve(); } },
    interface: { trigger: function () { return Promise.resolve(); } }
  };
  window.app = { initialized: function () { return Promise.resolve(client); } };
})();
""".replace("%(origin)s", BILLING_DESK)

# The panel page: says "ready" to its parent and keeps what the parent sends it.
PANEL_PAGE = """<!doctype html><html><body><script>
window.__got = [];
window.addEventListener("message", function (event) { window.__got.push(event.data); });
parent.postMessage({ type: "billing-desk:ready" }, "*");
</script></body></html>"""


@pytest.fixture(scope="module")
def app_files(tmp_path_factory) -> dict[str, bytes]:
    built = build_freshdesk_package(
        public_url=BILLING_DESK, output_dir=tmp_path_factory.mktemp("dist"), version="1.0.0"
    )
    with zipfile.ZipFile(built) as archive:
        return {
            name.removeprefix("app/"): archive.read(name)
            for name in archive.namelist()
            if name.startswith("app/")
        }


class Frame:
    """The app frame in a page, with the panel posts it made."""

    def __init__(self, page):
        self.page = page
        self.panel_posts: list[dict[str, str]] = []
        self.ready = 0

    def fake(self, expression: str):
        return self.page.evaluate(f"window.__fake.{expression}")

    @property
    def calls(self) -> int:
        return self.fake("calls")

    def open_ticket(self, ticket_id: int) -> None:
        """The agent opens a ticket: app.activated, then the panel loads and says ready."""
        from playwright.sync_api import expect

        self.page.evaluate(f"window.__fake.ticketId = {ticket_id}")
        posts = len(self.panel_posts)
        self.page.evaluate("window.__fake.activate()")
        self.ready += 1
        expect(self.page.locator("body")).to_have_attribute("data-ready", str(self.ready))
        assert len(self.panel_posts) == posts + 1
        assert self.panel_posts[-1]["ticket_id"] == str(ticket_id)

    def close(self) -> None:
        self.page.evaluate("window.__fake.deactivate()")

    def stored_keys(self) -> list[str]:
        return self.page.evaluate("Object.keys(window.localStorage).sort()")


@pytest.fixture
def frame(browser, app_files):
    context = browser.new_context()
    page = context.new_page()
    page.clock.install(time=START)
    result = Frame(page)

    def serve(route):
        url = route.request.url
        if url.startswith(BILLING_DESK) and url.endswith("/freshdesk/panel/"):
            assert route.request.method == "POST"
            fields = parse_qs(route.request.post_data or "")
            result.panel_posts.append({k: v[0] for k, v in fields.items()})
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
    yield result
    context.close()


def _token(frame: Frame) -> str:
    return frame.panel_posts[-1]["token"]


def test_an_agent_opening_100_tickets_in_an_hour_makes_a_handful_of_proxy_calls(frame):
    # an agent opens 100 tickets in one hour (one every 36 s); sometimes the app stays open
    # while they read, sometimes they close it before the next ticket
    for ticket in range(1, 101):
        frame.open_ticket(4000 + ticket)
        if ticket % 2:
            frame.page.clock.run_for(36 * SECOND)
            frame.close()
        else:
            frame.close()
            frame.page.clock.run_for(36 * SECOND)

    # 900 s sessions, each renewed two minutes before it ends: 5 calls in the hour, where the
    # proxy allows 50 a minute for the whole account
    assert 4 <= frame.calls <= 5  # an hour needs at least four 15-minute sessions
    assert len(frame.panel_posts) == 100
    assert len({post["token"] for post in frame.panel_posts}) <= frame.calls
    # every call was this agent, on the ticket open at the time
    assert {body["agent_id"] for body in frame.fake("bodies")} == {101}

    # nothing calls the proxy while the app is closed
    calls = frame.calls
    frame.page.clock.run_for(120 * MINUTE)
    assert frame.calls == calls


def test_a_second_agent_on_the_same_browser_gets_a_session_of_their_own(frame):
    frame.open_ticket(5001)
    first = _token(frame)
    frame.close()

    frame.page.evaluate("window.__fake.user = {id: 202, contact: {language: 'en'}}")
    frame.open_ticket(5002)
    second = _token(frame)

    assert frame.calls == 2
    assert first.endswith("-agent-101") and second.endswith("-agent-202")
    assert frame.stored_keys() == [
        "billing-desk:freshdesk-session:acme.freshdesk.com:101",
        "billing-desk:freshdesk-session:acme.freshdesk.com:202",
    ]
    # and each agent keeps using their own
    frame.close()
    frame.page.evaluate("window.__fake.user = {id: 101, contact: {language: 'en'}}")
    frame.open_ticket(5003)
    assert _token(frame) == first
    assert frame.calls == 2


def test_a_session_stored_under_another_agent_is_never_used(frame):
    frame.open_ticket(5001)
    frame.close()
    # a record copied under agent 303's key still names agent 101: it is ignored
    frame.page.evaluate(
        """() => {
          const key = "billing-desk:freshdesk-session:acme.freshdesk.com:";
          localStorage.setItem(key + "303", localStorage.getItem(key + "101"));
          window.__fake.user = {id: 303, contact: {language: "en"}};
        }"""
    )
    frame.open_ticket(5002)
    assert frame.calls == 2
    assert _token(frame).endswith("-agent-303")


def test_an_expired_stored_session_is_renewed_with_one_call(frame):
    frame.open_ticket(6001)
    stale = _token(frame)
    frame.close()
    frame.page.clock.run_for(16 * MINUTE)  # the 15-minute session has ended; the app was closed
    assert frame.calls == 1

    frame.open_ticket(6002)

    assert frame.calls == 2
    assert _token(frame) != stale
    stored = frame.page.evaluate(
        "JSON.parse(localStorage.getItem('billing-desk:freshdesk-session:acme.freshdesk.com:101'))"
    )
    assert stored["token"] == _token(frame)
    assert stored["expires"] == START_MS + SECOND + 16 * MINUTE + 900 * SECOND


def test_the_panel_asking_for_a_session_gets_the_stored_one_or_one_renewal(frame):
    frame.open_ticket(7001)
    assert frame.calls == 1

    # the panel's token was refused (it asks only after a 401): one renewal, sent to the panel
    frame.page.frames[1].evaluate("parent.postMessage({type: 'billing-desk:refresh-session'}, '*')")
    frame.page.wait_for_function("window.__fake.calls === 2")
    renewed = frame.page.evaluate(
        "JSON.parse(localStorage.getItem('billing-desk:freshdesk-session:acme.freshdesk.com:101'))"
    )["token"]
    frame.page.frames[1].wait_for_function(
        f"window.__got.some(m => m.type === 'billing-desk:session' && m.token === '{renewed}')"
    )
    # asked again at once: the renewed session serves, no second call
    frame.page.frames[1].evaluate("parent.postMessage({type: 'billing-desk:refresh-session'}, '*')")
    frame.page.frames[1].wait_for_function(
        "window.__got.filter(m => m.type === 'billing-desk:session').length === 2"
    )
    assert frame.calls == 2


def test_a_session_refused_when_the_panel_loads_is_renewed_once(frame):
    from playwright.sync_api import expect

    frame.open_ticket(8001)
    frame.close()
    # the stored session is revoked on the server (a role change): the panel page that loads
    # with it is an error page that never says "ready"
    frame.page.unroute("**/*")
    posts: list[str] = []

    def refuse_then_serve(route):
        url = route.request.url
        if url.endswith("/freshdesk/panel/"):
            token = parse_qs(route.request.post_data or "")["token"][0]
            posts.append(token)
            if len(posts) == 1:
                return route.fulfill(status=401, content_type="text/html", body="<p>refused</p>")
            return route.fulfill(status=200, content_type="text/html", body=PANEL_PAGE)
        return route.abort()

    frame.page.route("**/*", refuse_then_serve)
    frame.page.evaluate("window.__fake.ticketId = 8002; window.__fake.activate()")
    expect(frame.page.locator("body")).to_have_attribute("data-calls", "1")
    frame.page.clock.run_for(8 * SECOND)  # no "ready" from the panel: renew once, load again
    expect(frame.page.locator("body")).to_have_attribute("data-ready", "2")
    assert frame.calls == 2
    assert len(posts) == 2 and posts[0] != posts[1]


def test_errors_are_shown_in_the_agents_language(frame):
    from playwright.sync_api import expect

    frame.page.evaluate(
        """() => {
          window.__fake.user = {id: 404, contact: {language: "de"}};
          window.__fake.fail = {status: 401, response: '{"error": {"code": "unknown_agent"}}'};
          window.__fake.activate();
        }"""
    )
    status = frame.page.locator("#status")
    expect(status).to_have_text(re.compile(r"^Billing Desk konnte die Anmeldung nicht bestätigen"))
    expect(status).to_contain_text("(unknown_agent)")
    assert frame.page.evaluate("document.documentElement.lang") == "de"
    # a refused agent keeps nothing in storage
    assert frame.stored_keys() == []


def test_with_storage_blocked_the_frame_keeps_the_session_in_memory(frame):
    from playwright.sync_api import expect

    frame.page.goto(APP_FRAME + "index.html?blocked=1")
    expect(frame.page.locator("body")).to_have_attribute("data-app-activated", "on")
    assert frame.page.evaluate(
        "(() => { try { localStorage; return false; } catch (e) { return true; } })()"
    )
    frame.ready = 0
    for ticket in range(9001, 9011):
        frame.open_ticket(ticket)
        frame.close()
        frame.page.clock.run_for(30 * SECOND)
    assert frame.calls == 1


def _open_quota_frame(frame: Frame) -> None:
    from playwright.sync_api import expect

    frame.page.goto(APP_FRAME + "index.html?quota=1")
    expect(frame.page.locator("body")).to_have_attribute("data-app-activated", "on")
    frame.ready = 0


def test_with_storage_full_the_frame_keeps_the_session_in_memory(frame):
    # given storage that reads but refuses every write (quota exceeded)
    _open_quota_frame(frame)
    assert frame.page.evaluate(
        "(() => { try { localStorage.setItem('x', '1'); return false; } catch (e) { return true; } })()"
    )

    # when the agent opens ten tickets
    for ticket in range(9201, 9211):
        frame.open_ticket(ticket)
        frame.close()
        frame.page.clock.run_for(30 * SECOND)

    # then one proxy call served them all, from the frame's memory
    assert frame.calls == 1
    assert frame.stored_keys() == []
    assert {post["token"] for post in frame.panel_posts} == {"tok-1-agent-101"}


def test_with_storage_full_an_expired_stored_session_does_not_hide_the_new_one(frame):
    # given an expired session stored earlier, then storage that is full
    key = "billing-desk:freshdesk-session:acme.freshdesk.com:101"
    old = {
        "token": "tok-old",
        "expires": START_MS - MINUTE,
        "lifetime": 900 * SECOND,
        "domain": "acme.freshdesk.com",
        "agent_id": 101,
    }
    frame.page.evaluate(
        "([key, value]) => localStorage.setItem(key, JSON.stringify(value))", [key, old]
    )
    _open_quota_frame(frame)

    # when the agent opens five tickets
    for ticket in range(9301, 9306):
        frame.open_ticket(ticket)
        frame.close()

    # then the first renewed it once, the rest used the renewed one, and the stale one is gone
    assert frame.calls == 1
    assert {post["token"] for post in frame.panel_posts} == {"tok-1-agent-101"}
    assert frame.stored_keys() == []


def test_a_short_server_lifetime_does_not_make_the_frame_call_in_a_loop(frame):
    # a deployment with BILLING_DESK_SESSION_TTL=60: renewal a quarter-lifetime before the end
    frame.page.evaluate("window.__fake.ttl = 60")
    frame.open_ticket(9101)
    frame.page.clock.run_for(10 * MINUTE)  # the app stays open
    assert 10 <= frame.calls <= 15  # one every 45 s
    frame.close()
    calls = frame.calls
    frame.page.clock.run_for(10 * MINUTE)
    assert frame.calls == calls
