// The action forms about the subscription: trial, grace period, pause and resume, plan
// change, cancellation (at period end or at once) and its undo ("Keep subscription"),
// seats, discount. Which of them a subscription's state allows is the server's rule: the
// context's `applicable_kinds` (the panel keeps no copy of it). Plan changes, seat changes
// and discounts are previewed (`preview`: the endpoint the form posts its params to).

import { dayCount, longDate, money, monthCount, percent as percentWords, perInterval } from "./format.js";
import { addDays, customerName, positiveInt, requiredText, subscriptionOf, ymd } from "./action-fields.js";
import { choices, label } from "./vocabulary.js";
import { gettext, interpolate, ngettext } from "./i18n.js";

/** Whether the primary subscription's state allows `kind` (the context says; no rule here). */
function allowed(ctx, kind) {
  const sub = subscriptionOf(ctx);
  return Boolean(sub && (sub.applicable_kinds || []).includes(kind));
}

function planName(ctx, sub) {
  return (ctx.account && ctx.account.plan && ctx.account.plan.name) || (sub && sub.plan && sub.plan.name) || gettext("the subscription");
}

export const SUBSCRIPTION_ACTIONS = {
  resume_subscription: {
    applies: (ctx) => allowed(ctx, "resume_subscription"),
    fields: () => [],
    defaults: () => ({}),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const pause = (sub && sub.pause_collection) || {};
      return {
        errors: {},
        params: { subscription_id: sub && sub.id },
        summary: [
          [gettext("Subscription"), planName(ctx, sub)],
          [gettext("Paused until"), pause.resumes_at ? longDate(pause.resumes_at) : gettext("Until resumed by hand")],
          [gettext("Resumes"), gettext("Now")],
        ],
        effect: interpolate(gettext("Payment collection for %(customer)s starts again now; the next invoice is collected as usual."), { customer: customerName(ctx) }, true),
      };
    },
  },
  undo_cancellation: {
    applies: (ctx) => allowed(ctx, "undo_cancellation"),
    fields: () => [],
    defaults: () => ({}),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const ends = sub && (sub.ends_at || sub.current_period_end);
      return {
        errors: {},
        params: { subscription_id: sub && sub.id },
        summary: [
          [gettext("Subscription"), planName(ctx, sub)],
          [gettext("Was ending on"), ends ? longDate(ends) : "—"],
          [gettext("After this"), gettext("Renews as before")],
        ],
        effect: sub && sub.current_period_end
          ? interpolate(gettext("The subscription of %(customer)s is no longer cancelled: it renews on %(date)s as before."), { customer: customerName(ctx), date: longDate(sub.current_period_end) }, true)
          : interpolate(gettext("The subscription of %(customer)s is no longer cancelled: it renews as before."), { customer: customerName(ctx) }, true),
      };
    },
  },
  extend_trial: {
    applies: (ctx) => allowed(ctx, "extend_trial"),
    fields: () => [{ name: "days", label: gettext("Extra days"), type: "number", min: 1, max: 90 }],
    defaults: () => ({ days: "7" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const days = positiveInt(values.days, gettext("Extra days"), { max: 365 });
      const errors = days.error ? { days: days.error } : {};
      let until = "—";
      if (!days.error && sub && sub.trial_end) until = longDate(ymd(addDays(new Date(sub.trial_end), days.value)));
      return {
        errors,
        params: days.error ? {} : { subscription_id: sub && sub.id, days: days.value },
        measure: days.error ? {} : { days: days.value },
        summary: [
          [gettext("Current trial end"), sub && sub.trial_end ? longDate(sub.trial_end) : "—"],
          [gettext("Extend by"), days.error ? "—" : dayCount(days.value)],
          [gettext("New trial end"), until],
        ],
        effect: days.error
          ? interpolate(gettext("The trial of %(customer)s runs longer; no charge until it ends."), { customer: customerName(ctx) }, true)
          : interpolate(ngettext("The trial of %(customer)s runs %(count)s day longer; no charge until it ends.", "The trial of %(customer)s runs %(count)s days longer; no charge until it ends.", days.value), { customer: customerName(ctx), count: days.value }, true),
      };
    },
  },
  extend_grace_period: {
    applies: () => false,
    fields: () => [{ name: "days", label: gettext("Keep the account active for (days)"), type: "number", min: 1, max: 30 }],
    defaults: (ctx, prefill) => ({ days: "7", invoice_id: prefill.invoice_id || "" }),
    build: (values, ctx) => {
      const days = positiveInt(values.days, gettext("Days"), { max: 60 });
      const sub = subscriptionOf(ctx);
      return {
        errors: days.error ? { days: days.error } : {},
        params: days.error
          ? {}
          : { subscription_id: sub && sub.id, days: days.value, ...(values.invoice_id ? { invoice_id: values.invoice_id } : {}) },
        measure: days.error ? {} : { days: days.value },
        summary: [
          [gettext("Grace period"), days.error ? "—" : dayCount(days.value)],
          [gettext("Active until"), days.error ? "—" : longDate(ymd(addDays(new Date(), days.value)))],
        ],
        effect: interpolate(gettext("The account of %(customer)s stays active while they update their payment method."), { customer: customerName(ctx) }, true),
      };
    },
  },
  pause_subscription: {
    applies: (ctx) => allowed(ctx, "pause_subscription"),
    fields: () => [
      { name: "behavior", label: gettext("While paused"), type: "select", options: choices("pause_behaviors") },
      { name: "resumes_at", label: gettext("Resume on"), type: "date" },
    ],
    defaults: () => ({ behavior: "void", resumes_at: ymd(addDays(new Date(), 30)) }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const errors = {};
      if (values.resumes_at && values.resumes_at <= ymd(new Date())) {
        errors.resumes_at = gettext("Pick a date in the future.");
      }
      return {
        errors,
        params: {
          subscription_id: sub && sub.id,
          behavior: values.behavior,
          ...(values.resumes_at ? { resumes_at: `${values.resumes_at}T00:00:00Z` } : {}),
        },
        summary: [
          [gettext("Subscription"), sub ? `${(ctx.account && ctx.account.plan && ctx.account.plan.name) || sub.id}` : "—"],
          [gettext("While paused"), label("pause_behaviors", values.behavior)],
          [gettext("Resumes"), values.resumes_at ? longDate(values.resumes_at) : gettext("When resumed by hand")],
        ],
        effect: values.resumes_at
          ? interpolate(gettext("Payment collection for %(customer)s stops until %(date)s."), { customer: customerName(ctx), date: longDate(values.resumes_at) }, true)
          : interpolate(gettext("Payment collection for %(customer)s stops until it is resumed."), { customer: customerName(ctx) }, true),
      };
    },
  },
  change_plan: {
    applies: (ctx) => allowed(ctx, "change_plan"),
    needsPreview: true,
    preview: "plan-change/preview/",
    fields: (ctx) => [
      { name: "price_id", label: gettext("New plan"), type: "select", options: [["", gettext("Choose a plan…")], ...planOptions(ctx)] },
    ],
    defaults: (ctx, prefill = {}) => ({ price_id: prefill.price_id || "" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const errors = {};
      if (!values.price_id) errors.price_id = gettext("Pick the new plan.");
      else if (sub && values.price_id === sub.price_id) errors.price_id = gettext("That is the current plan.");
      const target = planOptions(ctx).find(([id]) => id === values.price_id);
      return {
        errors,
        params: { subscription_id: sub && sub.id, price_id: values.price_id },
        summary: [
          [gettext("From"), (ctx.account && ctx.account.plan && ctx.account.plan.display) || "—"],
          [gettext("To"), target ? target[1] : "—"],
        ],
        effect: gettext("An upgrade takes effect now with the prorated amount invoiced; a downgrade switches at the next renewal."),
      };
    },
  },
  cancel_subscription: {
    applies: (ctx) => allowed(ctx, "cancel_subscription"),
    fields: () => [
      { name: "reason", label: gettext("Reason"), type: "select", options: choices("cancellation_feedback") },
      { name: "customer_requested", label: gettext("The customer asked for this cancellation"), type: "checkbox" },
      { name: "comment", label: gettext("Comment"), type: "textarea", maxlength: 500 },
    ],
    defaults: () => ({ reason: "other", customer_requested: true, comment: "" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const end = sub && (sub.current_period_end || (ctx.account && ctx.account.renews_at));
      return {
        errors: {},
        params: {
          subscription_id: sub && sub.id,
          reason: values.reason,
          customer_requested: Boolean(values.customer_requested),
          comment: values.comment.trim(),
        },
        customerRequested: Boolean(values.customer_requested),
        summary: [
          [gettext("Reason"), label("cancellation_feedback", values.reason)],
          [gettext("Customer requested"), values.customer_requested ? gettext("Yes") : gettext("No")],
          [gettext("Ends"), end ? longDate(end) : gettext("At the end of the period")],
        ],
        effect: end
          ? interpolate(gettext("The subscription of %(customer)s stops renewing and ends on %(date)s; they keep access until then."), { customer: customerName(ctx), date: longDate(end) }, true)
          : interpolate(gettext("The subscription of %(customer)s stops renewing and ends at the period end; they keep access until then."), { customer: customerName(ctx) }, true),
      };
    },
  },
  force_cancel: {
    applies: (ctx) => allowed(ctx, "force_cancel"),
    fields: () => [
      { name: "reason", label: gettext("Reason"), type: "select", options: choices("cancellation_feedback") },
      { name: "comment", label: gettext("Why now (for Legal)"), type: "textarea", maxlength: 500 },
    ],
    defaults: () => ({ reason: "other", comment: "" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const errors = {};
      const missing = requiredText(values.comment, gettext("A comment"));
      if (missing) errors.comment = missing;
      return {
        errors,
        params: { subscription_id: sub && sub.id, reason: values.reason, comment: values.comment.trim() },
        summary: [
          [gettext("Reason"), label("cancellation_feedback", values.reason)],
          [gettext("Comment"), values.comment],
        ],
        effect: interpolate(gettext("The subscription of %(customer)s is canceled immediately; access ends now."), { customer: customerName(ctx) }, true),
      };
    },
  },
  adjust_seats: {
    applies: (ctx) => allowed(ctx, "adjust_seats"),
    needsPreview: true,
    preview: "seats/preview/",
    fields: (ctx) => {
      const seats = subscriptionOf(ctx) && subscriptionOf(ctx).seats;
      const used = seats && Number.isInteger(seats.used) ? seats.used : null;
      return [{
        name: "quantity",
        label: gettext("Seats"),
        type: "number",
        min: Math.max(1, used || 1),
        help: used ? interpolate(ngettext("%(count)s seat is in use.", "%(count)s seats are in use.", used), { count: used }, true) : null,
      }];
    },
    defaults: (ctx) => {
      const seats = subscriptionOf(ctx) && subscriptionOf(ctx).seats;
      return { quantity: seats ? String(seats.total) : "" };
    },
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const seats = sub && sub.seats;
      const used = seats && Number.isInteger(seats.used) ? seats.used : null;
      const qty = positiveInt(values.quantity, gettext("Seats"), { max: 100000 });
      const errors = {};
      if (qty.error) errors.quantity = qty.error;
      // The server refuses both (below_seats_used, same_quantity); said here before anything is sent.
      else if (used !== null && qty.value < used) {
        errors.quantity = interpolate(ngettext("%(count)s seat is in use; the count cannot go below %(count)s.", "%(count)s seats are in use; the count cannot go below %(count)s.", used), { count: used }, true);
      } else if (seats && qty.value === seats.total) {
        errors.quantity = interpolate(ngettext("The subscription already has %(count)s seat; enter a different count.", "The subscription already has %(count)s seats; enter a different count.", seats.total), { count: seats.total }, true);
      }
      return {
        errors,
        params: qty.error ? {} : { subscription_id: sub && sub.id, quantity: qty.value, ...(seats && seats.item_id ? { item_id: seats.item_id } : {}) },
        summary: [
          [gettext("Seats now"), seats ? (used !== null ? interpolate(gettext("%(total)s (%(used)s in use)"), { total: seats.total, used }, true) : String(seats.total)) : "—"],
          [gettext("New seat count"), qty.error ? "—" : String(qty.value)],
        ],
        effect: gettext("The seat count changes now; the difference for the rest of this period is prorated on the next invoice."),
      };
    },
  },
  apply_discount: {
    applies: (ctx) => allowed(ctx, "apply_discount"),
    needsPreview: true,
    preview: "discount/preview/",
    fields: () => [
      { name: "percent_off", label: gettext("Discount (%)"), type: "number", min: 1, max: 100, step: "0.01" },
      { name: "duration", label: gettext("Applies to"), type: "select", options: choices("discount_durations") },
      { name: "duration_in_months", label: gettext("Months (for “some months”)"), type: "number", min: 1, max: 36 },
    ],
    defaults: () => ({ percent_off: "10", duration: "once", duration_in_months: "3" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const errors = {};
      const text = String(values.percent_off || "").trim();
      const percent = Number(text);
      if (!/^\d+(\.\d{1,2})?$/.test(text) || percent <= 0 || percent > 100) {
        errors.percent_off = gettext("Enter a percentage between 0 and 100 (at most 2 decimals).");
      }
      let months = null;
      if (values.duration === "repeating") {
        const m = positiveInt(values.duration_in_months, gettext("Months"), { max: 36 });
        if (m.error) errors.duration_in_months = m.error;
        else months = m.value;
      }
      const applies = label("discount_durations", values.duration);
      return {
        errors,
        params: {
          subscription_id: sub && sub.id,
          percent_off: text,
          duration: values.duration,
          ...(months ? { duration_in_months: months } : {}),
        },
        measure: errors.percent_off ? {} : { percent },
        summary: [
          [gettext("Discount"), errors.percent_off ? "—" : percentWords(text)],
          [gettext("Applies to"), months ? monthCount(months) : applies],
        ],
        effect: errors.percent_off
          ? interpolate(gettext("The subscription of %(customer)s gets a discount (%(applies)s)."), { customer: customerName(ctx), applies: months ? monthCount(months) : applies }, true)
          : interpolate(gettext("The subscription of %(customer)s gets %(percent)s off (%(applies)s)."), { customer: customerName(ctx), percent: percentWords(text), applies: months ? monthCount(months) : applies }, true),
      };
    },
  },
};

function planOptions(ctx) {
  const prices = ctx.plan_options || [];
  return prices.map((p) => [
    p.id || p.price_id,
    p.display || `${p.name || p.product_name || p.id} (${p.interval ? perInterval(money(p.amount || p.price), p.interval) : money(p.amount || p.price)})`,
  ]);
}
