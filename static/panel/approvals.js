// The Approvals tab (approvers only): the Billing / Approvals tabs (WAI-ARIA tabs), the
// pending requests this agent may decide (GET approvals/?status=pending) — customer, plan,
// MRR, what is asked in words, reason, ticket link, who must approve — approve / deny with a
// comment, and what was decided recently (GET approvals/decided/, paged).

import { clear, h } from "./dom.js";
import { capitalize, dateTime, money } from "./format.js";
import { refreshContext } from "./loading.js";
import { canApprove } from "./role.js";
import { handleExpired } from "./screens.js";
import { live, state } from "./state.js";
import { actionName, roleLabel } from "./vocabulary.js";
import { banner, button, errorText, row, statusBadge, statusText } from "./widgets.js";
import { gettext, interpolate, orList } from "./i18n.js";

const TABS = [["billing", gettext("Billing")], ["approvals", gettext("Approvals")]];

// The WAI-ARIA tabs pattern: one tab stop (roving tabindex), arrow keys move focus and
// selection, Home / End go to the first / last tab. The tab buttons are built once and
// updated in place, so the focused tab is never removed from the page (focus never
// falls back to <body>).
export function renderTabs() {
  const el = document.getElementById("bd-tabs");
  if (!el) return;
  if (!canApprove()) {
    el.replaceChildren();
    return;
  }
  let list = el.querySelector("[role=tablist]");
  if (!list) {
    el.replaceChildren();
    list = h("div.bd-tabs", { role: "tablist", "aria-label": gettext("Panel views"), onkeydown: onTabKey },
      TABS.map(([key]) => h("button.bd-tab", {
        type: "button",
        role: "tab",
        id: `bd-tab-${key}`,
        "aria-controls": `bd-view-${key}`,
        "data-tab": key,
        onclick: () => selectTab(key, true),
      })),
    );
    el.append(list);
  }
  const count = state.approvals.items ? state.approvals.items.length : null;
  for (const [key, text] of TABS) {
    const tab = list.querySelector(`[data-tab=${key}]`);
    const selected = state.tab === key;
    tab.textContent = key === "approvals" && count ? interpolate(gettext("Approvals (%(count)s)"), { count }, true) : text;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  syncOpenButtons();
}

function onTabKey(event) {
  const keys = TABS.map(([key]) => key);
  const at = keys.indexOf(event.target.dataset.tab);
  if (at < 0) return;
  const next = {
    ArrowRight: (at + 1) % keys.length,
    ArrowLeft: (at - 1 + keys.length) % keys.length,
    Home: 0,
    End: keys.length - 1,
  }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  selectTab(keys[next], true);
}

export function selectTab(key, focus) {
  state.tab = key;
  document.getElementById("bd-view-billing").hidden = key !== "billing";
  document.getElementById("bd-view-approvals").hidden = key !== "approvals";
  renderTabs();
  const tab = document.getElementById(`bd-tab-${key}`);
  if (focus && tab) tab.focus();
  if (key === "approvals") loadApprovals();
}

/** Whether this agent may decide the pending request (it is in their queue). */
export function canDecide(approvalId) {
  const items = state.approvals.items || [];
  return items.some((item) => String(item.id) === String(approvalId) && item.can_decide !== false);
}

/**
 * "Open approvals" for a pending-approval alert: shown only when this agent may decide
 * the request. Until the queue is loaded it stays hidden; renderTabs re-checks it.
 */
export function openApprovalsButton(approvalId) {
  if (!canApprove()) return null;
  const el = button(gettext("Open approvals"), () => selectTab("approvals", true), {
    small: true, testid: "open-approvals", "data-approval-id": approvalId,
  });
  el.hidden = !canDecide(approvalId);
  return el;
}

function syncOpenButtons() {
  for (const el of document.querySelectorAll("[data-testid=open-approvals][data-approval-id]")) {
    el.hidden = !canDecide(el.dataset.approvalId);
  }
}

async function loadApprovals() {
  const view = document.getElementById("bd-view-approvals");
  state.approvals.loading = true;
  if (!state.approvals.items) renderApprovals(view);
  try {
    const data = await state.api.get("approvals/", { status: "pending" });
    state.approvals.items = Array.isArray(data) ? data : data.results || data.items || [];
    state.approvals.error = null;
  } catch (error) {
    if (handleExpired(error)) return;
    state.approvals.error = error;
  }
  state.approvals.loading = false;
  renderApprovals(view);
  renderTabs();
  loadHistory();
}

function approvalSummary(item) {
  const action = item.action || {};
  const actor = action.actor || {};
  const customer = item.customer || {};
  const details = item.details || {};
  return {
    kind: details.kind_label || actionName(action.kind),
    amount: action.amount ? money(action.amount) : "",
    customer: customer.name || customer.email || gettext("a customer not in the billing mirror"),
    plan: customer.plan || "",
    mrr: customer.mrr ? money(customer.mrr) : "",
    requestedBy: actor.name ? `${actor.name}${actor.role ? ` (${roleLabel(actor.role)})` : ""}` : "",
    approvers: item.required_role_labels || orList((item.required_roles || []).map(roleLabel)),
    reason: item.reason || "",
    expires: item.expires_at,
    ticket: action.ticket_id || "",
    ticketUrl: details.ticket_url || "",
    lines: details.lines || [],
  };
}

function decisionWords(status) {
  return { approved: gettext("Approved"), denied: gettext("Denied"), expired: gettext("Expired"), pending: gettext("Pending") }[status]
    || capitalize(status);
}

function linesList(lines) {
  if (!lines.length) return null;
  return h("dl.bd-dl.bd-lines", { "data-testid": "asked" }, lines.map((line) => row(line.label, line.text)));
}

function ticketRef(s) {
  if (!s.ticket) return null;
  return s.ticketUrl
    ? h("a", { href: s.ticketUrl, target: "_blank", rel: "noopener noreferrer", "data-testid": "ticket-link" }, ticketWords(s.ticket))
    : ticketWords(s.ticket);
}

function ticketWords(ticket) {
  return interpolate(gettext("ticket #%(ticket)s"), { ticket }, true);
}

function renderApprovals(view = document.getElementById("bd-view-approvals")) {
  clear(view);
  const { items, error, loading } = state.approvals;
  view.append(
    h("div.bd-section__head", {},
      h("h2.bd-section__title", {}, gettext("Waiting for your approval")),
      button(loading ? gettext("Loading…") : gettext("Refresh"), () => loadApprovals(), { small: true, disabled: loading }),
    ),
  );
  if (error) view.append(banner("danger", gettext("Could not load approvals."), errorText(error)));
  const last = state.approvals.lastDecision;
  if (last) {
    const s = approvalSummary(last.item);
    const action = (last.result && last.result.action) || {};
    const outcome = ((last.result && last.result.details) || {}).outcome || {};
    const failed = action.status === "failed";
    view.append(
      h(`div.bd-result.bd-result--${failed ? "danger" : last.verb === "approve" ? "success" : "info"}`, { role: "status", "data-testid": "approval-result", "data-status": action.status || "" },
        h("strong", {}, last.verb === "approve" ? gettext("Approved") : gettext("Denied")),
        ` ${interpolate(gettext("%(action)s for %(customer)s"), { action: `${s.kind}${s.amount ? ` ${s.amount}` : ""}`, customer: s.customer }, true)}`,
        outcome.title ? ` — ${outcome.title}${/[.!?]$/.test(outcome.title) ? "" : "."}` : ".",
        action.status === "outcome_unknown" ? ` ${gettext("Do not retry it.")}` : "",
      ),
    );
  }
  if (!items) {
    view.append(h("div.bd-skel.bd-skel--block", { "aria-hidden": "true" }));
  } else if (!items.length) {
    view.append(h("p.bd-empty", { "data-testid": "approvals-empty" }, gettext("Nothing is waiting for your approval.")));
  } else {
    view.append(h("ul.bd-approvals", { "data-testid": "approvals" }, items.map((item) => approvalCard(item))));
  }
  view.append(h("div.bd-decided", { id: "bd-decided" }));
  renderHistory();
}

function approvalCard(item) {
  const s = approvalSummary(item);
  const commentId = `bd-approval-comment-${item.id}`;
  const busy = state.approvals.busy[item.id];
  const decide = async (verb) => {
    const comment = document.getElementById(commentId).value.trim();
    if (verb === "deny" && !comment) {
      const field = document.getElementById(commentId);
      field.setAttribute("aria-invalid", "true");
      field.focus();
      live(gettext("Say why you deny the request."));
      return;
    }
    state.approvals.busy[item.id] = verb;
    renderApprovals();
    try {
      const result = await state.api.post(`approvals/${encodeURIComponent(item.id)}/${verb}/`, { comment });
      state.approvals.busy[item.id] = null;
      const actionStatus = result && result.action ? result.action.status : "";
      const outcome = (result && result.details && result.details.outcome) || {};
      const what = `${s.kind}${s.amount ? ` ${s.amount}` : ""}${outcome.title ? ` — ${outcome.title}` : actionStatus ? ` — ${statusText(actionStatus)}` : ""}`;
      live(interpolate(verb === "approve" ? gettext("Approved: %(what)s.") : gettext("Denied: %(what)s."), { what }, true));
      state.approvals.items = state.approvals.items.filter((other) => other.id !== item.id);
      state.approvals.lastDecision = { item, verb, result };
      renderApprovals();
      renderTabs();
      loadHistory();
      refreshContext(false, { quiet: true });
    } catch (error) {
      state.approvals.busy[item.id] = null;
      if (handleExpired(error)) return;
      state.approvals.cardErrors = { ...(state.approvals.cardErrors || {}), [item.id]: error };
      renderApprovals();
    }
  };
  const cardError = (state.approvals.cardErrors || {})[item.id];
  return h("li.bd-approval", { "data-approval-id": item.id, "data-testid": "approval" },
    h("p.bd-approval__what", {}, h("strong", {}, `${s.kind}${s.amount ? ` · ${s.amount}` : ""}`)),
    h("p.bd-small", { "data-testid": "approval-customer" },
      h("strong", {}, s.customer),
      s.plan ? ` · ${s.plan}` : "",
      s.mrr ? ` · ${interpolate(gettext("MRR %(amount)s"), { amount: s.mrr }, true)}` : "",
      s.ticket ? " · " : "", ticketRef(s)),
    linesList(s.lines),
    h("p.bd-small", {}, `${interpolate(gettext("Requested by %(who)s"), { who: s.requestedBy || gettext("an agent") }, true)}${s.reason ? ` — ${s.reason}` : ""}`),
    h("p.bd-muted.bd-small", {}, `${interpolate(gettext("Awaits approval by %(approvers)s"), { approvers: s.approvers || gettext("an approver") }, true)}${s.expires ? ` · ${interpolate(gettext("expires %(when)s"), { when: dateTime(s.expires) }, true)}` : ""}`),
    cardError ? h("p.bd-error", { role: "alert" }, errorText(cardError)) : null,
    h("div.bd-field", {},
      h("label", { for: commentId }, gettext("Comment")),
      h("textarea.bd-input", { id: commentId, rows: 2, maxlength: 1000 }),
    ),
    h("div.bd-form__buttons", {},
      button(busy === "approve" ? gettext("Approving…") : gettext("Approve"), () => decide("approve"), { kind: "primary", disabled: Boolean(busy), testid: "approve" }),
      button(busy === "deny" ? gettext("Denying…") : gettext("Deny"), () => decide("deny"), { kind: "danger", disabled: Boolean(busy), testid: "deny" }),
    ),
  );
}

// --- what was decided: the workspace's latest decisions, a page at a time -------------------

async function loadHistory(more = false) {
  const history = state.approvals.history || (state.approvals.history = { items: [], page: 0, hasNext: false });
  history.loading = true;
  try {
    const page = more ? history.page + 1 : 1;
    const data = await state.api.get("approvals/decided/", { page: String(page) });
    history.items = more ? history.items.concat(data.results || []) : data.results || [];
    history.page = data.page || page;
    history.hasNext = Boolean(data.has_next);
    history.error = null;
  } catch (error) {
    if (handleExpired(error)) return;
    history.error = error;
  }
  history.loading = false;
  renderHistory();
  if (more) {
    const next = document.querySelector("[data-testid=history-more-decided]");
    if (next) next.focus();
  }
}

function renderHistory() {
  const el = document.getElementById("bd-decided");
  if (!el) return;
  clear(el);
  const history = state.approvals.history || { items: [] };
  el.append(h("h3.bd-subtitle", {}, gettext("Recently decided")));
  if (history.error) el.append(h("p.bd-error", { role: "alert" }, errorText(history.error)));
  if (!history.items.length) {
    el.append(h("p.bd-muted.bd-small", {}, history.loading ? gettext("Loading…") : gettext("Nothing decided yet.")));
    return;
  }
  el.append(h("ul.bd-activity", { "data-testid": "decided" }, history.items.map((item) => {
    const s = approvalSummary(item);
    const outcome = (item.details || {}).outcome || {};
    return h("li", {},
      h("span.bd-activity__what", {}, `${s.kind}${s.amount ? ` · ${s.amount}` : ""} · ${s.customer}`),
      statusBadge(item.status === "approved" ? "succeeded" : item.status, item.status_label || decisionWords(item.status)),
      h("span.bd-activity__meta", {}, `${outcome.title || ""}${item.decided_at ? ` · ${dateTime(item.decided_at)}` : ""}`),
    );
  })));
  if (history.hasNext || history.page > 1) {
    // The button stays once everything is shown (aria-disabled keeps it focusable), so the
    // focus it holds after "Load more" never falls back to <body>.
    const done = !history.hasNext;
    el.append(button(history.loading ? gettext("Loading…") : done ? gettext("All decided requests shown") : gettext("Load more"), () => {
      if (!done && !history.loading) loadHistory(true);
    }, { small: true, testid: "history-more-decided", "aria-disabled": done || history.loading ? "true" : null }));
  }
}
