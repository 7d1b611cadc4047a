// The billing account beside the ticket: the header (who, role, data age, Refresh), the
// stale / provider-down banners, the alerts with their one-click actions, and the sections
// of the BILLING CONTEXT screen (account, payment status and history, credits,
// subscription, lifetime value, recent actions).

import { openApprovalsButton } from "./approvals.js";
import { h } from "./dom.js";
import { age, amountOn, capitalize, dateTime, longDate, money, number, percent, perInterval, shortDate } from "./format.js";
import { openForm, quickPaymentLink } from "./forms.js";
import { paymentHistory } from "./history.js";
import { refreshContext } from "./loading.js";
import { showPicker } from "./matching.js";
import { actionLabel, actionMode } from "./role.js";
import { recentActions } from "./recent-actions.js";
import { region, state } from "./state.js";
import { banner, button, errorText, row, section, statusBadge, statusText } from "./widgets.js";
import { gettext, interpolate, ngettext } from "./i18n.js";

export function renderHeader() {
  const el = region("bd-header");
  const ctx = state.ctx;
  const customer = ctx && ctx.customer;
  const role = state.me && state.me.role;
  el.append(
    h("div.bd-header__top", {},
      h("div.bd-header__who", {},
        h("p.bd-eyebrow", {}, gettext("Billing context")),
        h("h1.bd-title", { "data-testid": "customer-name" },
          customer ? customer.name || customer.email || customer.id : "Billing Desk"),
        customer && customer.email ? h("p.bd-muted", {}, customer.email) : null,
      ),
      role ? h("span.bd-role", { title: role.source ? interpolate(gettext("Role from: %(source)s"), { source: role.source }, true) : null, "data-testid": "role" }, role.label) : null,
    ),
  );
  if (ctx) {
    el.append(
      h("div.bd-header__meta", {},
        h("span.bd-age", { id: "bd-age", "data-testid": "data-age", title: ctx.as_of ? interpolate(gettext("Synced %(when)s"), { when: dateTime(ctx.as_of) }, true) : null },
          ctx.as_of ? interpolate(gettext("Updated %(age)s"), { age: age(ctx.as_of) }, true) : gettext("Not synced yet")),
        state.refreshing ? h("span.bd-muted", {}, ` · ${gettext("refreshing…")}`) : null,
        h("span.bd-header__tools", {},
          button(state.refreshing ? gettext("Refreshing…") : gettext("Refresh"), () => refreshContext(true), {
            small: true, testid: "refresh", disabled: state.refreshing || state.loading,
          }),
          state.matches && state.matches.length > 1
            ? button(gettext("Switch customer"), () => showPicker(), { small: true, kind: "link" })
            : null,
        ),
      ),
    );
  }
}

export function renderBanners() {
  const el = region("bd-banners");
  const ctx = state.ctx;
  if (state.ctxError) {
    el.append(
      banner("danger", gettext("Could not load the billing context."), errorText(state.ctxError), {
        testid: "error-banner",
        actions: [button(gettext("Try again"), () => refreshContext(false), { small: true })],
      }),
    );
  }
  if (!ctx) return;
  if (ctx.provider_status && ctx.provider_status !== "ok") {
    el.append(
      banner(
        "danger",
        gettext("Billing provider unavailable."),
        ctx.as_of
          ? interpolate(gettext("Showing the mirrored data from %(age)s. Actions may fail until it is back."), { age: age(ctx.as_of) }, true)
          : gettext("Showing the mirrored data from the last sync. Actions may fail until it is back."),
        { testid: "provider-down-banner" },
      ),
    );
  } else if (ctx.stale) {
    el.append(
      banner("warning", gettext("This data may be out of date."), interpolate(ctx.refreshing ? gettext("Last synced %(age)s; a refresh is running.") : gettext("Last synced %(age)s."), { age: age(ctx.as_of) }, true), {
        testid: "stale-banner",
      }),
    );
  }
  if (ctx.customer && ctx.customer.deleted) {
    el.append(banner("warning", gettext("This customer was deleted in the billing system."), gettext("Showing their last known data.")));
  }
}

