"""Nothing overflows the 320 px sidebar: every demo ticket, in every role, and every action
form the role is offered, measured in the panel's own frame (the demo page frames it at
the Zendesk sidebar's 320 px).

One page per role: the role's test walks the tickets on one browser page (the demo page
re-mints the role's session per ticket, as a helpdesk does) and reports every overflow
it found, so one run names them all.
"""

from __future__ import annotations

import pytest

from billing_app.demo.tickets import ALL_SCENARIOS

from .support import demo_ticket_open, panel_settle

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser

ROLES = ("l1", "l2", "manager", "specialist")
PANEL_WIDTH = 320

# What overflows, measured inside the panel's frame. An element counts when it is rendered
# (not display:none, not visibility:hidden, not a 1 px visually-hidden label) and its box
# reaches past the frame's width or before its left edge, unless an ancestor that itself
# fits shortens it with an ellipsis. A box that scrolls sideways is an overflow too.
OVERFLOWS_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  const scroller = document.scrollingElement;
  if (scroller.scrollWidth > scroller.clientWidth) {
    found.push(`the document is ${scroller.scrollWidth} px wide (frame ${scroller.clientWidth} px)`);
  }
  const describe = (el) => {
    const id = el.id ? `#${el.id}` : "";
    const cls = el.classList.length ? `.${[...el.classList].join(".")}` : "";
    const testid = el.dataset && el.dataset.testid ? `[data-testid=${el.dataset.testid}]` : "";
    const text = (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    return `${el.tagName.toLowerCase()}${id}${cls}${testid} "${text}"`;
  };
  const hidden = (el) => {
    if (el.closest(".bd-visually-hidden, [hidden]")) return true;
    const style = getComputedStyle(el);
    return style.display === "none" || style.visibility === "hidden";
  };
  // An ellipsis shortens on purpose; a scroller is reported on its own; any other clip
  // cuts content off and does not excuse it.
  const clips = (style) =>
    ["auto", "scroll"].includes(style.overflowX) ||
    (["hidden", "clip"].includes(style.overflowX) && style.textOverflow === "ellipsis");
  const clippedInside = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (!clips(style)) continue;
      const box = a.getBoundingClientRect();
      if (box.right <= width + 0.5 && box.left >= -0.5) return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE"].includes(el.tagName) || hidden(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 && box.height <= 1) continue;
    const style = getComputedStyle(el);
    if (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${describe(el)} scrolls sideways (${el.scrollWidth} px in ${el.clientWidth} px)`);
    }
    if ((box.right > width + 0.5 || box.left < -0.5) && !clippedInside(el)) {
      found.push(`${describe(el)} spans ${Math.round(box.left)}..${Math.round(box.right)} px`);
    }
  }
  return found;
}
"""


def panel_frame(page):
    return page.frame(name="panel-frame")


def overflows(page, where: str) -> list[str]:
    frame = panel_frame(page)
    width = frame.evaluate("document.documentElement.clientWidth")
    assert width == PANEL_WIDTH, f"{where}: the panel frame is {width} px wide"
    return [f"{where}: {problem}" for problem in frame.evaluate(OVERFLOWS_JS)]


def offered_actions(page) -> list[tuple[str, str]]:
    """(kind, test id) of every action button the panel offers here, direct or as a request."""
    panel = page.frame_locator("#panel-frame")
    buttons = panel.locator("#bd-actions button.bd-action[data-kind]")
    return [
        (b.get_attribute("data-kind") or "", b.get_attribute("data-testid") or "")
        for b in buttons.all()
    ]


def check_forms(page, server_activity, where: str, seen: set[str]) -> list[str]:
    """Opens each action form not yet measured for this role, measures it, and closes it."""
    panel = page.frame_locator("#panel-frame")
    problems: list[str] = []
    for kind, testid in offered_actions(page):
        if kind in seen:
            continue
        seen.add(kind)
        more = panel.locator("#bd-actions details.bd-more:not([open]) > summary")
        if testid.startswith("request-") and more.count():
            more.click()
        panel.get_by_test_id(testid).click()
        form = panel.get_by_test_id("action-form")
        expect(form).to_be_visible()
        panel_settle(page, server_activity)
        problems += overflows(page, f"{where}, {kind} form")
        # and its next step with what the form holds (forms that open on their confirmation
        # have none): the confirmation (the server's dry run, a plan's preview) or the
        # form's own errors
        review = form.get_by_test_id("form-review")
        if review.count():
            review.click()
            panel_settle(page, server_activity)
            step = form.get_attribute("data-step")
            problems += overflows(page, f"{where}, {kind} form, {step} step")
        form.get_by_role("button", name="Close the form").click()
        expect(form).to_have_count(0)
    return problems


@pytest.mark.parametrize("role", ROLES)
def test_nothing_overflows_320_px_on_any_ticket_or_form(page, sandbox, server_activity, role):
    problems: list[str] = []
    seen_forms: set[str] = set()
    for scenario in ALL_SCENARIOS:
        # given an agent of this role on the demo ticket, the panel at 320 px
        where = f"{role} on {scenario.key}"
        demo_ticket_open(page, server_activity, role=role, scenario=scenario.key)
        panel = page.frame_locator("#panel-frame")

        # then nothing reaches past the panel's width
        problems += overflows(page, where)

        # and when several customers match, the picker fits, and so does the chosen one
        picker = panel.get_by_test_id("customer-picker")
        if picker.count():
            picker.get_by_role("checkbox").uncheck()
            picker.get_by_test_id("picker-select").click()
            expect(panel.get_by_test_id("section-account")).to_be_visible()
            panel_settle(page, server_activity)
            problems += overflows(page, f"{where} (chosen)")

        # and each action form the role is offered fits, opened once per role
        if panel.get_by_test_id("section-account").count():
            problems += check_forms(page, server_activity, where, seen_forms)

        # and an approver's Approvals tab fits
        tab = panel.locator("#bd-tab-approvals")
        if scenario is ALL_SCENARIOS[0] and tab.count():
            tab.click()
            expect(panel.locator("#bd-view-approvals")).to_be_visible()
            panel_settle(page, server_activity)
            problems += overflows(page, f"{where}, Approvals tab")

    assert problems == [], "\n".join(problems)
    assert seen_forms, f"{role} was offered no action form"


def test_the_overflow_check_finds_what_sticks_out_and_nothing_else(bare_page):
    # given a 320 px page with a table wider than it, a visually-hidden label, an id
    # ellipsized inside a box that fits, a box that scrolls sideways and one cut off
    bare_page.set_viewport_size({"width": PANEL_WIDTH, "height": 600})
    bare_page.set_content(
        """<style>
          body { margin: 0; overflow: hidden; }
          .hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
                    clip-path: inset(50%); white-space: nowrap; }
        </style>
        <div class="hidden bd-visually-hidden">a very long visually hidden label, far wider than 320 px</div>
        <p style="width: 200px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap">
          <a href="#">in_1NvXyZ2eZvKYlo2CkQ0123456789abcdefghijklmnopqrstuvwxyz</a></p>
        <div style="overflow-x: auto; width: 300px"><span style="display: inline-block; width: 500px">s</span></div>
        <div style="overflow: hidden; width: 300px"><span data-testid="cut" style="display: inline-block; width: 400px">cut off</span></div>
        <table data-testid="wide"><tr><td style="white-space: nowrap">a table wider than the panel: Date Amount Status Method Invoice ID</td></tr></table>"""
    )

    # when the check runs
    found = bare_page.evaluate(OVERFLOWS_JS)

    # then it names the document, the wide table, the sideways scroller and the cut-off box
    assert any(f.startswith("the document is") for f in found), found
    assert any("[data-testid=wide]" in f for f in found), found
    assert any("scrolls sideways" in f for f in found), found
    assert any("[data-testid=cut]" in f for f in found), found
    assert not [f for f in found if "hidden" in f or "in_1NvXyZ" in f], found
