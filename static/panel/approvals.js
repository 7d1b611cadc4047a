// The Approvals tab (approvers only): the Billing / Approvals tabs, the pending requests
// this agent may decide (GET approvals/?status=pending), and approve / deny with a comment.

import { clear, h } from "./dom.js";
import { dateTime, humanize, money } from "./format.js";
import { refreshContext } from "./loading.js";
import { canApprove } from "./role.js";
import { handleExpired } from "./screens.js";
import { live, region, state } from "./state.js";
import { actionName, roleLabel } from "./vocabulary.js";
import { banner, button, errorText } from "./widgets.js";

export function renderTabs() {
  const el = region("bd-tabs");
  if (!canApprove()) return;
  const count = state.approvals.items ? state.approvals.items.length : null;
  const tab = (key, label) =>
    h("button.bd-tab", {
      type: "button",
      role: "tab",
      id: `bd-tab-${key}`,
      "aria-selected": String(state.tab === key),
      "aria-controls": `bd-view-${key}`,
      tabindex: state.tab === key ? "0" : "-1",
      onclick: () => selectTab(key),
      onkeydown: (event) => {
        if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
          event.preventDefault();
          selectTab(key === "billing" ? "approvals" : "billing", true);
        }
      },
    }, label);
  el.append(
    h("div.bd-tabs", { role: "tablist", "aria-label": "Panel views" },
      tab("billing", "Billing"),
      tab("approvals", count ? `Approvals (${count})` : "Approvals"),
    ),
  );
}

export function selectTab(key, focus) {
  state.tab = key;
  document.getElementById("bd-view-billing").hidden = key !== "billing";
  document.getElementById("bd-view-approvals").hidden = key !== "approvals";
  renderTabs();
  if (focus) document.getElementById(`bd-tab-${key}`).focus();
  if (key === "approvals") loadApprovals();
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
}

function approvalSummary(item) {
  const action = item.action || {};
  const actor = action.actor || {};
  return {
    kind: actionName(action.kind),
    amount: action.amount ? money(action.amount) : "",
    customer:
      state.ctx && state.ctx.customer && action.customer_id === state.ctx.customer.id
        ? `${state.ctx.customer.name} (${action.customer_id})`
        : action.customer_id || "",
    requestedBy: actor.name ? `${actor.name}${actor.role ? ` (${roleLabel(actor.role)})` : ""}` : "",
    reason: item.reason || "",
    expires: item.expires_at,
    ticket: action.ticket_id || "",
    params: action.params || {},
  };
}

function renderApprovals(view = document.getElementById("bd-view-approvals")) {
  clear(view);
  const { items, error, loading } = state.approvals;
  view.append(
    h("div.bd-section__head", {},
      h("h2.bd-section__title", {}, "Waiting for your approval"),
      button(loading ? "Loading…" : "Refresh", () => loadApprovals(), { small: true, disabled: loading }),
    ),
  );
  if (error) view.append(banner("danger", "Could not load approvals.", errorText(error)));
  const last = state.approvals.lastDecision;
  if (last) {
    const s = approvalSummary(last.item);
    const action = (last.result && last.result.action) || {};
    const failed = action.status === "failed";
    view.append(
      h(`div.bd-result.bd-result--${failed ? "danger" : last.verb === "approve" ? "success" : "info"}`, { role: "status", "data-testid": "approval-result", "data-status": action.status || "" },
        h("strong", {}, last.verb === "approve" ? "Approved" : "Denied"),
        ` ${s.kind}${s.amount ? ` ${s.amount}` : ""} for ${s.customer}`,
        action.status === "outcome_unknown" ? " — Stripe did not confirm it in time; Billing Desk is confirming with Stripe (do not retry)"
          : action.status ? ` — the action ${humanize(action.status).toLowerCase()}` : "",
        failed && action.error ? `: ${action.error.message} (${action.error.code})` : ".",
      ),
    );
  }
  if (!items) {
    view.append(h("div.bd-skel.bd-skel--block", { "aria-hidden": "true" }));
    return;
  }
  if (!items.length) {
    view.append(h("p.bd-empty", { "data-testid": "approvals-empty" }, "Nothing is waiting for your approval."));
    return;
  }
  view.append(h("ul.bd-approvals", { "data-testid": "approvals" }, items.map((item) => approvalCard(item))));
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
      live("Say why you deny the request.");
      return;
    }
    state.approvals.busy[item.id] = verb;
    renderApprovals();
    try {
      const result = await state.api.post(`approvals/${encodeURIComponent(item.id)}/${verb}/`, { comment });
      state.approvals.busy[item.id] = null;
      const actionStatus = result && result.action ? result.action.status : "";
      live(`${verb === "approve" ? "Approved" : "Denied"}: ${s.kind}${s.amount ? ` ${s.amount}` : ""}${actionStatus ? ` — action ${humanize(actionStatus).toLowerCase()}` : ""}.`);
      state.approvals.items = state.approvals.items.filter((other) => other.id !== item.id);
      state.approvals.lastDecision = { item, verb, result };
      renderApprovals();
      renderTabs();
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
    h("p.bd-muted.bd-small", {}, `Customer ${s.customer}${s.ticket ? ` · ticket #${s.ticket}` : ""}`),
    h("p.bd-small", {}, `Requested by ${s.requestedBy || "an agent"}${s.reason ? ` — ${s.reason}` : ""}`),
    s.expires ? h("p.bd-muted.bd-small", {}, `Expires ${dateTime(s.expires)}`) : null,
    cardError ? h("p.bd-error", { role: "alert" }, errorText(cardError)) : null,
    h("div.bd-field", {},
      h("label", { for: commentId }, "Comment"),
      h("textarea.bd-input", { id: commentId, rows: 2, maxlength: 1000 }),
    ),
    h("div.bd-form__buttons", {},
      button(busy === "approve" ? "Approving…" : "Approve", () => decide("approve"), { kind: "primary", disabled: Boolean(busy), testid: "approve" }),
      button(busy === "deny" ? "Denying…" : "Deny", () => decide("deny"), { kind: "danger", disabled: Boolean(busy), testid: "deny" }),
    ),
  );
}
