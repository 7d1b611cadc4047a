// Billing Desk app panel: the customer's billing context beside the ticket, and the
// actions the agent's role allows. No build step; ES modules served as static files.

import { ACTIONS, policyNote } from "./actions.js";
import { ApiError, createApi } from "./api.js";
import { age, capitalize, dateTime, humanize, isoDate, longDate, money } from "./format.js";
import { clear, h, nextId } from "./dom.js";
import { createHost, readConfig } from "./host.js";

const state = {
  config: null,
  host: null,
  api: null,
  me: null,
  ticket: null,
  customerId: "",
  matches: null,
  ctx: null,
  ctxError: null,
  loading: false,
  refreshing: false,
  tab: "billing",
  history: { items: [], nextCursor: null, loading: false, error: null },
  form: null,
  approvals: { items: null, loading: false, error: null, busy: {} },
  expired: false,
};

const root = () => document.getElementById("bd-root");
const live = (text) => {
  const region = document.getElementById("bd-live");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 30);
};

// ---------------------------------------------------------------- layout

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
      h("div", { id: "bd-sections" }),
    ),
    h("div", { id: "bd-view-approvals", role: "tabpanel", "aria-labelledby": "bd-tab-approvals", hidden: true }),
  );
  document.getElementById("panel").setAttribute("aria-busy", "false");
}

function region(id) {
  return clear(document.getElementById(id));
}

function button(label, onClick, { kind = "secondary", testid, small, ...attrs } = {}) {
  return h(
    `button.bd-btn.bd-btn--${kind}${small ? ".bd-btn--small" : ""}`,
    { type: "button", onclick: onClick, "data-testid": testid, ...attrs },
    label,
  );
}

function errorText(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return String((error && error.message) || error || "Something went wrong.");
}

function banner(kind, title, body, { testid, actions } = {}) {
  return h(
    `div.bd-banner.bd-banner--${kind}`,
    { role: kind === "danger" ? "alert" : "status", "data-testid": testid },
    h("strong.bd-banner__title", {}, title),
    body ? h("span.bd-banner__body", {}, body) : null,
    actions ? h("div.bd-banner__actions", {}, actions) : null,
  );
}

// ---------------------------------------------------------------- header

function renderHeader() {
  const el = region("bd-header");
  const ctx = state.ctx;
  const customer = ctx && ctx.customer;
  const role = state.me && state.me.role;
  el.append(
    h("div.bd-header__top", {},
      h("div.bd-header__who", {},
        h("p.bd-eyebrow", {}, "Billing context"),
        h("h1.bd-title", { "data-testid": "customer-name" },
          customer ? customer.name || customer.email || customer.id : "Billing Desk"),
        customer && customer.email ? h("p.bd-muted", {}, customer.email) : null,
      ),
      role ? h("span.bd-role", { title: role.source ? `Role from: ${role.source}` : null, "data-testid": "role" }, role.label) : null,
    ),
  );
  if (ctx) {
    el.append(
      h("div.bd-header__meta", {},
        h("span.bd-age", { id: "bd-age", "data-testid": "data-age", title: ctx.as_of ? `Synced ${dateTime(ctx.as_of)}` : null },
          ctx.as_of ? `Updated ${age(ctx.as_of)}` : "Not synced yet"),
        state.refreshing ? h("span.bd-muted", {}, " · refreshing…") : null,
        h("span.bd-header__tools", {},
          button(state.refreshing ? "Refreshing…" : "Refresh", () => refreshContext(true), {
            small: true, testid: "refresh", disabled: state.refreshing || state.loading,
          }),
          state.matches && state.matches.length > 1
            ? button("Switch customer", () => showPicker(), { small: true, kind: "link" })
            : null,
        ),
      ),
    );
  }
}

