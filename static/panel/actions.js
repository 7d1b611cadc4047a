// What each action kind asks for, how its parameters are built for POST /actions/,
// and how the confirmation describes it. Amounts are typed in major units of the
// customer's currency and sent as integer minor units (DESIGN.md section 11).

import { exponent, formatMoney, isoDate, longDate, money, parseMajor, toMajorString } from "./format.js";

// billing_app/api/action_params.py: REFUND_REASONS (ours, mapped to Stripe's enum).
export const REFUND_REASONS = [
  ["requested_by_customer", "Requested by customer"],
  ["service_outage", "Service outage credit"],
  ["billing_error", "Billing error"],
  ["dissatisfaction", "Customer dissatisfaction"],
  ["duplicate", "Duplicate charge"],
  ["fraudulent", "Fraudulent"],
  ["other", "Other"],
];

// Stripe's cancellation_details.feedback enumeration.
export const CANCEL_REASONS = [
  ["too_expensive", "Too expensive"],
  ["missing_features", "Missing features"],
  ["switched_service", "Switched to another service"],
  ["unused", "Not using it"],
  ["customer_service", "Customer service"],
  ["low_quality", "Quality"],
  ["too_complex", "Too complex"],
  ["other", "Other"],
];

export const PAUSE_BEHAVIORS = [
  ["void", "Void invoices while paused"],
  ["keep_as_draft", "Keep invoices as drafts"],
  ["mark_uncollectible", "Mark invoices uncollectible"],
];

export const DISCOUNT_DURATIONS = [
  ["once", "Next invoice only"],
  ["repeating", "For some months"],
  ["forever", "Forever"],
];

export const TAX_ID_TYPES = [
  ["eu_vat", "EU VAT"],
  ["gb_vat", "UK VAT"],
  ["us_ein", "US EIN"],
  ["au_abn", "AU ABN"],
  ["ca_bn", "CA BN"],
  ["in_gst", "IN GST"],
];

const DAY = 24 * 60 * 60 * 1000;

function addDays(date, days) {
  return new Date(date.getTime() + days * DAY);
}

function ymd(date) {
  return date.toISOString().slice(0, 10);
}

function subscriptionOf(ctx) {
  return ctx.subscription || null;
}

function openInvoices(ctx) {
  const items = (ctx.payment_history && ctx.payment_history.items) || [];
  return items.filter((item) => item.invoice_id);
}

function invoiceOptions(ctx) {
  const seen = new Set();
  const options = [];
  for (const item of openInvoices(ctx)) {
    if (seen.has(item.invoice_id)) continue;
    seen.add(item.invoice_id);
    options.push([
      item.invoice_id,
      `${item.invoice_number || item.invoice_id} · ${isoDate(item.date)} · ${money(item.amount)} · ${item.status_label || item.status}`,
    ]);
  }
  return options;
}

export function refundableCharges(ctx) {
  const items = (ctx.payment_history && ctx.payment_history.items) || [];
  return items.filter(
    (item) => item.charge_id && !item.disputed && item.refundable && item.refundable.amount > 0,
  );
}

function chargeOptions(ctx) {
  return refundableCharges(ctx).map((item) => [
    item.charge_id,
    `${isoDate(item.date)} · ${money(item.amount)} · ${item.invoice_number || item.charge_id} (refundable ${money(item.refundable)})`,
  ]);
}

function customerCurrency(ctx) {
  return (ctx.customer && ctx.customer.currency) || "USD";
}

function amountField(name, label, { help } = {}) {
  return { name, label, type: "money", help };
}

function requiredText(value, label) {
  return String(value || "").trim() ? null : `${label} is required.`;
}

function positiveInt(value, label, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}) {
  const text = String(value ?? "").trim();
  if (!/^\d+$/.test(text)) return { error: `${label}: enter a whole number.` };
  const n = Number(text);
  if (n < min) return { error: `${label}: at least ${min}.` };
  if (n > max) return { error: `${label}: at most ${max}.` };
  return { value: n };
}

function customerName(ctx) {
  return (ctx.customer && (ctx.customer.name || ctx.customer.email)) || "this customer";
}

/**
 * Each kind: label; fields(ctx) → field specs; defaults(ctx, prefill) → values;
 * build(values, ctx) → {params, errors, measure: {amount?, currency?, percent?, days?}, summary: [[label, value]], effect};
 * applies(ctx) → whether to offer it for this customer.
 */
