// Recent actions on this customer, and the outcome of each request this agent sent for
// approval: pending (with who must approve), approved (what was done), denied (with the
// approver's comment) or expired, each with the customer message to copy or post.
// A recent action opens into its details (GET actions/{id}/): what was asked in words,
// status, outcome, approval trail, provider reference and note status.
//
// The requests are read whenever the context is (opening the ticket, Refresh, after an
// action): the decision shows up on the next look, without polling.

import { h, nextId } from "./dom.js";
import { dateTime, money } from "./format.js";
import { handleExpired } from "./screens.js";
import { messageBox } from "./results.js";
import { state } from "./state.js";
import { actionName, roleLabel } from "./vocabulary.js";
import { button, errorText, row, section, statusBadge } from "./widgets.js";
import { gettext, interpolate, orList } from "./i18n.js";

const OUTCOME_BADGES = {
  pending: ["pending_approval", gettext("Waiting")],
  approved: ["succeeded", gettext("Approved")],
  denied: ["denied", gettext("Denied")],
  expired: ["expired", gettext("Expired")],
  done: ["succeeded", gettext("Done")],
  failed: ["failed", gettext("Failed")],
  confirming: ["outcome_unknown", gettext("Confirming")],
  running: ["executing", gettext("Running")],
  not_permitted: ["not_permitted", gettext("Not permitted")],
};

// The agent's own requests for the customer on screen, read once per context load.
const requests = { ctx: null, customerId: "", items: null, error: null };
// Opened recent actions: id → { loading, data, error }.
const opened = new Map();

export function recentActions() {
  const ctx = state.ctx;
  const approvals = ctx.pending_approvals || [];
  const actions = ctx.recent_actions || [];
  if (requests.ctx !== ctx) {
    requests.ctx = ctx;
    if (requests.customerId !== state.customerId) {
      requests.items = null;
      opened.clear();
    }
    requests.customerId = state.customerId;
    loadRequests();
  }
  return section(gettext("Recent actions"), "section-recent",
    h("div.bd-requests", { id: "bd-my-requests" }, requestsView()),
    approvals.length
      ? h("div.bd-pending", { "data-testid": "pending-approvals" },
        h("h3.bd-subtitle", {}, gettext("Pending approvals")),
        h("ul.bd-list", {}, approvals.map((a) => h("li", {},
          `${actionName(a.kind)}${a.amount ? ` ${money(a.amount)}` : ""} — ${interpolate(gettext("requested by %(who)s; waiting for %(approvers)s"), {
            who: a.requested_by || gettext("an agent"),
            approvers: orList((a.required_roles || []).map(roleLabel)) || gettext("an approver"),
          }, true)}`,
        ))))
      : null,
    actions.length
      ? h("ul.bd-activity", { "data-testid": "recent-actions" }, actions.map((a) => actionItem(a)))
      : h("p.bd-muted", {}, gettext("No billing actions on this customer yet.")),
  );
}

// --- this agent's requests and their outcomes ---------------------------------------------

async function loadRequests() {
  const customerId = state.customerId;
  try {
    const data = await state.api.get("approvals/requested/", { customer_id: customerId });
    if (customerId !== state.customerId) return;
    requests.items = data.results || [];
    requests.error = null;
  } catch (error) {
    if (handleExpired(error)) return;
    requests.error = error;
  }
  const el = document.getElementById("bd-my-requests");
  if (el) el.replaceChildren(...requestsView().filter(Boolean));
}

function requestsView() {
  if (requests.error) return [h("p.bd-error", { role: "alert" }, interpolate(gettext("Could not load your requests: %(error)s"), { error: errorText(requests.error) }, true))];
  const items = requests.items;
  if (!items || !items.length) return [];
  return [
    h("h3.bd-subtitle", {}, gettext("Your approval requests")),
    h("ul.bd-outcomes", { "data-testid": "my-requests" }, items.map((item) => requestItem(item))),
  ];
}

/** A title as a sentence: one full stop, none added after the approver's own. */
function sentence(text) {
  const s = String(text || "").trim();
  return !s || /[.!?]$/.test(s) ? s : `${s}.`;
}

function outcomeBadge(outcome) {
  const [status, label] = OUTCOME_BADGES[outcome.state] || ["", outcome.state];
  return statusBadge(status, label);
}