function renderTabs() {
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

function selectTab(key, focus) {
  state.tab = key;
  document.getElementById("bd-view-billing").hidden = key !== "billing";
  document.getElementById("bd-view-approvals").hidden = key !== "approvals";
  renderTabs();
  if (focus) document.getElementById(`bd-tab-${key}`).focus();
  if (key === "approvals") loadApprovals();
}

function canApprove() {
  const me = state.me;
  if (!me) return false;
  if (typeof me.can_approve === "boolean") return me.can_approve;
  return Boolean(me.role && me.role.key === "manager");
}

// ---------------------------------------------------------------- banners and alerts

function renderBanners() {
  const el = region("bd-banners");
  const ctx = state.ctx;
  if (state.ctxError) {
    el.append(
      banner("danger", "Could not load the billing context.", errorText(state.ctxError), {
        testid: "error-banner",
        actions: [button("Try again", () => refreshContext(false), { small: true })],
      }),
    );
  }
  if (!ctx) return;
  if (ctx.provider_status && ctx.provider_status !== "ok") {
    el.append(
      banner(
        "danger",
        "Billing provider unavailable.",
        `Showing the mirrored data from ${ctx.as_of ? age(ctx.as_of) : "the last sync"}. Actions may fail until it is back.`,
        { testid: "provider-down-banner" },
      ),
    );
  } else if (ctx.stale) {
    el.append(
      banner("warning", "This data may be out of date.", `Last synced ${age(ctx.as_of)}${ctx.refreshing ? "; a refresh is running." : "."}`, {
        testid: "stale-banner",
      }),
    );
  }
  if (ctx.customer && ctx.customer.deleted) {
    el.append(banner("warning", "This customer was deleted in the billing system.", "Showing their last known data."));
  }
}

function renderAlerts() {
  const el = region("bd-alerts");
  const ctx = state.ctx;
  if (!ctx) return;
  for (const alert of ctx.alerts || []) {
    if (alert.type === "provider_down") continue; // shown as the banner
    const data = alert.data || {};
    const actions = [];
    if (alert.type === "payment_failed") {
      if (actionMode("generate_payment_link") === "direct") {
        actions.push(
          button("Send payment link", () => quickPaymentLink(data), { kind: "primary", small: true, testid: "alert-payment-link" }),
        );
      }
      if (actionMode("extend_grace_period") !== "not_permitted" && state.ctx.subscription) {
        actions.push(
          button(actionLabel("extend_grace_period"), () => openForm("extend_grace_period", { invoice_id: data.invoice_id }), { small: true }),
        );
      }
    } else if (alert.type === "duplicate_charge") {
      if (actionMode("refund_duplicate_charge") !== "not_permitted") {
        actions.push(
          button(
            actionMode("refund_duplicate_charge") === "direct" ? "Refund duplicate" : "Request approval: refund duplicate",
            () => openForm("refund_duplicate_charge", { charge_ids: duplicatePair(data), amount: data.amount }, { confirmNow: true }),
            { kind: "primary", small: true, testid: "alert-refund-duplicate" },
          ),
        );
      }
    } else if (alert.type === "pending_approval" && canApprove()) {
      actions.push(button("Open approvals", () => selectTab("approvals", true), { small: true }));
    }
    el.append(
      h(`div.bd-alert.bd-alert--${alert.severity || "info"}`, { role: alert.severity === "danger" ? "alert" : "status", "data-testid": `alert-${alert.type}` },
        h("p.bd-alert__message", {}, alert.message),
        actions.length ? h("div.bd-alert__actions", {}, actions) : null,
      ),
    );
  }
}

function duplicatePair(data) {
  if (Array.isArray(data.charge_ids)) return data.charge_ids;
  return [data.original_charge_id || data.first_charge_id, data.charge_id || data.duplicate_charge_id].filter(Boolean);
}

// ---------------------------------------------------------------- context sections

function row(label, value, { testid, emphasis } = {}) {
  return [
    h("dt", {}, label),
    h(`dd${emphasis ? ".bd-strong" : ""}`, { "data-testid": testid }, value === undefined || value === null || value === "" ? "—" : value),
  ];
}

function section(title, id, ...children) {
  const headingId = nextId("bd-h");
  return h("section.bd-section", { "aria-labelledby": headingId, "data-testid": id },
    h("h2.bd-section__title", { id: headingId }, title),
    ...children,
  );
}

// An action sent to Stripe whose answer was lost: open until reconciliation settles it.
const CONFIRMING = "Confirming with Stripe…";

function statusBadge(status, label) {
  const kind = {
    paid: "success", succeeded: "success", active: "success",
    failed: "danger", past_due: "danger", unpaid: "danger", uncollectible: "danger", canceled: "neutral",
    refunded: "neutral", partially_refunded: "warning", disputed: "danger", open: "warning",
    trialing: "info", paused: "warning", pending: "warning", pending_approval: "warning",
    denied: "danger", expired: "neutral", executing: "info", not_permitted: "neutral", draft: "neutral", void: "neutral",
    outcome_unknown: "warning",
  }[status] || "neutral";
  const fallback = status === "outcome_unknown" ? CONFIRMING : humanize(status);
  return h(`span.bd-badge.bd-badge--${kind}`, {}, label || fallback);
}

function renderSections() {
  const el = region("bd-sections");
  const ctx = state.ctx;
  if (!ctx) return;
  const account = ctx.account || {};
  const plan = account.plan;
  const pm = account.payment_method;
  const status = ctx.payment_status || {};
  const sub = ctx.subscription;

  el.append(
    section("Account billing", "section-account",
      h("dl.bd-dl", {},
        row("Current plan", plan ? plan.display || plan.name : "No subscription", { testid: "plan", emphasis: true }),
        row("Billing cycle", account.billing_cycle
          ? `${account.billing_cycle}${account.renews_at ? ` (renews ${longDate(account.renews_at)})` : ""}`
          : null, { testid: "billing-cycle" }),
        row("Payment method", pm
          ? h("span", {}, `${pm.display}${pm.expires ? ` (expires ${pm.expires})` : ""}`, pm.expired ? h("span.bd-badge.bd-badge--danger.bd-ml", {}, "Expired") : null)
          : "None on file", { testid: "payment-method" }),
        row("Billing email", account.billing_email, { testid: "billing-email" }),
        row("Billing address", account.billing_address, { testid: "billing-address" }),
      ),
    ),
  );

  const last = status.last_payment;
  el.append(
    section("Payment status", "section-payment-status",
      h("dl.bd-dl", {},
        row("Last payment", last
          ? h("span", {}, `${money(last.amount)} on ${isoDate(last.date)} `, statusBadge(last.succeeded ? "succeeded" : last.status || "failed", last.succeeded ? "Success" : humanize(last.status || "failed")))
          : "None yet", { testid: "last-payment" }),
        row("Next invoice", status.next_invoice ? `${money(status.next_invoice.amount)} on ${isoDate(status.next_invoice.date)}` : "None scheduled", { testid: "next-invoice" }),
        row("Outstanding balance", money(status.outstanding_balance), { testid: "outstanding-balance" }),
        row("Payment failures (last 12 months)", String(status.failures_12m ?? 0), { testid: "failures-12m" }),
      ),
    ),
  );

  el.append(section("Payment history (last 6 months)", "section-history", historyTable()));

  const credits = ctx.credits || {};
  const pending = credits.pending || [];
  el.append(
    section("Credits & adjustments", "section-credits",
      h("dl.bd-dl", {},
        row("Available credit", money(credits.available), { testid: "available-credit", emphasis: true }),
        row("Credits applied this cycle", money(credits.applied_this_cycle), { testid: "credits-applied" }),
        row("Pending credits", pending.length
          ? h("ul.bd-list", {}, pending.map((p) => h("li", {}, `${money(p.amount)}${p.description ? ` — ${p.description}` : ""}`)))
          : "None", { testid: "pending-credits" }),
      ),
    ),
  );

  if (sub) {
    const seats = sub.seats;
    el.append(
      section("Subscription details", "section-subscription",
        sub.status && sub.status !== "active" ? h("p.bd-sub-status", {}, statusBadge(sub.status), subscriptionNote(sub)) : null,
        h("dl.bd-dl", {},
          row("Start date", isoDate(sub.start_date), { testid: "start-date" }),
          row("Contract end", sub.contract_end ? `${isoDate(sub.contract_end)}${sub.contract_term ? ` (${sub.contract_term})` : ""}` : "No fixed term", { testid: "contract-end" }),
          row("Auto-renewal", sub.auto_renew ? "Enabled" : "Disabled", { testid: "auto-renew" }),
          row("Seats", seats ? seatsView(seats) : "Not seat-based", { testid: "seats" }),
          sub.discount ? row("Discount", discountText(sub.discount), { testid: "discount" }) : null,
          sub.pending_change
            ? row("Scheduled change", `${sub.pending_change.name || sub.pending_change.price_id}${sub.pending_change.effective_date ? ` on ${longDate(sub.pending_change.effective_date)}` : ""}`, { testid: "pending-change" })
            : null,
          sub.grace_period_until ? row("Grace period", `Active until ${longDate(sub.grace_period_until)}`, { testid: "grace-period" }) : null,
          row("Add-ons", sub.addons && sub.addons.length
            ? h("ul.bd-list", {}, sub.addons.map((a) => h("li", {}, `${a.name} (${money(a.price)}/${a.interval || "month"})`)))
            : "None", { testid: "addons" }),
        ),
        otherSubscriptions(ctx),
      ),
    );
  } else {
    el.append(section("Subscription details", "section-subscription", h("p.bd-muted", {}, "No subscription.")));
  }

  const ltv = ctx.lifetime_value || {};
  const churn = ctx.churn_risk;
  el.append(
    section("Lifetime value", "section-ltv",
      h("dl.bd-dl", {},
        row("Total revenue", money(ltv.total_revenue), { testid: "total-revenue" }),
        row("Months active", ltv.months_active === undefined ? null : String(ltv.months_active), { testid: "months-active" }),
        row("MRR contribution", money(ltv.mrr), { testid: "mrr" }),
        row("ARR contribution", money(ltv.arr), { testid: "arr" }),
        row("Churn risk", churn
          ? h("span", {}, h(`span.bd-badge.bd-badge--${{ low: "success", medium: "warning", high: "danger" }[churn.level] || "neutral"}`, {}, churn.label || capitalize(churn.level)),
            churn.reasons && churn.reasons.length ? ` (${churn.reasons.join(", ")})` : "")
          : null, { testid: "churn-risk" }),
      ),
    ),
  );

  el.append(recentActions());
}

function otherSubscriptions(ctx) {
  // Add-on-only subscriptions are already listed as add-ons; name the other plans.
  const others = (ctx.subscriptions || []).filter((s) => s.id !== ctx.subscription.id && s.plan);
  if (!others.length) return null;
  return h("div.bd-others", { "data-testid": "other-subscriptions" },
    h("h3.bd-subtitle", {}, "Other subscriptions"),
    h("ul.bd-list", {}, others.map((s) => h("li", {}, `${s.plan.display} · `, statusBadge(s.status, s.status_label)))),
  );
}

function subscriptionNote(sub) {
  if (sub.status === "trialing" && sub.trial_end) return ` Trial ends ${longDate(sub.trial_end)}`;
  if (sub.pause_collection) {
    const resumes = sub.pause_collection.resumes_at;
    return ` Collection paused${resumes ? ` until ${longDate(resumes)}` : ""}`;
  }
  if (sub.cancel_at_period_end) return ` Cancels on ${longDate(sub.current_period_end)}`;
  return "";
}

function discountText(discount) {
  const months = discount.duration === "repeating" && discount.duration_in_months ? ` for ${discount.duration_in_months} months` : "";
  const when = discount.duration === "forever" ? " forever" : discount.duration === "once" ? " on the next invoice" : months;
  return `${discount.percent_off ? `${discount.percent_off}% off` : discount.name || "Coupon"}${when}${discount.end ? ` (until ${longDate(discount.end)})` : ""}`;
}

function seatsView(seats) {
  if (seats.used === null || seats.used === undefined) return `${seats.total} seats`;
  const pct = seats.utilization_pct ?? (seats.total ? Math.round((seats.used / seats.total) * 100) : 0);
  return h("span.bd-seats", {},
    `${seats.used} of ${seats.total} (${pct}% utilization)`,
    h("span.bd-meter", { role: "presentation" }, h("span.bd-meter__fill", { style: { width: `${Math.min(100, Math.max(0, pct))}%` } })),
  );
}

function historyTable() {
  const items = state.history.items;
  const wrap = h("div.bd-history", {});
  if (!items.length) {
    wrap.append(h("p.bd-muted", {}, "No payments in the last 6 months."));
  } else {
    wrap.append(
      h("table.bd-table", { "data-testid": "payment-history" },
        h("thead", {}, h("tr", {}, ["Date", "Amount", "Status", "Method", "Invoice ID"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, items.map((item) =>
          h("tr", { "data-charge-id": item.charge_id || "" },
            h("td.bd-nowrap", {}, isoDate(item.date)),
            h("td.bd-num", {}, money(item.amount),
              item.refunded && item.refunded.amount ? h("span.bd-sub", {}, `−${money(item.refunded)} refunded`) : null),
            h("td.bd-nowrap", {}, statusBadge(item.disputed ? "disputed" : item.status, item.disputed ? "Disputed" : item.status_label)),
            h("td.bd-wrap", {}, item.method || "—"),
            h("td.bd-wrap", {}, item.hosted_invoice_url
              ? h("a", { href: item.hosted_invoice_url, target: "_blank", rel: "noopener noreferrer" }, item.invoice_number || item.invoice_id)
              : item.invoice_number || item.invoice_id || "—"),
          ))),
      ),
    );
  }
  if (state.history.error) wrap.append(h("p.bd-error", { role: "alert" }, errorText(state.history.error)));
  if (state.history.nextCursor) {
    wrap.append(
      button(state.history.loading ? "Loading…" : "Load more", loadMoreHistory, {
        small: true, testid: "history-more", disabled: state.history.loading,
      }),
    );
  }
  return wrap;
}

function recentActions() {
  const ctx = state.ctx;
  const approvals = ctx.pending_approvals || [];
  const actions = ctx.recent_actions || [];
  return section("Recent actions", "section-recent",
    approvals.length
      ? h("div.bd-pending", { "data-testid": "pending-approvals" },
        h("h3.bd-subtitle", {}, "Pending approvals"),
        h("ul.bd-list", {}, approvals.map((a) => h("li", {},
          `${humanize(a.kind)}${a.amount ? ` ${money(a.amount)}` : ""} — requested by ${a.requested_by || "an agent"}; waiting for ${(a.required_roles || []).map(roleLabel).join(" or ") || "an approver"}`,
        ))))
      : null,
    actions.length
      ? h("ul.bd-activity", { "data-testid": "recent-actions" }, actions.map((a) => h("li", {},
        h("span.bd-activity__what", {}, `${humanize(a.kind)}${a.amount ? ` · ${money(a.amount)}` : ""}`),
        statusBadge(a.status),
        h("span.bd-activity__meta", {}, `${a.actor || ""}${a.created_at ? ` · ${dateTime(a.created_at)}` : ""}`),
      )))
      : h("p.bd-muted", {}, "No billing actions on this customer yet."),
  );
}

function roleLabel(role) {
  return { l1: "L1 Agent", l2: "L2 Agent", manager: "Manager", specialist: "Billing Specialist", vp: "VP", legal: "Legal" }[role] || role;
}

// ---------------------------------------------------------------- actions list

function meAction(kind) {
  return state.me && (state.me.actions || []).find((a) => a.kind === kind);
}

function actionMode(kind) {
  const action = meAction(kind);
  return action ? action.mode : "not_permitted";
}

function actionLabel(kind) {
  const spec = ACTIONS[kind];
  const label = spec ? spec.label : humanize(kind);
  return actionMode(kind) === "request_approval" ? `Request approval: ${label}` : label;
}

function renderActions() {
  const el = region("bd-actions");
  if (!state.ctx || !state.me) return;
  if (state.form) {
    el.append(renderForm());
    return;
  }
  const direct = [];
  const request = [];
  for (const action of state.me.actions || []) {
    const spec = ACTIONS[action.kind];
    if (!spec || action.mode === "not_permitted" || !spec.applies(state.ctx)) continue;
    if (action.mode === "direct") {
      direct.push(
        h("li", {},
          h("button.bd-action", { type: "button", "data-kind": action.kind, "data-testid": `action-${action.kind}`, onclick: () => openForm(action.kind) },
            h("span.bd-action__label", {}, spec.label),
            action.limit_display ? h("span.bd-action__limit", {}, `${action.limit_inclusive === false ? "below" : "up to"} ${action.limit_display}`) : null,
          ),
        ),
      );
    } else {
      request.push(
        h("li", {},
          h("button.bd-action.bd-action--request", { type: "button", "data-kind": action.kind, "data-testid": `request-${action.kind}`, onclick: () => openForm(action.kind) },
            h("span.bd-action__label", {}, `Request approval: ${spec.label}`),
          ),
        ),
      );
    }
  }
  el.append(
    h("section.bd-section.bd-section--actions", { "aria-labelledby": "bd-actions-title" },
      h("h2.bd-section__title", { id: "bd-actions-title" }, "Actions"),
      direct.length ? h("ul.bd-actions", { "data-testid": "direct-actions" }, direct) : h("p.bd-muted", {}, "No direct actions for your role."),
      request.length
        ? h("details.bd-more", { open: direct.length === 0 ? true : null },
          h("summary", {}, `Request approval (${request.length})`),
          h("ul.bd-actions", { "data-testid": "request-actions" }, request))
        : null,
    ),
  );
}

// ---------------------------------------------------------------- action forms

function newKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function openForm(kind, prefill = {}, { confirmNow = false } = {}) {
  const spec = ACTIONS[kind];
  if (!spec) return;
  if (kind === "change_plan") {
    try {
      const data = await state.api.get(`customers/${encodeURIComponent(state.customerId)}/plans/`);
      state.planOptions = (data.plans || []).filter((plan) => !plan.current);
    } catch (error) {
      if (handleExpired(error)) return;
      state.planOptions = [];
      live(`Could not load the plans: ${errorText(error)}`);
    }
    state.ctx.plan_options = state.planOptions;
  }
  state.form = {
    kind,
    spec,
    step: "edit",
    values: spec.defaults(state.ctx, prefill),
    errors: {},
    built: null,
    preview: null,
    previewError: null,
    serverError: null,
    inFlight: false,
    result: null,
    // One idempotency key per opened form: a double click or a retry after a lost
    // answer resubmits the same key, and the server returns the first answer.
    key: newKey(),
    opener: document.activeElement,
  };
  if (confirmNow) review();
  else rerenderForm({ focusFirst: true });
}

function closeForm({ refresh = false } = {}) {
  const opener = state.form && state.form.opener;
  state.form = null;
  renderActions();
  if (refresh) refreshContext(false);
  const kind = opener && opener.dataset && opener.dataset.kind;
  const again = kind && document.querySelector(`#bd-actions [data-kind="${kind}"]`);
  (again || document.getElementById("bd-actions-title") || document.body).focus?.();
}

function rerenderForm({ focusFirst = false, focusSelector } = {}) {
  renderActions();
  const form = document.getElementById("bd-form");
  if (!form) return;
  if (focusSelector) {
    const target = form.querySelector(focusSelector);
    if (target) {
      target.focus();
      return;
    }
  }
  if (focusFirst) {
    const first = form.querySelector("input, select, textarea, button.bd-btn--primary");
    if (first) first.focus();
  }
  form.scrollIntoView({ block: "nearest" });
}

function renderForm() {
  const form = state.form;
  const spec = form.spec;
  const mode = actionMode(form.kind);
  const titleId = "bd-form-title";
  const container = h("div.bd-form", {
    id: "bd-form",
    role: "region",
    "aria-labelledby": titleId,
    "data-testid": "action-form",
    "data-step": form.step,
    onkeydown: (event) => {
      if (event.key === "Escape" && !form.inFlight) {
        event.preventDefault();
        closeForm({ refresh: form.step === "result" });
      }
    },
  });
  container.append(
    h("div.bd-form__head", {},
      h("h2.bd-form__title", { id: titleId, tabindex: "-1" }, mode === "request_approval" ? `Request approval: ${spec.label}` : spec.label),
      button("Close", () => closeForm({ refresh: form.step === "result" }), { kind: "link", small: true, "aria-label": "Close the form", disabled: form.inFlight }),
    ),
  );
  if (form.step === "edit") container.append(editStep());
  else if (form.step === "confirm") container.append(confirmStep());
  else container.append(resultStep());
  return container;
}

function fieldControl(field, value, error) {
  const id = `bd-f-${field.name}`;
  const describedBy = [field.help ? `${id}-help` : null, error ? `${id}-error` : null].filter(Boolean).join(" ") || null;
  const common = {
    id,
    name: field.name,
    "aria-invalid": error ? "true" : null,
    "aria-describedby": describedBy,
    onchange: (event) => onFieldChange(field, event.target),
    oninput: (event) => onFieldInput(field, event.target),
  };
  let control;
  if (field.type === "select") {
    control = h("select.bd-input", common, field.options.map(([key, label]) => h("option", { value: key, selected: key === value }, label)));
  } else if (field.type === "textarea") {
    control = h("textarea.bd-input", { ...common, rows: 3, maxlength: field.maxlength }, value || "");
  } else if (field.type === "checkbox") {
    return h("div.bd-field.bd-field--check", {},
      h("input", { ...common, type: "checkbox", checked: Boolean(value) }),
      h("label", { for: id }, field.label),
    );
  } else {
    const currency = state.ctx.customer && state.ctx.customer.currency;
    control = h("input.bd-input", {
      ...common,
      type: field.type === "money" ? "text" : field.type,
      inputmode: field.type === "money" ? "decimal" : field.type === "number" ? "numeric" : null,
      autocomplete: "off",
      min: field.min, max: field.max, step: field.step, maxlength: field.maxlength,
      value: value ?? "",
    });
    if (field.type === "money" && currency) {
      control = h("div.bd-money", {}, h("span.bd-money__currency", { "aria-hidden": "true" }, currency), control);
    }
  }
  return h("div.bd-field", {},
    h("label", { for: id }, field.type === "money" && state.ctx.customer ? `${field.label} (${state.ctx.customer.currency})` : field.label),
    control,
    field.help ? h("p.bd-help", { id: `${id}-help` }, field.help) : null,
    error ? h("p.bd-field-error", { id: `${id}-error` }, error) : null,
  );
}

function readValue(field, target) {
  return field.type === "checkbox" ? target.checked : target.value;
}

function onFieldInput(field, target) {
  state.form.values[field.name] = readValue(field, target);
}

function onFieldChange(field, target) {
  const form = state.form;
  form.values[field.name] = readValue(field, target);
  if (!form.spec.onChange) return;
  // A dependent field follows (the refund amount follows the charge): update it in place,
  // never re-render — a re-render between mousedown and click would swallow the click.
  const before = form.values;
  const after = form.spec.onChange(field.name, { ...before }, state.ctx);
  for (const [name, value] of Object.entries(after)) {
    if (value === before[name]) continue;
    const input = document.getElementById(`bd-f-${name}`);
    if (input) input.value = value;
  }
  form.values = after;
}

function editStep() {
  const form = state.form;
  const fields = form.spec.fields(state.ctx);
  const body = h("form.bd-form__body", {
    novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      review();
    },
  });
  if (form.serverError) body.append(h("p.bd-error", { role: "alert" }, errorText(form.serverError)));
  for (const field of fields) body.append(fieldControl(field, form.values[field.name], form.errors[field.name]));
  if (form.spec.needsPreview && form.previewError) {
    body.append(h("p.bd-error", { role: "alert", "data-testid": "preview-error" }, errorText(form.previewError)));
  }
  body.append(
    h("div.bd-form__buttons", {},
      h("button.bd-btn.bd-btn--primary", { type: "submit", "data-testid": "form-review", disabled: form.inFlight },
        form.spec.needsPreview ? (form.inFlight ? "Previewing…" : "Preview") : "Review"),
      button("Cancel", () => closeForm(), { kind: "secondary" }),
    ),
  );
  return body;
}

async function review() {
  const form = state.form;
  const built = form.spec.build(form.values, state.ctx);
  form.errors = built.errors || {};
  form.built = built;
  if (Object.keys(form.errors).length) {
    const first = Object.keys(form.errors)[0];
    rerenderForm({ focusSelector: `#bd-f-${first}` });
    live(`Check the form: ${Object.values(form.errors).join(" ")}`);
    return;
  }
  if (form.spec.needsPreview) {
    form.inFlight = true;
    form.previewError = null;
    rerenderForm();
    try {
      form.preview = await state.api.post(`customers/${encodeURIComponent(state.customerId)}/plan-change/preview/`, built.params);
    } catch (error) {
      form.previewError = error;
      form.inFlight = false;
      if (handleExpired(error)) return;
      rerenderForm({ focusSelector: "#bd-f-price_id" });
      return;
    }
    form.inFlight = false;
    if (state.form !== form) return;
  }
  form.step = "confirm";
  rerenderForm({ focusSelector: "[data-testid=form-confirm]" });
}

function previewView(preview) {
  const lines = preview.lines || [];
  return h("div.bd-preview", { "data-testid": "plan-preview" },
    h("h3.bd-subtitle", {}, `Preview: ${preview.direction === "downgrade" ? "downgrade" : "upgrade"}`),
    lines.length
      ? h("table.bd-table.bd-table--compact", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Line"), h("th.bd-num", { scope: "col" }, "Amount"))),
        h("tbody", {}, lines.map((line) => h("tr", {}, h("td", {}, line.description), h("td.bd-num", {}, money(line.amount))))))
      : h("p.bd-muted", {}, "No proration lines."),
    h("dl.bd-dl", {},
      row("Amount due now", money(preview.amount_due_now), { testid: "preview-due-now", emphasis: true }),
      row("New recurring amount", money(preview.new_recurring_amount), { testid: "preview-recurring" }),
      row("Effective date", longDate(preview.effective_date), { testid: "preview-effective" }),
    ),
  );
}

function confirmStep() {
  const form = state.form;
  const built = form.built;
  const action = meAction(form.kind);
  const note = policyNote(action, { ...(built.measure || {}), customerRequested: built.customerRequested }, state.me);
  const customer = state.ctx.customer || {};
  const params = { ...built.params };
  if (form.preview && form.preview.proration_date) params.proration_date = form.preview.proration_date;
  form.params = params;
  return h("div.bd-form__body", {},
    h("p.bd-confirm__lead", {}, "Check what will happen:"),
    h("dl.bd-dl.bd-dl--confirm", { "data-testid": "confirm-summary" },
      row("Customer", `${customer.name || customer.email || ""} (${customer.id || state.customerId})`),
      built.summary.map(([label, value]) => row(label, value)),
    ),
    form.preview ? previewView(form.preview) : null,
    h("p.bd-effect", {}, built.effect),
    note.text ? h(`p.bd-policy.bd-policy--${note.kind}`, { "data-testid": "policy-note" }, note.text) : null,
    form.serverError ? h("p.bd-error", { role: "alert", "data-testid": "form-error" }, errorText(form.serverError)) : null,
    outcomeOpen(form.serverError)
      ? h("p.bd-help", { "data-testid": "outcome-open-help" },
        "Billing Desk records that action as soon as Stripe answers (usually within a minute) and shows it under recent actions. Do not repeat it in Stripe either.")
      : null,
    h("div.bd-form__buttons", {},
      h("button.bd-btn.bd-btn--primary", {
        type: "button",
        "data-testid": "form-confirm",
        // An earlier action on the same object is still being confirmed: sending it again
        // (under any key) is what could move money twice.
        disabled: form.inFlight || outcomeOpen(form.serverError),
        "aria-disabled": form.inFlight ? "true" : null,
        onclick: submit,
      }, form.inFlight ? "Working…" : note.kind === "approval" || actionMode(form.kind) === "request_approval" ? "Send for approval" : "Confirm"),
      button("Back", () => back(), { disabled: form.inFlight }),
    ),
  );
}

function outcomeOpen(error) {
  return error instanceof ApiError && error.code === "action_outcome_unknown";
}

function back() {
  const form = state.form;
  // After a definite refusal (4xx) nothing was done: edited parameters are a new request.
  if (form.serverError && form.serverError.status >= 400 && form.serverError.status < 500) form.key = newKey();
  form.serverError = null;
  form.step = "edit";
  form.preview = null;
  rerenderForm({ focusFirst: true });
}

async function submit(event) {
  const form = state.form;
  if (!form || form.inFlight) return;
  form.inFlight = true;
  form.serverError = null;
  if (event && event.currentTarget) {
    event.currentTarget.disabled = true;
    event.currentTarget.textContent = "Working…";
  }
  live("Submitting…");
  try {
    let result;
    try {
      result = await state.api.post("actions/", {
        kind: form.kind,
        customer_id: state.customerId,
        ticket_id: (state.ticket && state.ticket.ticketId) || "",
        params: form.params,
        idempotency_key: form.key,
      });
    } catch (error) {
      // The first submission under this key is still running: wait for its answer.
      if (!(error instanceof ApiError) || error.code !== "action_in_progress" || !error.details.action_id) throw error;
      result = await awaitAction(error.details.action_id);
    }
    form.result = result;
    form.step = "result";
    form.inFlight = false;
    if (state.form !== form) return;
    rerenderForm({ focusSelector: "#bd-form-title" });
    live(resultHeadline(result));
    refreshContext(false, { quiet: true });
  } catch (error) {
    form.inFlight = false;
    if (handleExpired(error)) return;
    form.serverError = error;
    if (state.form !== form) return;
    rerenderForm({ focusSelector: "[data-testid=form-error]" });
    live(`Not done: ${errorText(error)}`);
  }
}

async function awaitAction(actionId) {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(500 * (attempt + 1), 2000)));
    const action = await state.api.get(`actions/${encodeURIComponent(actionId)}/`);
    if (action.status !== "executing") return action;
  }
  return state.api.get(`actions/${encodeURIComponent(actionId)}/`);
}