export const ACTIONS = {
  generate_payment_link: {
    label: "Generate payment link",
    applies: () => true,
    fields: (ctx) => {
      const options = invoiceOptions(ctx).filter(([, text]) => !/Paid/.test(text));
      return options.length
        ? [{ name: "invoice_id", label: "Invoice", type: "select", options: [["", "The open balance"], ...options] }]
        : [];
    },
    defaults: (ctx, prefill) => ({ invoice_id: prefill.invoice_id || "" }),
    build: (values, ctx) => ({
      params: values.invoice_id ? { invoice_id: values.invoice_id } : {},
      summary: [["Invoice", values.invoice_id || "Open balance"]],
      effect: `A secure hosted payment page is created for ${customerName(ctx)}; you get the link to send.`,
    }),
  },
  resend_invoice: {
    label: "Resend invoice",
    applies: (ctx) => invoiceOptions(ctx).length > 0,
    fields: (ctx) => [{ name: "invoice_id", label: "Invoice", type: "select", options: invoiceOptions(ctx) }],
    defaults: (ctx, prefill) => ({ invoice_id: prefill.invoice_id || (invoiceOptions(ctx)[0] || [""])[0] }),
    build: (values, ctx) => {
      const errors = {};
      if (!values.invoice_id) errors.invoice_id = "Pick an invoice.";
      return {
        errors,
        params: { invoice_id: values.invoice_id },
        summary: [["Invoice", values.invoice_id]],
        effect: `The invoice is emailed again to ${(ctx.account && ctx.account.billing_email) || "the billing email"}, or its link is given for a reply.`,
      };
    },
  },
  apply_credit: {
    label: "Apply credit",
    applies: () => true,
    fields: () => [
      amountField("amount", "Credit amount"),
      { name: "description", label: "Reason (shown on the customer's balance)", type: "text", maxlength: 200 },
    ],
    defaults: (ctx, prefill) => ({ amount: prefill.amount || "", description: prefill.description || "" }),
    build: (values, ctx) => {
      const currency = customerCurrency(ctx);
      const errors = {};
      const parsed = parseMajor(values.amount, currency);
      if (!parsed.ok) errors.amount = parsed.error;
      const reason = requiredText(values.description, "A reason");
      if (reason) errors.description = reason;
      return {
        errors,
        params: parsed.ok
          ? { amount: parsed.minor, currency, description: values.description.trim() }
          : {},
        measure: parsed.ok ? { amount: parsed.minor, currency } : {},
        summary: [
          ["Amount", parsed.ok ? formatMoney(parsed.minor, currency) : "—"],
          ["Reason", values.description],
        ],
        effect: `A one-time credit of ${parsed.ok ? formatMoney(parsed.minor, currency) : "—"} is added to ${customerName(ctx)}'s balance and applied to the next invoice.`,
      };
    },
  },
  issue_refund: {
    label: "Issue refund",
    applies: (ctx) => refundableCharges(ctx).length > 0,
    fields: (ctx) => [
      { name: "charge_id", label: "Charge", type: "select", options: chargeOptions(ctx) },
      amountField("amount", "Amount to refund", { help: "Defaults to what is still refundable." }),
      { name: "reason", label: "Reason", type: "select", options: REFUND_REASONS },
    ],
    defaults: (ctx, prefill) => {
      const charges = refundableCharges(ctx);
      const charge = charges.find((c) => c.charge_id === prefill.charge_id) || charges[0];
      return {
        charge_id: charge ? charge.charge_id : "",
        amount: charge ? toMajorString(charge.refundable.amount, charge.refundable.currency) : "",
        reason: prefill.reason || "requested_by_customer",
      };
    },
    onChange: (name, values, ctx) => {
      if (name !== "charge_id") return values;
      const charge = refundableCharges(ctx).find((c) => c.charge_id === values.charge_id);
      return charge
        ? { ...values, amount: toMajorString(charge.refundable.amount, charge.refundable.currency) }
        : values;
    },
    build: (values, ctx) => {
      const errors = {};
      const charge = refundableCharges(ctx).find((c) => c.charge_id === values.charge_id);
      if (!charge) errors.charge_id = "Pick a charge to refund.";
      const currency = charge ? charge.amount.currency : customerCurrency(ctx);
      const parsed = parseMajor(values.amount, currency);
      if (!parsed.ok) errors.amount = parsed.error;
      else if (charge && parsed.minor > charge.refundable.amount) {
        errors.amount = `At most ${money(charge.refundable)} is left to refund on this charge.`;
      }
      if (!values.reason) errors.reason = "Pick a reason.";
      const reasonLabel = (REFUND_REASONS.find(([key]) => key === values.reason) || [, values.reason])[1];
      const shown = parsed.ok ? formatMoney(parsed.minor, currency) : "—";
      return {
        errors,
        params: parsed.ok && charge
          ? { charge_id: charge.charge_id, amount: parsed.minor, currency, reason: values.reason }
          : {},
        measure: parsed.ok ? { amount: parsed.minor, currency } : {},
        summary: [
          ["Charge", charge ? `${isoDate(charge.date)} · ${money(charge.amount)} (${charge.invoice_number || charge.charge_id})` : "—"],
          ["Refund", shown],
          ["Reason", reasonLabel],
        ],
        effect: `${shown} goes back to ${customerName(ctx)}'s ${charge ? charge.method || "payment method" : "payment method"}; it appears on their statement in 5–7 business days.`,
      };
    },
  },
  refund_duplicate_charge: {
    label: "Refund duplicate charge",
    applies: () => false,
    fields: () => [],
    defaults: (ctx, prefill) => ({ charge_ids: prefill.charge_ids || [], amount: prefill.amount || null }),
    build: (values, ctx) => {
      const items = (ctx.payment_history && ctx.payment_history.items) || [];
      const ids = (values.charge_ids || []).filter(Boolean);
      // The later of the pair is the one refunded.
      const pair = ids.map((id) => items.find((c) => c.charge_id === id)).filter(Boolean);
      const charge = pair.sort((a, b) => String(b.date).localeCompare(String(a.date)))[0];
      const amount = values.amount || (charge ? charge.amount : null);
      const shown = amount ? money(amount) : "the duplicate amount";
      return {
        errors: ids.length === 2 ? {} : { charge_ids: "The duplicate pair was not found." },
        params: { charge_ids: ids },
        measure: amount ? { amount: amount.amount, currency: amount.currency } : {},
        summary: [
          ["Charges", ids.join(" and ")],
          ["Refund", shown],
          ["Reason", "Duplicate charge"],
        ],
        effect: `The duplicate charge of ${shown} is refunded in full and ${customerName(ctx)}'s payments are monitored for 30 days.`,
      };
    },
  },
  extend_trial: {
    label: "Extend trial",
    applies: (ctx) => Boolean(subscriptionOf(ctx) && subscriptionOf(ctx).status === "trialing"),
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
    label: "Extend grace period",
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
    label: "Pause subscription",
    applies: (ctx) => Boolean(subscriptionOf(ctx) && !subscriptionOf(ctx).pause_collection),
    fields: () => [
      { name: "behavior", label: "While paused", type: "select", options: PAUSE_BEHAVIORS },
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
          ["While paused", (PAUSE_BEHAVIORS.find(([k]) => k === values.behavior) || [, values.behavior])[1]],
          ["Resumes", values.resumes_at ? longDate(values.resumes_at) : "When resumed by hand"],
        ],
        effect: `Payment collection for ${customerName(ctx)} stops until ${values.resumes_at ? longDate(values.resumes_at) : "it is resumed"}.`,
      };
    },
  },
  change_plan: {
    label: "Change plan",
    applies: (ctx) => Boolean(subscriptionOf(ctx)),
    needsPreview: true,
    fields: (ctx) => [
      { name: "price_id", label: "New plan", type: "select", options: [["", "Choose a plan…"], ...planOptions(ctx)] },
    ],
    defaults: () => ({ price_id: "" }),
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
    label: "Cancel subscription",
    applies: (ctx) => Boolean(subscriptionOf(ctx) && !subscriptionOf(ctx).cancel_at_period_end),
    fields: () => [
      { name: "reason", label: "Reason", type: "select", options: CANCEL_REASONS },
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
          ["Reason", (CANCEL_REASONS.find(([k]) => k === values.reason) || [, values.reason])[1]],
          ["Customer requested", values.customer_requested ? "Yes" : "No"],
          ["Ends", end ? longDate(end) : "At the end of the period"],
        ],
        effect: `${customerName(ctx)}'s subscription stops renewing and ends on ${end ? longDate(end) : "the period end"}; they keep access until then.`,
      };
    },
  },
  force_cancel: {
    label: "Force cancellation",
    applies: (ctx) => Boolean(subscriptionOf(ctx)),
    fields: () => [
      { name: "reason", label: "Reason", type: "select", options: CANCEL_REASONS },
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
          ["Reason", (CANCEL_REASONS.find(([k]) => k === values.reason) || [, values.reason])[1]],
          ["Comment", values.comment],
        ],
        effect: `${customerName(ctx)}'s subscription is canceled immediately; access ends now.`,
      };
    },
  },
  update_payment_method: {
    label: "Update payment method",
    applies: () => true,
    fields: () => [],
    defaults: () => ({}),
    build: (values, ctx) => ({
      params: {},
      summary: [["Current method", (ctx.account && ctx.account.payment_method && ctx.account.payment_method.display) || "None on file"]],
      effect: `A secure link where ${customerName(ctx)} updates their card is created (no card data passes through Billing Desk).`,
    }),
  },
  adjust_seats: {
    label: "Adjust seats",
    applies: (ctx) => Boolean(subscriptionOf(ctx) && subscriptionOf(ctx).seats),
    fields: () => [{ name: "quantity", label: "Seats", type: "number", min: 1 }],
    defaults: (ctx) => {
      const seats = subscriptionOf(ctx) && subscriptionOf(ctx).seats;
      return { quantity: seats ? String(seats.total) : "" };
    },
    build: (values, ctx) => {
      const sub = subscriptionOf(ctx);
      const seats = sub && sub.seats;
      const qty = positiveInt(values.quantity, "Seats", { max: 100000 });
      const errors = {};
      if (qty.error) errors.quantity = qty.error;
      else if (seats && qty.value === seats.total) errors.quantity = "That is the current seat count.";
      return {
        errors,
        params: qty.error ? {} : { subscription_id: sub && sub.id, quantity: qty.value, ...(seats && seats.item_id ? { item_id: seats.item_id } : {}) },
        summary: [
          ["Seats now", seats ? `${seats.total} (${seats.used} used)` : "—"],
          ["New seat count", qty.error ? "—" : String(qty.value)],
        ],
        effect: "The seat count changes now; the difference is prorated on the next invoice.",
      };
    },
  },
  apply_discount: {
    label: "Apply discount",
    applies: (ctx) => Boolean(subscriptionOf(ctx)),
    fields: () => [
      { name: "percent_off", label: "Discount (%)", type: "number", min: 1, max: 100, step: "0.01" },
      { name: "duration", label: "Applies to", type: "select", options: DISCOUNT_DURATIONS },
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
      const label = (DISCOUNT_DURATIONS.find(([k]) => k === values.duration) || [, values.duration])[1];
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
          ["Applies to", months ? `${months} months` : label],
        ],
        effect: `${customerName(ctx)}'s subscription gets ${errors.percent_off ? "a" : `${text}%`} off (${months ? `${months} months` : label.toLowerCase()}).`,
      };
    },
  },
  send_tax_invoice: {
    label: "Send tax invoice",
    applies: (ctx) => invoiceOptions(ctx).length > 0,
    fields: (ctx) => [
      { name: "invoice_id", label: "Invoice", type: "select", options: invoiceOptions(ctx) },
      { name: "tax_id_type", label: "Tax ID type", type: "select", options: [["", "Keep current tax IDs"], ...TAX_ID_TYPES] },
      { name: "tax_id_value", label: "Tax ID", type: "text", maxlength: 64 },
      { name: "line1", label: "Address line 1", type: "text", maxlength: 200 },
      { name: "city", label: "City", type: "text", maxlength: 100 },
      { name: "postal_code", label: "Postal code", type: "text", maxlength: 20 },
      { name: "country", label: "Country (2 letters)", type: "text", maxlength: 2 },
    ],
    defaults: (ctx) => {
      const address = (ctx.customer && ctx.customer.address) || {};
      return {
        invoice_id: (invoiceOptions(ctx)[0] || [""])[0],
        tax_id_type: "",
        tax_id_value: "",
        line1: address.line1 || "",
        city: address.city || "",
        postal_code: address.postal_code || "",
        country: address.country || "",
      };
    },
    build: (values, ctx) => {
      const errors = {};
      if (!values.invoice_id) errors.invoice_id = "Pick an invoice.";
      if (values.tax_id_type && !values.tax_id_value.trim()) errors.tax_id_value = "Enter the tax ID.";
      if (values.country && !/^[A-Za-z]{2}$/.test(values.country.trim())) errors.country = "Use a 2-letter country code, such as DE.";
      const current = (ctx.customer && ctx.customer.address) || {};
      const address = {
        line1: values.line1.trim(),
        city: values.city.trim(),
        postal_code: values.postal_code.trim(),
        country: values.country.trim().toUpperCase(),
      };
      const addressChanged = Object.entries(address).some(([k, v]) => v !== (current[k] || ""));
      return {
        errors,
        params: {
          invoice_id: values.invoice_id,
          ...(values.tax_id_type ? { tax_id: { type: values.tax_id_type, value: values.tax_id_value.trim() } } : {}),
          ...(addressChanged ? { address: { ...current, ...address } } : {}),
        },
        summary: [
          ["Invoice", values.invoice_id],
          ["Tax ID", values.tax_id_type ? `${values.tax_id_type} ${values.tax_id_value}` : "Unchanged"],
          ["Address", addressChanged ? Object.values(address).filter(Boolean).join(", ") : "Unchanged"],
        ],
        effect: "The customer's tax details are updated and the invoice is sent again with them; you get the PDF link.",
      };
    },
  },
};

