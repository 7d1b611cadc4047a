// The six investigation cards of the brief's playbook. Each card has
//   load(api, customerId, ctx) → data        the endpoints its evidence comes from;
//   render(data, ctx, redraw) → {evidence, actions, message, messageHelp, followUp}
// evidence: what the playbook's "Investigation" names; actions: the proposed action, which
// opens the existing action form prefilled (forms.js openForm); message: the playbook's
// customer message filled from this customer's data (GET playbook/{scenario}/).

import { h } from "./dom.js";
import { amountOn, dateTime, longDate, money, toMajorString } from "./format.js";
import { limitWords } from "./policy.js";
import { openForm } from "./forms.js";
import { actionMode, meAction } from "./role.js";
import { state } from "./state.js";
import { actionName } from "./vocabulary.js";
import { button, errorText, row, statusBadge } from "./widgets.js";
import { gettext, interpolate, language, ngettext } from "./i18n.js";

// The brief's resolution time per scenario.
export const SCENARIOS = [
  { key: "charged_twice", label: gettext("Charged twice"), time: gettext("2–3 min") },
  { key: "payment_failed", label: gettext("Payment failed"), time: gettext("3–5 min") },
  { key: "plan_change", label: gettext("Plan change"), time: gettext("2–4 min") },
  { key: "refund", label: gettext("Refund"), time: gettext("5–10 min") },
  { key: "overcharge", label: gettext("Overcharged"), time: gettext("5–7 min") },
  { key: "tax_invoice", label: gettext("Tax invoice"), time: gettext("1–2 min") },
];

const path = (customerId, rest) => `customers/${encodeURIComponent(customerId)}/${rest}`;

/**
 * The scenario's filled customer message. Asked with if_ready, so a message whose data is
 * not there yet (no refund made, no plan changed) answers ready=false with what is missing,
 * not an error; any other failure is kept as the answer too.
 */
async function playbookMessage(api, customerId, scenario, query = {}) {
  try {
    const value = await api.get(path(customerId, `playbook/${scenario}/`), { ...query, if_ready: "true" });
    return value && value.ready === false ? { missing: value.missing } : { value };
  } catch (error) {
    if (error && error.status === 401) throw error;
    return { error };
  }
}

function message(result) {
  return result && result.value ? result.value.message : "";
}

/** Why there is no message yet: the card's own words, else the server's. */
function messageHelp(result, fallback) {
  if (!result || result.value) return "";
  const why = (result.missing && result.missing.message) || (result.error && result.error.message) || "";
  return fallback || why;
}

/** The proposed action: a button opening the action form, prefilled; or why the role cannot. */
function propose(kind, label, prefill, { confirmNow = false, testid = "investigation-action", primary = true } = {}) {
  const mode = actionMode(kind);
  if (mode === "not_permitted") {
    return h("p.bd-muted", { "data-testid": `${testid}-not-permitted` }, interpolate(gettext("%(action)s: not permitted for your role — ask a Manager."), { action: actionName(kind) }, true));
  }
  const action = meAction(kind);
  return h("div.bd-inv__action", {},
    button(mode === "direct" ? label : interpolate(gettext("Request approval: %(action)s"), { action: label }, true), () => openForm(kind, prefill, { confirmNow }), {
      kind: primary ? "primary" : "secondary", small: true, testid, "data-kind": kind,
    }),
    mode === "direct" && action && action.limit_display
      ? h("span.bd-help", {}, interpolate(gettext("Your role: %(limit)s; above that it goes for approval."), { limit: limitWords(action) }, true))
      : null,
  );
}

function list(items, testid) {
  return h("ul.bd-inv__list", { "data-testid": testid }, items.map((item) => h("li", {}, item)));
}

function countryName(code) {
  if (!code) return "";
  try {
    return new Intl.DisplayNames([language()], { type: "region" }).of(code) || code;
  } catch {
    return code;
  }
}

function directionWords(direction) {
  if (direction === "upgrade") return gettext("upgrade");
  if (direction === "downgrade") return gettext("downgrade");
  return direction || "";
}

function major(value) {
  return value ? toMajorString(value.amount, value.currency, value.exponent) : "";
}

// --- 1. "I was charged twice" ----------------------------------------------------------------