function resultHeadline(result) {
  if (result.status === "succeeded") return "Done.";
  if (result.status === "pending_approval") return "Sent for approval.";
  if (result.status === "outcome_unknown") return CONFIRMING;
  return "The action failed.";
}

function resultStep() {
  const form = state.form;
  const result = form.result || {};
  const kind = { succeeded: "success", pending_approval: "warning", failed: "danger", outcome_unknown: "warning" }[result.status] || "info";
  const details = resultDetails(result);
  const message = result.customer_message || "";
  const messageId = nextId("bd-msg");
  return h("div.bd-form__body", {},
    h(`div.bd-result.bd-result--${kind}`, { role: "status", "data-testid": "action-result", "data-status": result.status },
      h("strong", {}, { succeeded: "Done", pending_approval: "Sent for approval", outcome_unknown: CONFIRMING }[result.status] || "Failed"),
      h("span", {}, resultMessage(result)),
    ),
    details.length ? h("dl.bd-dl", {}, details.map(([label, value]) => row(label, value))) : null,
    message
      ? h("div.bd-message", {},
        h("label", { for: messageId }, "Message for the customer"),
        h("textarea.bd-input", { id: messageId, rows: 5, readonly: true, "data-testid": "customer-message" }, message),
        h("div.bd-form__buttons", {},
          button("Copy", (event) => copyText(message, event.currentTarget), { testid: "copy-message" }),
          state.host.canReply ? button("Post as public reply", (event) => postReply(message, event.currentTarget), { testid: "post-reply" }) : null,
        ),
        state.host.canReply ? null : h("p.bd-help", {}, "Copy the message into your reply."),
      )
      : null,
    h("div.bd-form__buttons", {}, button("Done", () => closeForm({ refresh: true }), { kind: "primary", testid: "form-done" })),
  );
}