export function renderAlerts() {
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
          button(gettext("Send payment link"), () => quickPaymentLink(data), { kind: "primary", small: true, testid: "alert-payment-link" }),
        );
      }
      const sub = state.ctx.subscription;
      if (actionMode("extend_grace_period") !== "not_permitted" && sub && (sub.applicable_kinds || []).includes("extend_grace_period")) {
        actions.push(
          button(actionLabel("extend_grace_period"), () => openForm("extend_grace_period", { invoice_id: data.invoice_id }), { small: true }),
        );
      }
    } else if (alert.type === "duplicate_charge") {
      if (actionMode("refund_duplicate_charge") !== "not_permitted") {
        actions.push(
          button(
            actionMode("refund_duplicate_charge") === "direct" ? gettext("Refund duplicate") : gettext("Request approval: refund duplicate"),
            () => openForm("refund_duplicate_charge", { charge_ids: duplicatePair(data), amount: data.amount }, { confirmNow: true }),
            { kind: "primary", small: true, testid: "alert-refund-duplicate" },
          ),
        );
      }
    } else if (alert.type === "pending_approval") {
      const open = openApprovalsButton(data.approval_id);
      if (open) actions.push(open);
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

export function renderSections() {
  const el = region("bd-sections");
  const ctx = state.ctx;
  if (!ctx) return;
  const account = ctx.account || {};
  const plan = account.plan;
  const pm = account.payment_method;
  const status = ctx.payment_status || {};
  const sub = ctx.subscription;

  el.append(
    section(gettext("Account billing"), "section-account",
      h("dl.bd-dl", {},
        row(gettext("Current plan"), plan ? plan.display || plan.name : gettext("No subscription"), { testid: "plan", emphasis: true }),
        row(gettext("Billing cycle"), account.billing_cycle
          ? `${account.billing_cycle}${cycleNote(account, sub)}`
          : null, { testid: "billing-cycle" }),
        row(gettext("Payment method"), pm
          ? h("span", {}, pm.expires ? interpolate(gettext("%(method)s (expires %(expires)s)"), { method: pm.display, expires: pm.expires }, true) : pm.display,
            pm.expired ? h("span.bd-badge.bd-badge--danger.bd-ml", {}, gettext("Expired")) : null)
          : gettext("None on file"), { testid: "payment-method" }),
        row(gettext("Billing email"), account.billing_email, { testid: "billing-email" }),
        row(gettext("Billing address"), account.billing_address, { testid: "billing-address" }),
      ),
    ),
  );

  const last = status.last_payment;
  el.append(
    section(gettext("Payment status"), "section-payment-status",
      h("dl.bd-dl", {},
        row(gettext("Last payment"), last
          ? h("span", {}, `${amountOn(last.amount, shortDate(last.date))} `,
            statusBadge(last.succeeded ? "succeeded" : last.status || "failed", last.succeeded ? gettext("Success") : last.status_label || statusText(last.status || "failed")))
          : gettext("None yet"), { testid: "last-payment" }),
        row(gettext("Next invoice"), status.next_invoice ? amountOn(status.next_invoice.amount, shortDate(status.next_invoice.date)) : gettext("None scheduled"), { testid: "next-invoice" }),
        row(gettext("Outstanding balance"), money(status.outstanding_balance), { testid: "outstanding-balance" }),
        row(gettext("Payment failures (last 12 months)"), number(status.failures_12m ?? 0), { testid: "failures-12m" }),
      ),
    ),
  );

  el.append(section(gettext("Payment history (last 6 months)"), "section-history", paymentHistory()));

  const credits = ctx.credits || {};
  const pending = credits.pending || [];
  el.append(
    section(gettext("Credits & adjustments"), "section-credits",
      h("dl.bd-dl", {},
        row(gettext("Available credit"), money(credits.available), { testid: "available-credit", emphasis: true }),
        row(gettext("Credits applied this cycle"), money(credits.applied_this_cycle), { testid: "credits-applied" }),
        row(gettext("Pending credits"), pending.length
          ? h("ul.bd-list", {}, pending.map((p) => h("li", {}, `${money(p.amount)}${p.description ? ` — ${p.description}` : ""}`)))
          : gettext("None"), { testid: "pending-credits" }),
      ),
    ),
  );

  if (sub) {
    const seats = sub.seats;
    el.append(
      section(gettext("Subscription details"), "section-subscription",
        subscriptionState(sub),
        h("dl.bd-dl", {},
          stateDates(sub),
          row(gettext("Start date"), shortDate(sub.start_date), { testid: "start-date" }),
          row(gettext("Contract end"), sub.contract_end ? `${shortDate(sub.contract_end)}${sub.contract_term ? ` (${sub.contract_term})` : ""}` : gettext("No fixed term"), { testid: "contract-end" }),
          row(gettext("Auto-renewal"), sub.auto_renew ? gettext("Enabled") : gettext("Disabled"), { testid: "auto-renew" }),
          row(gettext("Seats"), seats ? seatsView(seats) : gettext("Not seat-based"), { testid: "seats" }),
          sub.discount ? row(gettext("Discount"), discountText(sub.discount), { testid: "discount" }) : null,
          sub.pending_change
            ? row(gettext("Scheduled change"), sub.pending_change.effective_date
              ? interpolate(gettext("%(plan)s on %(date)s"), { plan: sub.pending_change.name || sub.pending_change.price_id, date: longDate(sub.pending_change.effective_date) }, true)
              : sub.pending_change.name || sub.pending_change.price_id, { testid: "pending-change" })
            : null,
          sub.grace_period_until ? row(gettext("Grace period"), interpolate(gettext("Active until %(date)s"), { date: longDate(sub.grace_period_until) }, true), { testid: "grace-period" }) : null,
          row(gettext("Add-ons"), sub.addons && sub.addons.length
            ? h("ul.bd-list", {}, sub.addons.map((a) => h("li", {}, `${a.name} (${perInterval(money(a.price), a.interval)})`)))
            : gettext("None"), { testid: "addons" }),
        ),
        otherSubscriptions(ctx),
      ),
    );
  } else {
    el.append(section(gettext("Subscription details"), "section-subscription", h("p.bd-muted", {}, gettext("No subscription."))));
  }

  const ltv = ctx.lifetime_value || {};
  const churn = ctx.churn_risk;
  el.append(
    section(gettext("Lifetime value"), "section-ltv",
      h("dl.bd-dl", {},
        row(gettext("Total revenue"), money(ltv.total_revenue), { testid: "total-revenue" }),
        row(gettext("Months active"), ltv.months_active === undefined ? null : number(ltv.months_active), { testid: "months-active" }),
        row(gettext("MRR contribution"), money(ltv.mrr), { testid: "mrr" }),
        row(gettext("ARR contribution"), money(ltv.arr), { testid: "arr" }),
        row(gettext("Churn risk"), churn
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
    h("h3.bd-subtitle", {}, gettext("Other subscriptions")),
    h("ul.bd-list", {}, others.map((s) => h("li", {}, `${s.plan.display} · `, statusBadge(s.status, s.status_label)))),
  );
}

// The "(renews …)" note of the billing cycle: none for a paused, ending or cancelled
// subscription (the server leaves renews_at empty then); an ending one says when it ends.
function cycleNote(account, sub) {
  if (account.renews_at) return ` (${interpolate(gettext("renews %(date)s"), { date: longDate(account.renews_at) }, true)})`;
  if (sub && sub.state === "ending" && sub.ends_at) return ` (${interpolate(gettext("ends %(date)s"), { date: longDate(sub.ends_at) }, true)})`;
  return "";
}

// The subscription's state as the server states it: a badge, its sentence, and the one
// action that undoes it (Resume on a paused subscription, Keep on an ending one), offered
// when the state allows it (applicable_kinds) and the role may take it.
function subscriptionState(sub) {
  const state = sub.state || sub.status;
  if (!state || state === "active") return null;
  const undo = ["resume_subscription", "undo_cancellation"].find(
    (kind) => (sub.applicable_kinds || []).includes(kind) && actionMode(kind) !== "not_permitted",
  );
  return h(`div.bd-sub-state.bd-sub-state--${state}`, { "data-testid": "subscription-state", "data-state": state },
    h("p.bd-sub-state__line", {},
      statusBadge(state, sub.state_label || sub.status_label),
      sub.state_detail ? h("span.bd-sub-state__detail", { "data-testid": "subscription-state-detail" }, sub.state_detail) : null,
    ),
    undo
      ? h("div.bd-sub-state__actions", {},
        button(actionLabel(undo), () => openForm(undo), { kind: "primary", small: true, testid: `state-${undo}`, "data-kind": undo }))
      : null,
  );
}

// The dates of the state: resume date, end date, cancellation and end, trial end.
function stateDates(sub) {
  const pause = sub.pause_collection;
  return [
    pause ? row(gettext("Collection resumes"), pause.resumes_at ? longDate(pause.resumes_at) : gettext("When someone resumes it"), { testid: "resumes-at" }) : null,
    sub.state === "ending" ? row(gettext("Ends on"), longDate(sub.ends_at), { testid: "ends-at" }) : null,
    sub.state === "canceled" && sub.canceled_at ? row(gettext("Cancelled on"), longDate(sub.canceled_at), { testid: "canceled-at" }) : null,
    sub.state === "canceled" && sub.ended_at ? row(gettext("Ended on"), longDate(sub.ended_at), { testid: "ended-at" }) : null,
    sub.status === "trialing" && sub.trial_end ? row(gettext("Trial ends"), longDate(sub.trial_end), { testid: "trial-end" }) : null,
  ].filter(Boolean);
}

function discountText(discount) {
  const what = discount.percent_off
    ? interpolate(gettext("%(percent)s off"), { percent: percent(discount.percent_off) }, true)
    : discount.name || gettext("Coupon");
  const n = discount.duration_in_months;
  let text = what;
  if (discount.duration === "forever") text = interpolate(gettext("%(discount)s forever"), { discount: what }, true);
  else if (discount.duration === "once") text = interpolate(gettext("%(discount)s on the next invoice"), { discount: what }, true);
  else if (discount.duration === "repeating" && n) {
    text = interpolate(ngettext("%(discount)s for %(count)s month", "%(discount)s for %(count)s months", n), { discount: what, count: n }, true);
  }
  return discount.end ? `${text} (${interpolate(gettext("until %(date)s"), { date: longDate(discount.end) }, true)})` : text;
}

function seatsView(seats) {
  if (seats.used === null || seats.used === undefined) {
    return interpolate(ngettext("%(count)s seat", "%(count)s seats", seats.total), { count: seats.total }, true);
  }
  const pct = seats.utilization_pct ?? (seats.total ? Math.round((seats.used / seats.total) * 100) : 0);
  return h("span.bd-seats", {},
    interpolate(gettext("%(used)s of %(total)s (%(percent)s utilization)"), { used: seats.used, total: seats.total, percent: percent(pct) }, true),
    h("span.bd-meter", { role: "presentation" }, h("span.bd-meter__fill", { style: { width: `${Math.min(100, Math.max(0, pct))}%` } })),
  );
}