const chargedTwice = {
  async load(api, customerId) {
    const [duplicates, playbook] = await Promise.all([
      api.get(path(customerId, "duplicates/")),
      playbookMessage(api, customerId, "charged_twice"),
    ]);
    return { duplicates, playbook };
  },
  render({ duplicates, playbook }) {
    const pair = (duplicates.pairs || [])[0];
    if (!pair) {
      return {
        evidence: [
          h("p", { "data-testid": "no-duplicate" }, interpolate(ngettext("No two identical charges within %(count)s hour of each other.", "No two identical charges within %(count)s hours of each other.", duplicates.window_hours), { count: duplicates.window_hours }, true)),
          h("p.bd-help", {}, gettext("If the customer's statement shows two charges, one is likely a pending authorisation by their card issuer: it drops off within a few days, with nothing to refund.")),
        ],
        actions: [],
        message: message(playbook),
        messageHelp: messageHelp(playbook, gettext("The message is filled once a duplicate charge is found and refunded.")),
      };
    }
    const cause = pair.root_cause_detail || {};
    return {
      evidence: [
        h("dl.bd-dl", {},
          row(gettext("Duplicate pair"), list(pair.charges.map((c) => `${dateTime(c.created)} · ${money(c.amount)} · ${c.method || "—"} · ${c.invoice_number ? interpolate(gettext("invoice %(number)s"), { number: c.invoice_number }, true) : gettext("no invoice")}`), "duplicate-charges")),
          row(gettext("Apart"), interpolate(ngettext("%(count)s minute", "%(count)s minutes", pair.minutes_apart), { count: pair.minutes_apart }, true)),
          row(gettext("To refund"), interpolate(gettext("%(amount)s (the later charge)"), { amount: money(pair.refundable) }, true), { testid: "duplicate-refundable", emphasis: true }),
          row(gettext("Likely cause"), cause.label || pair.root_cause, { testid: "root-cause" }),
        ),
        cause.evidence ? list(cause.evidence, "root-cause-evidence") : null,
        cause.advice ? h("p.bd-help", {}, `${cause.advice} ${gettext("Payments are then monitored for 30 days.")}`) : null,
      ],
      actions: [
        propose("refund_duplicate_charge", interpolate(gettext("Refund duplicate (%(amount)s)"), { amount: money(pair.refundable) }, true),
          { charge_ids: pair.charge_ids, amount: pair.refundable }, { confirmNow: true }),
      ],
      message: message(playbook),
      messageHelp: messageHelp(playbook),
    };
  },
};

// --- 2. "My payment failed" ------------------------------------------------------------------

const paymentFailed = {
  async load(api, customerId) {
    const [failures, playbook] = await Promise.all([
      api.get(path(customerId, "failures/")),
      playbookMessage(api, customerId, "payment_failed"),
    ]);
    return { failures, playbook };
  },
  render({ failures, playbook }, ctx) {
    const open = (failures.items || []).find((f) => f.status === "open");
    const alert = ((ctx.alerts || []).find((a) => a.type === "payment_failed") || {}).data;
    if (!open && !alert) {
      return {
        evidence: [h("p", { "data-testid": "no-failure" }, gettext("No failed payment is open for this customer."))],
        actions: [],
        message: "",
        messageHelp: gettext("The message is for a customer with a failed payment."),
      };
    }
    const f = open || {};
    const a = alert || {};
    const consecutive = f.consecutive_count ?? a.consecutive_failures ?? 0;
    const next = f.next_retry_at || a.next_payment_attempt;
    const invoiceId = f.invoice_id || a.invoice_id || "";
    const sub = ctx.subscription;
    const days = playbook.value && playbook.value.data && playbook.value.data.days;
    return {
      evidence: [
        h("dl.bd-dl", {},
          row(gettext("Amount"), money(f.amount || a.amount), { emphasis: true }),
          row(gettext("Reason"), f.reason || a.reason, { testid: "failure-reason" }),
          row(gettext("Attempts"), String(f.attempt_count ?? a.attempt_count ?? 1), { testid: "failure-attempts" }),
          row(gettext("Next retry"), next ? longDate(next) : gettext("No automatic retry scheduled"), { testid: "failure-next-retry" }),
          row(gettext("In a row"), consecutive >= 3
            ? interpolate(gettext("%(count)s failures — send the suspension warning; CSM outreach follows"), { count: consecutive }, true)
            : interpolate(ngettext("%(count)s failure (suspension warning at 3)", "%(count)s failures (suspension warning at 3)", consecutive), { count: consecutive }, true), { testid: "failure-consecutive" }),
          row(gettext("Account"), sub ? statusBadge(sub.status, sub.status_label) : gettext("No subscription")),
          row(gettext("Grace period"), days ? interpolate(ngettext("Active for %(count)s more day", "Active for %(count)s more days", days), { count: days }, true) : gettext("None"), { testid: "failure-grace" }),
        ),
      ],
      actions: [
        propose("generate_payment_link", gettext("Send payment link"), { invoice_id: invoiceId }, { testid: "investigation-action" }),
        propose("update_payment_method", gettext("Card update link"), {}, { confirmNow: true, testid: "investigation-action-card", primary: false }),
        sub ? propose("extend_grace_period", gettext("Extend grace period"), { invoice_id: invoiceId }, { testid: "investigation-action-grace", primary: false }) : null,
      ],
      message: message(playbook),
      messageHelp: messageHelp(playbook, gettext("Send a payment link first: the message carries it.")),
    };
  },
};