function resultMessage(result) {
  const decision = result.decision || {};
  if (result.status === "pending_approval") {
    const approval = result.approval || {};
    const roles = approval.required_roles || decision.approver_roles || [];
    const reason = approval.reason || decision.reason || "";
    return ` Waiting for ${roles.length ? roles.map(roleLabel).join(" or ") : "an approver"}${reason ? ` — ${reason}` : ""}.`;
  }
  if (result.status === "failed") {
    const error = result.error || {};
    return ` ${error.message || "The billing provider refused the action."}${error.code ? ` (${error.code})` : ""}`;
  }
  if (result.status === "executing") return " The billing provider is still working on it; refresh in a moment.";
  if (result.status === "outcome_unknown") {
    return " Stripe did not confirm this in time, so it may already be done. Billing Desk is confirming with Stripe and will record the outcome; do not retry it.";
  }
  return decision.reason ? ` ${capitalize(decision.reason)}.` : "";
}

function resultDetails(result) {
  const r = result.result || {};
  const out = [];
  const url = r.url || r.hosted_invoice_url || r.invoice_pdf || r.link;
  if (url) out.push(["Link", h("a.bd-break", { href: url, target: "_blank", rel: "noopener noreferrer", "data-testid": "result-link" }, url)]);
  if (r.amount) out.push(["Amount", money(r.amount)]);
  if (r.ending_balance) {
    // Stripe's customer balance is negative while the customer holds credit.
    const held = r.ending_balance.amount < 0;
    out.push([held ? "Credit now available" : "Balance due after", held
      ? money({ amount: -r.ending_balance.amount, currency: r.ending_balance.currency })
      : money(r.ending_balance)]);
  }
  if (r.refund_id) out.push(["Refund", r.refund_id]);
  if (r.effective_date) out.push(["Effective", longDate(r.effective_date)]);
  if (result.id) out.push(["Action id", h("code", {}, result.id)]);
  return out;
}