export function planOptions(ctx) {
  const prices = ctx.plan_options || [];
  return prices.map((p) => [
    p.id || p.price_id,
    p.display || `${p.name || p.product_name || p.id} (${money(p.amount || p.price)}${p.interval ? `/${p.interval}` : ""})`,
  ]);
}

/** The agent's own reading of the matrix before submitting; the server decides. */
export function policyNote(action, measure, me) {
  const base = me && me.workspace ? me.workspace.base_currency : "USD";
  if (!action || action.mode === "not_permitted") return { kind: "deny", text: "Your role may not do this." };
  const value = measuredValue(action, measure, base);
  const by = approverText(action, value);
  if (action.mode === "request_approval") {
    return { kind: "approval", text: `Needs approval${by}: your role may request this, not do it.` };
  }
  if (action.customer_requested_only && measure.customerRequested === false) {
    return { kind: "approval", text: `Needs approval${by}: your role may do this only when the customer asked.` };
  }
  if (action.limit === null || action.limit === undefined) {
    return { kind: "direct", text: "Within your role's limits: it happens at once." };
  }
  if (value === null) {
    if (action.measure === "amount" && measure.amount !== undefined) {
      return {
        kind: "unknown",
        text: `Your limit is ${action.limit_display}; this amount is converted to ${base} at the workspace's rate — above the limit, or with no rate, it needs approval.`,
      };
    }
    return { kind: "unknown", text: "" };
  }
  const within = action.limit_inclusive ? value <= action.limit : value < action.limit;
  if (within) return { kind: "direct", text: `Within your limit (${limitWords(action)}): it happens at once.` };
  if (action.above_limit === "deny") return { kind: "deny", text: `Above your limit (${limitWords(action)}): your role may not do this.` };
  return { kind: "approval", text: `Needs approval${by}: above your limit (${limitWords(action)}).` };
}