// --- 3. "I want to change my plan" -----------------------------------------------------------

const planChange = {
  async load(api, customerId) {
    const [plans, playbook] = await Promise.all([
      api.get(path(customerId, "plan-change/")),
      playbookMessage(api, customerId, "plan_change"),
    ]);
    return { plans, playbook, previews: {} };
  },
  render(data, ctx, redraw) {
    const { plans, playbook, previews } = data;
    const current = plans.current;
    const change = plans.latest_change;
    const preview = async (option) => {
      if (previews[option.id] && previews[option.id].loading) return;
      previews[option.id] = { loading: true };
      redraw();
      try {
        const body = { subscription_id: plans.subscription_id, price_id: option.id };
        previews[option.id] = { value: await state.api.post(path(state.customerId, "plan-change/preview/"), body) };
      } catch (error) {
        previews[option.id] = { error };
      }
      redraw();
    };
    const options = (plans.options || []).map((option) => {
      const shown = previews[option.id];
      return h("li.bd-inv__plan", { "data-testid": "plan-option", "data-price": option.id },
        h("p", {}, h("strong", {}, option.display), " ",
          option.direction ? statusBadge(option.direction === "upgrade" ? "active" : "pending", option.direction === "upgrade" ? gettext("Upgrade") : gettext("Downgrade")) : null),
        option.difference ? h("p.bd-help", {}, `${option.difference} · ${option.effect}`) : null,
        option.features.length ? h("p.bd-help", { "data-testid": "plan-included" }, interpolate(gettext("Includes: %(features)s"), { features: option.features.join(", ") }, true)) : null,
        shown && shown.value
          ? h("dl.bd-dl", { "data-testid": "plan-preview" },
            row(gettext("Due now"), money(shown.value.amount_due_now), { emphasis: true }),
            row(gettext("New recurring"), money(shown.value.new_recurring_amount)),
            row(gettext("Effective"), longDate(shown.value.effective_date)))
          : null,
        shown && shown.error ? h("p.bd-error", {}, errorText(shown.error)) : null,
        h("div.bd-form__buttons", {},
          button(shown && shown.loading ? gettext("Previewing…") : gettext("Preview"), () => preview(option), { small: true, testid: "plan-preview-button", "aria-busy": shown && shown.loading ? "true" : null }),
          propose("change_plan", interpolate(gettext("Change to %(plan)s"), { plan: option.name }, true), { price_id: option.id }, { testid: "investigation-action", primary: false }),
        ),
      );
    });
    const included = current && (current.features.length ? current.features.join(", ") : current.description);
    return {
      evidence: [
        h("dl.bd-dl", {},
          row(gettext("Current plan"), current ? current.display : gettext("No live subscription"), { testid: "plan-current", emphasis: true }),
          current ? row(gettext("What's included"), included || "—", { testid: "plan-current-included" }) : null,
          change ? row(gettext("Latest change"), `${change.from_plan} → ${change.to_plan} (${directionWords(change.direction)}${change.effective_date ? `, ${interpolate(gettext("effective %(date)s"), { date: longDate(change.effective_date) }, true)}` : ""})`, { testid: "plan-latest-change" }) : null,
        ),
        options.length ? h("h3.bd-subtitle", {}, gettext("Options")) : h("p.bd-muted", {}, gettext("No other plan in this currency and billing interval.")),
        options.length ? h("ul.bd-inv__plans", {}, options) : null,
      ],
      actions: [],
      message: message(playbook),
      messageHelp: messageHelp(playbook, gettext("The message is filled once the plan is changed.")),
      followUp: change && change.follow_up
        ? { title: gettext("Onboarding follow-up (after the upgrade)"), message: change.follow_up.message, note: change.follow_up.note }
        : null,
    };
  },
};