async function copyText(text, el) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    const area = el.closest(".bd-message").querySelector("textarea");
    area.select();
    ok = document.execCommand && document.execCommand("copy");
  }
  el.textContent = ok ? "Copied" : "Select and copy";
  live(ok ? "Message copied." : "Copy did not work: select the text and copy it.");
}

async function postReply(text, el) {
  el.disabled = true;
  try {
    const note = await state.host.reply(text);
    el.textContent = "Posted";
    live(note);
  } catch (error) {
    el.disabled = false;
    live(`Could not post the reply: ${errorText(error)}`);
  }
}

async function quickPaymentLink(data) {
  openForm("generate_payment_link", { invoice_id: data.invoice_id || "" }, { confirmNow: true });
}

// ---------------------------------------------------------------- approvals tab

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
    kind: humanize(action.kind),
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

// ---------------------------------------------------------------- customer matching

async function findCustomer() {
  const ticket = state.ticket;
  if (state.config.customerId) return selectCustomer(state.config.customerId);
  if (!ticket.requesterEmail && !(ticket.organization && ticket.organization.id)) {
    return showEmpty("This ticket has no requester email.");
  }
  return lookup(ticket.requesterEmail);
}

async function lookup(email) {
  state.lookupEmail = email;
  showLoading();
  let data;
  try {
    data = await state.api.get("customers/lookup/", {
      email,
      ticket_id: state.ticket.ticketId,
      organization_id: state.ticket.organization && state.ticket.organization.id,
    });
  } catch (error) {
    if (handleExpired(error)) return;
    return showFatal("Could not look the customer up.", error);
  }
  const matches = (data && data.matches) || [];
  state.matches = matches;
  const pinned = data.pinned_customer_id || (matches.find((m) => m.pinned) || {}).id;
  if (pinned) return selectCustomer(pinned);
  if (matches.length === 1) return selectCustomer(matches[0].id);
  if (!matches.length) return showEmpty(email ? `No billing customer matches ${email}.` : "No billing customer found.");
  return showPicker();
}