function requestItem(item) {
  const details = item.details || {};
  const outcome = details.outcome || {};
  const trail = details.trail || {};
  return h(`li.bd-outcome.bd-outcome--${outcome.state || "pending"}`, {
    "data-testid": "request", "data-action-id": item.id, "data-state": outcome.state || "",
  },
    h("p.bd-outcome__what", {},
      h("strong", {}, `${details.kind_label || actionName(item.kind)}${item.amount ? ` · ${money(item.amount)}` : ""}`),
      " ", outcomeBadge(outcome)),
    h("p.bd-outcome__title", { "data-testid": "request-outcome" }, sentence(outcome.title)),
    outcome.state === "approved" && (details.lines || []).length
      ? h("dl.bd-dl.bd-lines", { "data-testid": "request-done" }, details.lines.map((line) => row(line.label, line.text)))
      : null,
    trail.requested_at ? h("p.bd-muted.bd-small", {},
      `${interpolate(gettext("Requested %(when)s"), { when: dateTime(trail.requested_at) }, true)}${trail.decided_at ? ` · ${interpolate(gettext("decided %(when)s"), { when: dateTime(trail.decided_at) }, true)}` : ""}`) : null,
    details.customer_message
      ? messageBox(details.customer_message, { title: details.message_title || gettext("Message for the customer"), testid: "request-message" })
      : null,
  );
}

// --- recent actions, each opening into its details -----------------------------------------

function actionItem(a) {
  const detailsId = `bd-action-${a.id}`;
  const open = opened.get(a.id);
  return h("li", { "data-action-id": a.id },
    h("button.bd-activity__toggle", {
      type: "button",
      "aria-expanded": String(Boolean(open)),
      "aria-controls": detailsId,
      "data-testid": "recent-action",
      onclick: (event) => toggle(a, event.currentTarget),
    },
    h("span.bd-activity__what", {}, `${actionName(a.kind)}${a.amount ? ` · ${money(a.amount)}` : ""}`),
    ),
    statusBadge(a.status),
    h("span.bd-activity__meta", {}, `${a.actor || ""}${a.created_at ? ` · ${dateTime(a.created_at)}` : ""}`),
    h("div.bd-action-details", { id: detailsId, hidden: !open, "data-testid": "action-details" }, open ? detailsView(open) : null),
  );
}

async function toggle(a, toggleButton) {
  const panel = document.getElementById(`bd-action-${a.id}`);
  if (opened.has(a.id)) {
    opened.delete(a.id);
    toggleButton.setAttribute("aria-expanded", "false");
    panel.hidden = true;
    panel.replaceChildren();
    return;
  }
  const entry = { loading: true, data: null, error: null };
  opened.set(a.id, entry);
  toggleButton.setAttribute("aria-expanded", "true");
  panel.hidden = false;
  panel.replaceChildren(...detailsView(entry).filter(Boolean));
  try {
    entry.data = await state.api.get(`actions/${encodeURIComponent(a.id)}/`);
  } catch (error) {
    if (handleExpired(error)) return;
    entry.error = error;
  }
  entry.loading = false;
  if (opened.get(a.id) === entry) panel.replaceChildren(...detailsView(entry).filter(Boolean));
}

function detailsView(entry) {
  if (entry.loading) return [h("p.bd-muted.bd-small", {}, gettext("Loading…"))];
  if (entry.error) return [h("p.bd-error", { role: "alert" }, errorText(entry.error))];
  const action = entry.data || {};
  const details = action.details || {};
  const outcome = details.outcome || {};
  const trail = details.trail;
  const rows = [
    row(gettext("Status"), h("span", {}, outcomeBadge(outcome), ` ${outcome.title || details.status_label || ""}`), { testid: "detail-outcome" }),
    ...(details.lines || []).map((line) => row(line.label, line.text)),
  ];
  if (trail) {
    rows.push(
      row(gettext("Requested by"), `${trail.requested_by}${trail.requested_role ? ` (${trail.requested_role})` : ""}, ${dateTime(trail.requested_at)}`),
      row(gettext("Why approval"), trail.reason),
      row(gettext("Approver"), trail.approver_roles),
    );
    if (trail.decided_at) {
      rows.push(row(gettext("Decided by"), `${trail.decided_by || "—"}${trail.decided_role ? ` (${trail.decided_role})` : ""}, ${dateTime(trail.decided_at)}`));
      rows.push(row(gettext("Comment"), trail.comment || "—"));
    } else if (trail.status === "pending") {
      rows.push(row(gettext("Expires"), dateTime(trail.expires_at)));
    }
  }
  if (details.provider_object_id) rows.push(row(gettext("Provider reference"), h("code.bd-break", {}, details.provider_object_id)));
  if (details.note) rows.push(row(gettext("Ticket note"), details.note.label));
  const headingId = nextId("bd-h");
  return [
    h("h4.bd-visually-hidden", { id: headingId }, interpolate(gettext("%(action)s details"), { action: details.kind_label || actionName(action.kind) }, true)),
    h("dl.bd-dl.bd-lines", { "aria-labelledby": headingId }, rows),
    details.customer_message
      ? messageBox(details.customer_message, { title: details.message_title || gettext("Message for the customer"), testid: "detail-message" })
      : null,
    h("div.bd-form__buttons", {}, button(gettext("Close"), (event) => {
      const li = event.currentTarget.closest("li[data-action-id]");
      const toggleButton = li && li.querySelector("[data-testid=recent-action]");
      if (toggleButton) {
        toggleButton.click();
        toggleButton.focus();
      }
    }, { small: true })),
  ];
}