// --- 4. "I want a refund" --------------------------------------------------------------------

const refund = {
  async load(api, customerId) {
    const eligibility = await api.get(path(customerId, "refund-eligibility/"));
    const [approved, denied] = await Promise.all([
      playbookMessage(api, customerId, "refund", { variant: "approved" }),
      eligibility.denied_charge_id
        ? playbookMessage(api, customerId, "refund", { variant: "denied", charge_id: eligibility.denied_charge_id })
        : null,
    ]);
    return { eligibility, approved, denied };
  },
  render({ eligibility, approved, denied }) {
    const e = eligibility;
    const action = e.action;
    const text = message(approved) || message(denied);
    return {
      evidence: [
        h("p.bd-strong", { "data-testid": "refund-summary" }, e.summary),
        h("dl.bd-dl", {},
          row(gettext("Refund window"), interpolate(ngettext("%(count)s day from the payment", "%(count)s days from the payment", e.window_days), { count: e.window_days }, true)),
          row(gettext("Refund pattern"), e.pattern.display, { testid: "refund-pattern" }),
        ),
        e.charges.length ? h("h3.bd-subtitle", {}, gettext("Recent payments")) : null,
        e.charges.length
          ? h("ul.bd-inv__list", { "data-testid": "refund-charges" }, e.charges.map((c) =>
            h("li", { "data-testid": "refund-charge", "data-eligible": c.eligible ? "true" : "false" },
              `${c.date_display} · ${money(c.amount)}${c.invoice_number ? ` · ${c.invoice_number}` : ""}`,
              h("span.bd-sub", {}, c.eligible ? `${interpolate(gettext("Refundable %(amount)s"), { amount: money(c.refundable) }, true)} · ${c.window_display}` : c.reason))))
          : null,
      ],
      actions: action
        ? [propose("issue_refund", interpolate(gettext("Refund %(amount)s"), { amount: money({ amount: action.params.amount, currency: action.params.currency, exponent: e.charges[0] && e.charges[0].amount.exponent }) }, true),
          { charge_id: action.params.charge_id, amount: major(e.charges.find((c) => c.charge_id === action.params.charge_id).refundable) })]
        : [],
      message: text,
      messageHelp: text
        ? ""
        : messageHelp(approved, gettext("The approved message (“We've processed your refund of …”) is filled once the refund is done.")),
    };
  },
};

// --- 5. "I was overcharged" ------------------------------------------------------------------