function matchLine(m) {
  const plan = m.plan ? `${m.plan.display}${m.plan.status && m.plan.status !== "active" ? ` (${humanize(m.plan.status).toLowerCase()})` : ""}` : "No subscription";
  const since = m.created ? `customer since ${isoDate(m.created)}` : "";
  return [m.email, plan, m.currency, since, m.deleted ? "deleted" : "", m.id].filter(Boolean).join(" · ");
}

function showPicker() {
  state.ctx = null;
  const el = root();
  clear(el);
  const name = "bd-match";
  const pinId = "bd-pin";
  const list = h("fieldset.bd-picker", {},
    h("legend", {}, `${state.matches.length} billing customers match this requester. Which one is it?`),
    state.matches.map((m, i) => {
      const id = `bd-match-${i}`;
      return h("div.bd-choice", {},
        h("input", { type: "radio", name, id, value: m.id, checked: i === 0 }),
        h("label", { for: id }, h("strong", {}, m.name || m.email || m.id), h("span.bd-muted.bd-small.bd-block", {}, matchLine(m))),
      );
    }),
  );
  const form = h("form.bd-state", {
    "data-testid": "customer-picker",
    onsubmit: async (event) => {
      event.preventDefault();
      const chosen = form.querySelector(`input[name=${name}]:checked`);
      if (!chosen) return;
      if (document.getElementById(pinId).checked) {
        try {
          await state.api.post(`customers/${encodeURIComponent(chosen.value)}/link/`, {
            email: state.lookupEmail || state.ticket.requesterEmail || "",
            organization_id: (state.ticket.organization && state.ticket.organization.id) || "",
          });
          live("Customer pinned to this requester.");
        } catch (error) {
          if (handleExpired(error)) return;
          live(`Could not pin the customer: ${errorText(error)}`);
        }
      }
      selectCustomer(chosen.value);
    },
  },
  h("h1.bd-title", {}, "Choose the customer"),
  list,
  h("div.bd-field.bd-field--check", {},
    h("input", { type: "checkbox", id: pinId, checked: true }),
    h("label", { for: pinId }, "Remember this customer for this requester"),
  ),
  h("div.bd-form__buttons", {}, h("button.bd-btn.bd-btn--primary", { type: "submit", "data-testid": "picker-select" }, "Show billing")),
  searchBox(),
  );
  el.append(form);
  const first = form.querySelector("input[type=radio]");
  if (first) first.focus();
}

