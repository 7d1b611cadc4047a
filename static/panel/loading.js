// Loading a customer's context and rendering the billing view whole: select a customer,
// (force-)refresh the context, poll while the server refreshes it, page the history.

import { renderTabs, selectTab } from "./approvals.js";
import { renderAlerts, renderBanners, renderHeader, renderSections } from "./context.js";
import { clear, h } from "./dom.js";
import { age } from "./format.js";
import { renderActions } from "./forms.js";
import { renderInvestigation } from "./investigations.js";
import { handleExpired, showFatal, showLoading } from "./screens.js";
import { live, root, state } from "./state.js";
import { gettext, interpolate, ngettext } from "./i18n.js";

function shell() {
  const el = root();
  clear(el);
  el.append(
    h("header.bd-header", { id: "bd-header" }),
    h("div", { id: "bd-tabs" }),
    h("div", { id: "bd-banners" }),
    h("div", { id: "bd-view-billing", role: "tabpanel", "aria-labelledby": "bd-tab-billing" },
      h("div", { id: "bd-alerts" }),
      h("div", { id: "bd-actions" }),
      // Below the actions: the card grows when its evidence arrives, and must not move the
      // action buttons under the agent's pointer.
      h("div", { id: "bd-investigation" }),
      h("div", { id: "bd-sections" }),
    ),
    h("div", { id: "bd-view-approvals", role: "tabpanel", "aria-labelledby": "bd-tab-approvals", hidden: true }),
  );
  document.getElementById("panel").setAttribute("aria-busy", "false");
}

export async function selectCustomer(customerId) {
  state.customerId = customerId;
  state.history = { items: [], nextCursor: null, loading: false, error: null };
  showLoading();
  await refreshContext(false, { first: true });
}

export async function refreshContext(force, { first = false, quiet = false } = {}) {
  if (!state.customerId) return;
  if (force) state.refreshing = true;
  state.loading = true;
  if (!first && !quiet) renderHeader();
  try {
    // The Refresh button asks for a fresh copy from the billing provider first.
    if (force) await state.api.post(`customers/${encodeURIComponent(state.customerId)}/refresh/`);
    const ctx = await state.api.get(`customers/${encodeURIComponent(state.customerId)}/context/`);
    if (state.planOptions) ctx.plan_options = state.planOptions;
    state.ctx = ctx;
    state.ctxError = null;
    const history = ctx.payment_history || {};
    state.history.items = history.items || [];
    state.history.nextCursor = history.next_cursor || null;
    if (ctx.refreshing) scheduleRefreshPoll(ctx.as_of);
  } catch (error) {
    state.loading = false;
    state.refreshing = false;
    if (handleExpired(error)) return;
    if (first || !state.ctx) return showFatal(gettext("Could not load the billing context."), error);
    state.ctxError = error;
    renderBanners();
    renderHeader();
    return;
  }
  state.loading = false;
  state.refreshing = false;
  if (first || !document.getElementById("bd-sections")) shell();
  renderAll();
  if (force) live(interpolate(gettext("Billing data refreshed %(age)s."), { age: age(state.ctx.as_of) }, true));
}

let pollTimer = null;
let pollCount = 0;
function scheduleRefreshPoll(asOf) {
  if (pollTimer || pollCount > 5) return;
  pollCount += 1;
  pollTimer = setTimeout(async () => {
    pollTimer = null;
    if (state.ctx && state.ctx.as_of === asOf && !state.form) await refreshContext(false, { quiet: true });
  }, 2500);
}

export async function loadMoreHistory() {
  const history = state.history;
  if (!history.nextCursor || history.loading) return;
  history.loading = true;
  history.error = null;
  rerenderSections();
  try {
    const page = await state.api.get(`customers/${encodeURIComponent(state.customerId)}/payments/`, { cursor: history.nextCursor });
    history.items = history.items.concat(page.items || page.results || []);
    history.nextCursor = page.next_cursor || null;
    const loaded = (page.items || page.results || []).length;
    live(interpolate(ngettext("%(count)s more payment loaded.", "%(count)s more payments loaded.", loaded), { count: loaded }, true));
  } catch (error) {
    if (handleExpired(error)) return;
    history.error = error;
  }
  history.loading = false;
  // Focus stays on "Load more"; on the list itself once the last page is in.
  rerenderSections({ focus: "[data-testid=history-more]" });
}

function rerenderSections({ focus } = {}) {
  renderSections();
  if (focus) {
    const target = document.querySelector(focus) || document.querySelector("[data-testid=payment-history]");
    if (target) target.focus?.();
  }
}

function renderAll() {
  renderHeader();
  renderTabs();
  renderBanners();
  renderAlerts();
  renderInvestigation();
  if (!state.form) renderActions();
  renderSections();
  if (state.tab === "approvals") selectTab("approvals");
}

export function tickAge() {
  const el = document.getElementById("bd-age");
  if (el && state.ctx && state.ctx.as_of) el.textContent = interpolate(gettext("Updated %(age)s"), { age: age(state.ctx.as_of) }, true);
}