const overcharge = {
  async load(api, customerId, ctx) {
    const playbook = await playbookMessage(api, customerId, "overcharge");
    const history = (ctx.payment_history && ctx.payment_history.items) || [];
    const invoiceId = (playbook.value && playbook.value.related && playbook.value.related.invoice_id)
      || (history.find((item) => item.invoice_id) || {}).invoice_id;
    const breakdown = invoiceId ? await api.get(path(customerId, `invoices/${encodeURIComponent(invoiceId)}/breakdown/`)) : null;
    return { playbook, breakdown };
  },
  render({ playbook, breakdown }) {
    if (!breakdown) {
      return { evidence: [h("p.bd-muted", {}, gettext("No finalized invoice to take apart."))], actions: [], message: "", messageHelp: "" };
    }
    const inv = breakdown.invoice;
    const check = breakdown.error_check || {};
    const credit = (breakdown.actions || []).find((a) => a.kind === "apply_credit");
    const prefill = credit && credit.params.amount
      ? { amount: toMajorString(credit.params.amount, credit.params.currency, (check.amount || {}).exponent), description: credit.params.description }
      : null;
    return {
      evidence: [
        h("dl.bd-dl", {},
          row(gettext("Invoice"), `${inv.number || inv.id} · ${inv.period}`, { testid: "overcharge-invoice" }),
          row(gettext("Charged"), money(inv.charged), { emphasis: true }),
          breakdown.usual ? row(gettext("Usual"), `${money(breakdown.usual.amount)} (${breakdown.usual.invoice_number || gettext("previous invoice")})`) : null,
          breakdown.difference ? row(gettext("Difference"), money(breakdown.difference), { testid: "overcharge-difference" }) : null,
          breakdown.next_invoice ? row(gettext("Next invoice"), amountOn(breakdown.next_invoice.total, longDate(breakdown.next_invoice.date)), { testid: "overcharge-next" }) : null,
        ),
        h("h3.bd-subtitle", {}, gettext("Breakdown")),
        h("table.bd-table.bd-table--compact.bd-inv__lines", { "data-testid": "breakdown-lines" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, gettext("Line")), h("th.bd-num", { scope: "col" }, gettext("Amount")))),
          h("tbody", {}, (breakdown.lines || []).map((line) =>
            h("tr", {}, h("td.bd-wrap", {}, line.description || line.product || "—"), h("td.bd-num", {}, money(line.amount)))))),
        h("p", { "data-testid": "overcharge-explanation" }, interpolate(gettext("Why: %(explanation)s"), { explanation: breakdown.explanation }, true)),
        h("p.bd-help", { "data-testid": "overcharge-error-check" }, check.display || ""),
      ],
      actions: check.genuine_error && prefill
        ? [propose("apply_credit", interpolate(gettext("Credit %(amount)s"), { amount: money(check.amount) }, true), prefill)]
        : [],
      message: message(playbook),
      messageHelp: messageHelp(playbook),
    };
  },
};

// --- 6. "I need a tax invoice" ---------------------------------------------------------------

const taxInvoice = {
  async load(api, customerId) {
    const [tax, playbook] = await Promise.all([
      api.get(path(customerId, "tax/")),
      playbookMessage(api, customerId, "tax_invoice"),
    ]);
    return { tax, playbook };
  },
  render({ tax, playbook }) {
    const j = tax.jurisdiction || {};
    const where = [countryName(j.country), j.state].filter(Boolean).join(", ");
    const rates = (j.tax_rates || []).map((r) => r.display).join(", ");
    const invoice = (tax.invoices || [])[0];
    return {
      evidence: [
        h("dl.bd-dl", {},
          row(gettext("Jurisdiction"), [where || gettext("Unknown (no country on file)"), rates, j.treatment].filter(Boolean).join(" · "), { testid: "tax-jurisdiction" }),
          row(gettext("Tax ID"), tax.tax_ids.length ? tax.tax_ids.map((t) => `${t.label} ${t.value}`).join(", ") : gettext("None on file"), { testid: "tax-id" }),
          row(gettext("Billing address"), tax.address_display || gettext("None on file"), { testid: "tax-address" }),
          invoice ? row(gettext("Invoice"), `${invoice.number || invoice.id} · ${invoice.period} · ${money(invoice.total)} (${interpolate(gettext("tax %(amount)s"), { amount: money(invoice.tax) }, true)})`, { testid: "tax-invoice" }) : null,
        ),
        h(tax.missing_display ? "p.bd-strong" : "p.bd-muted", { "data-testid": "tax-missing" },
          tax.missing_display || gettext("Nothing is missing: the invoice can be sent as it is.")),
      ],
      actions: invoice
        ? [propose("send_tax_invoice", tax.missing.length ? gettext("Complete the details and send") : gettext("Send tax invoice"), { invoice_id: invoice.id })]
        : [],
      message: message(playbook),
      messageHelp: messageHelp(playbook),
    };
  },
};

export const CARDS = {
  charged_twice: chargedTwice,
  payment_failed: paymentFailed,
  plan_change: planChange,
  refund,
  overcharge,
  tax_invoice: taxInvoice,
};
