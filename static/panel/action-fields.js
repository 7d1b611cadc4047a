// What the action forms share: the options they offer from the context (invoices,
// refundable charges), checks of what the agent typed, and small date helpers.

import { money, shortDate } from "./format.js";
import { gettext, interpolate } from "./i18n.js";

const DAY = 24 * 60 * 60 * 1000;

export function addDays(date, days) {
  return new Date(date.getTime() + days * DAY);
}

export function ymd(date) {
  return date.toISOString().slice(0, 10);
}

export function subscriptionOf(ctx) {
  return ctx.subscription || null;
}

function openInvoices(ctx) {
  const items = (ctx.payment_history && ctx.payment_history.items) || [];
  return items.filter((item) => item.invoice_id);
}

export function invoiceOptions(ctx) {
  const seen = new Set();
  const options = [];
  for (const item of openInvoices(ctx)) {
    if (seen.has(item.invoice_id)) continue;
    seen.add(item.invoice_id);
    options.push([
      item.invoice_id,
      `${item.invoice_number || item.invoice_id} · ${shortDate(item.date)} · ${money(item.amount)} · ${item.status_label || item.status}`,
      item.status,
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

export function chargeOptions(ctx) {
  return refundableCharges(ctx).map((item) => [
    item.charge_id,
    `${shortDate(item.date)} · ${money(item.amount)}${item.invoice_number ? ` · ${item.invoice_number}` : ""} (${interpolate(gettext("refundable %(amount)s"), { amount: money(item.refundable) }, true)})`,
  ]);
}

/**
 * The customer's currency and its exponent, for amounts typed in it. The exponent is
 * the server's: the customer's own when the context gives it, else that of the
 * outstanding balance, which is always in the customer's currency.
 */
export function customerCurrency(ctx) {
  const customer = ctx.customer || {};
  const currency = customer.currency || "USD";
  if (Number.isInteger(customer.currency_exponent)) return { currency, exponent: customer.currency_exponent };
  const balance = ctx.payment_status && ctx.payment_status.outstanding_balance;
  const same = balance && String(balance.currency).toUpperCase() === currency.toUpperCase();
  return { currency, exponent: same ? balance.exponent : undefined };
}

export function amountField(name, label, { help } = {}) {
  return { name, label, type: "money", help };
}

export function requiredText(value, label) {
  return String(value || "").trim() ? null : interpolate(gettext("%(field)s is required."), { field: label }, true);
}

export function positiveInt(value, label, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}) {
  const text = String(value ?? "").trim();
  if (!/^\d+$/.test(text)) return { error: interpolate(gettext("%(field)s: enter a whole number."), { field: label }, true) };
  const n = Number(text);
  if (n < min) return { error: interpolate(gettext("%(field)s: at least %(min)s."), { field: label, min }, true) };
  if (n > max) return { error: interpolate(gettext("%(field)s: at most %(max)s."), { field: label, max }, true) };
  return { value: n };
}

export function customerName(ctx) {
  return (ctx.customer && (ctx.customer.name || ctx.customer.email)) || gettext("this customer");
}