function searchBox() {
  const id = "bd-search-email";
  return h("form.bd-search", {
    role: "search",
    onsubmit: (event) => {
      event.preventDefault();
      const value = document.getElementById(id).value.trim();
      if (!value || !/^[^@\s]+@[^@\s]+$/.test(value)) {
        document.getElementById(id).setAttribute("aria-invalid", "true");
        live("Enter an email address.");
        return;
      }
      state.config.customerId = "";
      lookup(value);
    },
  },
  h("label", { for: id }, "Search by billing email"),
  h("div.bd-search__row", {},
    h("input.bd-input", { id, type: "email", autocomplete: "off", placeholder: "billing@example.com", "data-testid": "search-email" }),
    h("button.bd-btn.bd-btn--secondary", { type: "submit" }, "Search"),
  ));
}

function showEmpty(text) {
  state.ctx = null;
  const el = root();
  clear(el);
  el.append(
    h("div.bd-state", { "data-testid": "empty-state" },
      h("h1.bd-title", {}, "No billing account found"),
      h("p", {}, text),
      h("p.bd-muted", {}, "The requester may pay with another email address. Search for the billing email:"),
      searchBox(),
    ),
  );
}

function showLoading() {
  const el = root();
  clear(el);
  el.append(
    h("div.bd-skeleton", { "aria-hidden": "true" },
      h("div.bd-skel.bd-skel--title"), h("div.bd-skel.bd-skel--line"), h("div.bd-skel.bd-skel--block"),
      h("div.bd-skel.bd-skel--line"), h("div.bd-skel.bd-skel--block")),
    h("p.bd-visually-hidden", { role: "status" }, "Loading billing context…"),
  );
  document.getElementById("panel").setAttribute("aria-busy", "true");
}