/** The request's size in the unit of the limit, or null when it cannot be told here. */
function measuredValue(action, measure, base) {
  if (action.measure === "amount") {
    if (measure.amount === undefined) return null;
    return (measure.currency || "").toUpperCase() === base.toUpperCase() ? measure.amount : null;
  }
  if (action.measure === "percent") return measure.percent ?? null;
  if (action.measure === "days") return measure.days ?? null;
  return null;
}

function limitWords(action) {
  return `${action.limit_inclusive ? "up to" : "below"} ${action.limit_display}`;
}

const ROLE_LABELS = { l1: "L1 Agent", l2: "L2 Agent", manager: "Manager", specialist: "Billing Specialist", vp: "VP", legal: "Legal" };

/** " by Manager": the approval route this size takes, as policy.route_for chooses it. */
function approverText(action, value) {
  const routes = [...(action.approval_routes || [])].sort((a, b) => a.threshold - b.threshold);
  let roles = ["manager"];
  if (routes.length) {
    let chosen = routes[0];
    if (value === null || value === undefined) chosen = routes[routes.length - 1];
    else {
      for (const route of routes) {
        if (route.inclusive ? value >= route.threshold : value > route.threshold) chosen = route;
      }
    }
    roles = chosen.roles || roles;
  }
  return ` by ${roles.map((r) => ROLE_LABELS[r] || r).join(" or ")}`;
}

export { exponent };
