// The action forms about the subscription: trial, grace period, pause and resume, plan
// change, cancellation (at period end or at once) and its undo ("Keep subscription"),
// seats, discount. Which of them a subscription's state allows is the server's rule: the
// context's `applicable_kinds` (the panel keeps no copy of it). Plan changes, seat changes
// and discounts are previewed (`preview`: the endpoint the form posts its params to).

import { longDate, money } from "./format.js";
import { addDays, customerName, positiveInt, requiredText, subscriptionOf, ymd } from "./action-fields.js";
import { choices, label } from "./vocabulary.js";

/** Whether the primary subscription's state allows `kind` (the context says; no rule here). */
function allowed(ctx, kind) {
  const sub = subscriptionOf(ctx);
  return Boolean(sub && (sub.applicable_kinds || []).includes(kind));
}

function planName(ctx, sub) {
  return (ctx.account && ctx.account.plan && ctx.account.plan.name) || (sub && sub.plan && sub.plan.name) || "the subscription";
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
          ["Subscription", planName(ctx, sub)],
          ["Paused until", pause.resumes_at ? longDate(pause.resumes_at) : "Until resumed by hand"],
          ["Resumes", "Now"],
        ],
        effect: `Payment collection for ${customerName(ctx)} starts again now; the next invoice is collected as usual.`,
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
          ["Subscription", planName(ctx, sub)],
          ["Was ending on", ends ? longDate(ends) : "—"],
          ["After this", "Renews as before"],
        ],
        effect: `${customerName(ctx)}'s subscription is no longer cancelled: it renews${sub && sub.current_period_end ? ` on ${longDate(sub.current_period_end)}` : ""} as before.`,
      };
    },
  },
  extend_trial: {
    applies: (ctx) => allowed(ctx, "extend_trial"),
    fields: () => [{ name: "days", label: "Extra days", type: "number", min: 1, max: 90 }],
    defaults: () => ({ days: "7" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const days = positiveInt(values.days, "Extra days", { max: 365 });
      const errors = days.error ? { days: days.error } : {};
      let until = "—";
      if (!days.error && sub && sub.trial_end) until = longDate(ymd(addDays(new Date(sub.trial_end), days.value)));
      return {
        errors,
        params: days.error ? {} : { subscription_id: sub && sub.id, days: days.value },
        measure: days.error ? {} : { days: days.value },
        summary: [
          ["Current trial end", sub && sub.trial_end ? longDate(sub.trial_end) : "—"],
          ["Extend by", days.error ? "—" : `${days.value} days`],
          ["New trial end", until],
        ],
        effect: `The trial of ${customerName(ctx)} runs ${days.error ? "longer" : `${days.value} days longer`}; no charge until it ends.`,
      };
    },
  },
  extend_grace_period: {
    applies: () => false,
    fields: () => [{ name: "days", label: "Keep the account active for (days)", type: "number", min: 1, max: 30 }],
    defaults: (ctx, prefill) => ({ days: "7", invoice_id: prefill.invoice_id || "" }),
    build: (values, ctx) => {
      const days = positiveInt(values.days, "Days", { max: 60 });
      const sub = subscriptionOf(ctx);
      return {
        errors: days.error ? { days: days.error } : {},
        params: days.error
          ? {}
          : { subscription_id: sub && sub.id, days: days.value, ...(values.invoice_id ? { invoice_id: values.invoice_id } : {}) },
        measure: days.error ? {} : { days: days.value },
        summary: [
          ["Grace period", days.error ? "—" : `${days.value} days`],
          ["Active until", days.error ? "—" : longDate(ymd(addDays(new Date(), days.value)))],
        ],
        effect: `${customerName(ctx)}'s account stays active while they update their payment method.`,
      };
    },
  },
  pause_subscription: {
    applies: (ctx) => allowed(ctx, "pause_subscription"),
    fields: () => [
      { name: "behavior", label: "While paused", type: "select", options: choices("pause_behaviors") },
      { name: "resumes_at", label: "Resume on", type: "date" },
    ],
    defaults: () => ({ behavior: "void", resumes_at: ymd(addDays(new Date(), 30)) }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const errors = {};
      if (values.resumes_at && values.resumes_at <= ymd(new Date())) {
        errors.resumes_at = "Pick a date in the future.";
      }
      return {
        errors,
        params: {
          subscription_id: sub && sub.id,
          behavior: values.behavior,
          ...(values.resumes_at ? { resumes_at: `${values.resumes_at}T00:00:00Z` } : {}),
        },
        summary: [
          ["Subscription", sub ? `${(ctx.account && ctx.account.plan && ctx.account.plan.name) || sub.id}` : "—"],
          ["While paused", label("pause_behaviors", values.behavior)],
          ["Resumes", values.resumes_at ? longDate(values.resumes_at) : "When resumed by hand"],
        ],
        effect: `Payment collection for ${customerName(ctx)} stops until ${values.resumes_at ? longDate(values.resumes_at) : "it is resumed"}.`,
      };
    },
  },
  change_plan: {
    applies: (ctx) => allowed(ctx, "change_plan"),
    needsPreview: true,
    preview: "plan-change/preview/",
    fields: (ctx) => [
      { name: "price_id", label: "New plan", type: "select", options: [["", "Choose a plan…"], ...planOptions(ctx)] },
    ],
    defaults: (ctx, prefill = {}) => ({ price_id: prefill.price_id || "" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const errors = {};
      if (!values.price_id) errors.price_id = "Pick the new plan.";
      else if (sub && values.price_id === sub.price_id) errors.price_id = "That is the current plan.";
      const target = planOptions(ctx).find(([id]) => id === values.price_id);
      return {
        errors,
        params: { subscription_id: sub && sub.id, price_id: values.price_id },
        summary: [
          ["From", (ctx.account && ctx.account.plan && ctx.account.plan.display) || "—"],
          ["To", target ? target[1] : "—"],
        ],
        effect: "An upgrade takes effect now with the prorated amount invoiced; a downgrade switches at the next renewal.",
      };
    },
  },
  cancel_subscription: {
    applies: (ctx) => allowed(ctx, "cancel_subscription"),
    fields: () => [
      { name: "reason", label: "Reason", type: "select", options: choices("cancellation_feedback") },
      { name: "customer_requested", label: "The customer asked for this cancellation", type: "checkbox" },
      { name: "comment", label: "Comment", type: "textarea", maxlength: 500 },
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
          ["Reason", label("cancellation_feedback", values.reason)],
          ["Customer requested", values.customer_requested ? "Yes" : "No"],
          ["Ends", end ? longDate(end) : "At the end of the period"],
        ],
        effect: `${customerName(ctx)}'s subscription stops renewing and ends on ${end ? longDate(end) : "the period end"}; they keep access until then.`,
      };
    },
  },
  force_cancel: {
    applies: (ctx) => allowed(ctx, "force_cancel"),
    fields: () => [
      { name: "reason", label: "Reason", type: "select", options: choices("cancellation_feedback") },
      { name: "comment", label: "Why now (for Legal)", type: "textarea", maxlength: 500 },
    ],
    defaults: () => ({ reason: "other", comment: "" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const errors = {};
      const missing = requiredText(values.comment, "A comment");
      if (missing) errors.comment = missing;
      return {
        errors,
        params: { subscription_id: sub && sub.id, reason: values.reason, comment: values.comment.trim() },
        summary: [
          ["Reason", label("cancellation_feedback", values.reason)],
          ["Comment", values.comment],
        ],
        effect: `${customerName(ctx)}'s subscription is canceled immediately; access ends now.`,
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
        label: "Seats",
        type: "number",
        min: Math.max(1, used || 1),
        help: used ? `${used} ${used === 1 ? "seat is" : "seats are"} in use.` : null,
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
      const qty = positiveInt(values.quantity, "Seats", { max: 100000 });
      const errors = {};
      if (qty.error) errors.quantity = qty.error;
      // The server refuses both (below_seats_used, same_quantity); said here before anything is sent.
      else if (used !== null && qty.value < used) errors.quantity = `${used} seats are in use; the count cannot go below ${used}.`;
      else if (seats && qty.value === seats.total) errors.quantity = `The subscription already has ${seats.total} seats; enter a different count.`;
      return {
        errors,
        params: qty.error ? {} : { subscription_id: sub && sub.id, quantity: qty.value, ...(seats && seats.item_id ? { item_id: seats.item_id } : {}) },
        summary: [
          ["Seats now", seats ? (used !== null ? `${seats.total} (${used} in use)` : String(seats.total)) : "—"],
          ["New seat count", qty.error ? "—" : String(qty.value)],
        ],
        effect: "The seat count changes now; the difference for the rest of this period is prorated on the next invoice.",
      };
    },
  },
  apply_discount: {
    applies: (ctx) => allowed(ctx, "apply_discount"),
    needsPreview: true,
    preview: "discount/preview/",
    fields: () => [
      { name: "percent_off", label: "Discount (%)", type: "number", min: 1, max: 100, step: "0.01" },
      { name: "duration", label: "Applies to", type: "select", options: choices("discount_durations") },
      { name: "duration_in_months", label: "Months (for “some months”)", type: "number", min: 1, max: 36 },
    ],
    defaults: () => ({ percent_off: "10", duration: "once", duration_in_months: "3" }),
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const errors = {};
      const text = String(values.percent_off || "").trim();
      const percent = Number(text);
      if (!/^\d+(\.\d{1,2})?$/.test(text) || percent <= 0 || percent > 100) {
        errors.percent_off = "Enter a percentage between 0 and 100 (at most 2 decimals).";
      }
      let months = null;
      if (values.duration === "repeating") {
        const m = positiveInt(values.duration_in_months, "Months", { max: 36 });
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
          ["Discount", errors.percent_off ? "—" : `${text}%`],
          ["Applies to", months ? `${months} months` : applies],
        ],
        effect: `${customerName(ctx)}'s subscription gets ${errors.percent_off ? "a" : `${text}%`} off (${months ? `${months} months` : applies.toLowerCase()}).`,
      };
    },
  },
};

function planOptions(ctx) {
  const prices = ctx.plan_options || [];
  return prices.map((p) => [
    p.id || p.price_id,
    p.display || `${p.name || p.product_name || p.id} (${money(p.amount || p.price)}${p.interval ? `/${p.interval}` : ""})`,
  ]);
}