function showFatal(title, error) {
  const el = root();
  clear(el);
  el.append(
    h("div.bd-state", {},
      banner("danger", title, errorText(error), {
        testid: "error-banner",
        actions: [button("Try again", () => start(), { small: true })],
      }),
    ),
  );
  document.getElementById("panel").setAttribute("aria-busy", "false");
}

function handleExpired(error) {
  if (!(error instanceof ApiError) || error.status !== 401) return false;
  state.expired = true;
  const el = root();
  clear(el);
  el.append(
    h("div.bd-state", { "data-testid": "session-expired" },
      banner("warning", "Session expired.", state.host ? state.host.expiredMessage : "Reopen the app to continue."),
    ),
  );
  return true;
}

// ---------------------------------------------------------------- loading data

async function selectCustomer(customerId) {
  state.customerId = customerId;
  state.history = { items: [], nextCursor: null, loading: false, error: null };
  showLoading();
  await refreshContext(false, { first: true });
}

async function refreshContext(force, { first = false, quiet = false } = {}) {
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
    if (first || !state.ctx) return showFatal("Could not load the billing context.", error);
    state.ctxError = error;
    renderBanners();
    renderHeader();
    return;
  }
  state.loading = false;
  state.refreshing = false;
  if (first || !document.getElementById("bd-sections")) shell();
  renderAll();
  if (force) live(`Billing data refreshed ${age(state.ctx.as_of)}.`);
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

async function loadMoreHistory() {
  const history = state.history;
  if (!history.nextCursor || history.loading) return;
  history.loading = true;
  history.error = null;
  rerenderSections();
  try {
    const page = await state.api.get(`customers/${encodeURIComponent(state.customerId)}/payments/`, { cursor: history.nextCursor });
    history.items = history.items.concat(page.items || page.results || []);
    history.nextCursor = page.next_cursor || null;
    live(`${(page.items || page.results || []).length} more payments loaded.`);
  } catch (error) {
    if (handleExpired(error)) return;
    history.error = error;
  }
  history.loading = false;
  rerenderSections({ focus: "[data-testid=history-more]" });
}

function rerenderSections({ focus } = {}) {
  renderSections();
  if (focus) {
    const target = document.querySelector(focus) || document.querySelector("[data-testid=payment-history] tbody tr:last-child");
    if (target) target.focus?.();
  }
}

function renderAll() {
  renderHeader();
  renderTabs();
  renderBanners();
  renderAlerts();
  if (!state.form) renderActions();
  renderSections();
  if (state.tab === "approvals") selectTab("approvals");
}

function tickAge() {
  const el = document.getElementById("bd-age");
  if (el && state.ctx && state.ctx.as_of) el.textContent = `Updated ${age(state.ctx.as_of)}`;
}

function watchSize() {
  let last = 0;
  let queued = false;
  const send = () => {
    queued = false;
    const height = Math.ceil(document.getElementById("panel").getBoundingClientRect().height) + 2;
    if (height !== last && state.host) {
      last = height;
      state.host.resize(height);
    }
  };
  const schedule = () => {
    if (!queued) {
      queued = true;
      requestAnimationFrame(send);
    }
  };
  if (window.ResizeObserver) new ResizeObserver(schedule).observe(document.getElementById("panel"));
  else setInterval(schedule, 500);
  schedule();
}

async function start() {
  state.config = state.config || readConfig();
  showLoading();
  if (!state.host) {
    state.host = await createHost(state.config);
    document.documentElement.dataset.host = state.host.name;
    state.api = createApi({ base: state.config.apiBase, session: state.host.session });
    state.host.onContextChange((next) => {
      const changed = next.requesterEmail && next.requesterEmail !== (state.ticket && state.ticket.requesterEmail);
      state.ticket = next;
      if (changed && !state.config.customerId && state.me) lookup(next.requesterEmail);
    });
    watchSize();
    setInterval(tickAge, 30000);
  }
  state.ticket = state.host.context;
  try {
    state.me = await state.api.get("me/");
  } catch (error) {
    if (handleExpired(error)) return;
    return showFatal("Could not open Billing Desk.", error);
  }
  if (canApprove()) {
    state.api.get("approvals/", { status: "pending" }).then((data) => {
      state.approvals.items = Array.isArray(data) ? data : data.results || data.items || [];
      if (document.getElementById("bd-tabs")) renderTabs();
    }).catch(() => {});
  }
  await findCustomer();
}

document.documentElement.classList.add("bd-js");
start();
