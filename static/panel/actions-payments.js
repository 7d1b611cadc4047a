// The action forms about money and invoices: payment link, resend invoice, credit,
// refund, duplicate-charge refund, payment method update, tax invoice.

import { formatMoney, money, parseMajor, shortDate, toMajorString } from "./format.js";
import { choices, label } from "./vocabulary.js";
import {
  amountField,
  chargeOptions,
  customerCurrency,
  customerName,
  invoiceOptions,
  refundableCharges,
  requiredText,
} from "./action-fields.js";
import { andList, gettext, interpolate } from "./i18n.js";

/** A Money of the API in major units, as an amount field shows it ("2400.00"). */
function majorOf(value) {
  return toMajorString(value.amount, value.currency, value.exponent);
}

/** True when the customer owes nothing: no open invoice, an outstanding balance of 0. */
export function nothingToPay(ctx) {
  const due = ctx.payment_status && ctx.payment_status.outstanding_balance;
  return Boolean(due) && due.amount <= 0;
}

function nothingToPayText(ctx) {
  return interpolate(
    gettext("There is nothing to pay: %(customer)s has no open invoice and owes %(amount)s. To have the customer save a new card, use Update payment method."),
    { customer: customerName(ctx), amount: money(ctx.payment_status.outstanding_balance) },
    true,
  );
}

export const PAYMENT_ACTIONS = {
  generate_payment_link: {
    applies: () => true,
    fields: (ctx) => {
      if (nothingToPay(ctx)) {
        // Said before Review, in words: a link for $0 would only save a card.
        return [{
          name: "invoice_id",
          label: gettext("Invoice"),
          type: "select",
          options: [["", interpolate(gettext("Nothing open · %(amount)s due"), { amount: money(ctx.payment_status.outstanding_balance) }, true)]],
          help: nothingToPayText(ctx),
        }];
      }
      const options = invoiceOptions(ctx).filter(([, , status]) => status !== "paid" && status !== "succeeded");
      return options.length
        ? [{ name: "invoice_id", label: gettext("Invoice"), type: "select", options: [["", gettext("The open balance")], ...options] }]
        : [];
    },
    defaults: (ctx, prefill) => ({ invoice_id: prefill.invoice_id || "" }),
    build: (values, ctx) => {
      const errors = {};
      if (!values.invoice_id && nothingToPay(ctx)) errors.invoice_id = nothingToPayText(ctx);
      return {
        errors,
        params: values.invoice_id ? { invoice_id: values.invoice_id } : {},
        summary: [[gettext("Invoice"), values.invoice_id || gettext("Open balance")]],
        effect: interpolate(gettext("A secure hosted payment page is created for %(customer)s; you get the link to send."), { customer: customerName(ctx) }, true),
      };
    },
  },
  resend_invoice: {
    applies: (ctx) => invoiceOptions(ctx).length > 0,
    fields: (ctx) => [{ name: "invoice_id", label: gettext("Invoice"), type: "select", options: invoiceOptions(ctx) }],
    defaults: (ctx, prefill) => ({ invoice_id: prefill.invoice_id || (invoiceOptions(ctx)[0] || [""])[0] }),
    build: (values, ctx) => {
      const errors = {};
      if (!values.invoice_id) errors.invoice_id = gettext("Pick an invoice.");
      const email = ctx.account && ctx.account.billing_email;
      return {
        errors,
        params: { invoice_id: values.invoice_id },
        summary: [[gettext("Invoice"), values.invoice_id]],
        effect: email
          ? interpolate(gettext("The invoice is emailed again to %(email)s, or its link is given for a reply."), { email }, true)
          : gettext("The invoice is emailed again to the billing email, or its link is given for a reply."),
      };
    },
  },
  apply_credit: {
    applies: () => true,
    fields: () => [
      amountField("amount", gettext("Credit amount")),
      { name: "description", label: gettext("Reason (shown on the customer's balance)"), type: "text", maxlength: 200 },
    ],
    defaults: (ctx, prefill) => ({ amount: prefill.amount || "", description: prefill.description || "" }),
    build: (values, ctx) => {
      const { currency, exponent } = customerCurrency(ctx);
      const errors = {};
      const parsed = parseMajor(values.amount, currency, exponent);
      if (!parsed.ok) errors.amount = parsed.error;
      const reason = requiredText(values.description, gettext("A reason"));
      if (reason) errors.description = reason;
      return {
        errors,
        params: parsed.ok
          ? { amount: parsed.minor, currency, description: values.description.trim() }
          : {},
        measure: parsed.ok ? { amount: parsed.minor, currency } : {},
        summary: [
          [gettext("Amount"), parsed.ok ? formatMoney(parsed.minor, currency, exponent) : "—"],
          [gettext("Reason"), values.description],
        ],
        effect: interpolate(
          gettext("A one-time credit of %(amount)s is added to the balance of %(customer)s and applied to the next invoice."),
          { amount: parsed.ok ? formatMoney(parsed.minor, currency, exponent) : "—", customer: customerName(ctx) },
          true,
        ),
      };
    },
  },
  issue_refund: {
    applies: (ctx) => refundableCharges(ctx).length > 0,
    fields: (ctx) => [
      { name: "charge_id", label: gettext("Charge"), type: "select", options: chargeOptions(ctx) },
      amountField("amount", gettext("Amount to refund"), { help: gettext("Defaults to what is still refundable.") }),
      { name: "reason", label: gettext("Reason"), type: "select", options: choices("refund_reasons") },
    ],
    defaults: (ctx, prefill) => {
      const charges = refundableCharges(ctx);
      const charge = charges.find((c) => c.charge_id === prefill.charge_id) || charges[0];
      return {
        charge_id: charge ? charge.charge_id : "",
        amount: charge ? majorOf(charge.refundable) : "",
        reason: prefill.reason || "requested_by_customer",
      };
    },
    onChange: (name, values, ctx) => {
      if (name !== "charge_id") return values;
      const charge = refundableCharges(ctx).find((c) => c.charge_id === values.charge_id);
      return charge
        ? { ...values, amount: majorOf(charge.refundable) }
        : values;
    },
    build: (values, ctx) => {
      const errors = {};
      const charge = refundableCharges(ctx).find((c) => c.charge_id === values.charge_id);
      if (!charge) errors.charge_id = gettext("Pick a charge to refund.");
      const { currency, exponent } = charge ? charge.amount : customerCurrency(ctx);
      const parsed = parseMajor(values.amount, currency, exponent);
      if (!parsed.ok) errors.amount = parsed.error;
      else if (charge && parsed.minor > charge.refundable.amount) {
        errors.amount = interpolate(gettext("At most %(amount)s is left to refund on this charge."), { amount: money(charge.refundable) }, true);
      }
      if (!values.reason) errors.reason = gettext("Pick a reason.");
      const reasonLabel = label("refund_reasons", values.reason);
      const shown = parsed.ok ? formatMoney(parsed.minor, currency, exponent) : "—";
      return {
        errors,
        params: parsed.ok && charge
          ? { charge_id: charge.charge_id, amount: parsed.minor, currency, reason: values.reason }
          : {},
        measure: parsed.ok ? { amount: parsed.minor, currency } : {},
        summary: [
          [gettext("Charge"), charge ? `${shortDate(charge.date)} · ${money(charge.amount)}${charge.invoice_number ? ` (${charge.invoice_number})` : ""}` : "—"],
          [gettext("Refund"), shown],
          [gettext("Reason"), reasonLabel],
        ],
        effect: charge && charge.method
          ? interpolate(gettext("%(amount)s goes back to %(customer)s's %(method)s; it appears on their statement in 5–7 business days."), { amount: shown, customer: customerName(ctx), method: charge.method }, true)
          : interpolate(gettext("%(amount)s goes back to the payment method of %(customer)s; it appears on their statement in 5–7 business days."), { amount: shown, customer: customerName(ctx) }, true),
      };
    },
  },
  refund_duplicate_charge: {
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
      const shown = amount ? money(amount) : gettext("the duplicate amount");
      return {
        errors: ids.length === 2 ? {} : { charge_ids: gettext("The duplicate pair was not found.") },
        params: { charge_ids: ids },
        measure: amount ? { amount: amount.amount, currency: amount.currency } : {},
        summary: [
          [gettext("Charges"), andList(ids)],
          [gettext("Refund"), shown],
          [gettext("Reason"), label("refund_reasons", "duplicate")],
        ],
        effect: interpolate(gettext("The duplicate charge of %(amount)s is refunded in full and the payments of %(customer)s are monitored for 30 days."), { amount: shown, customer: customerName(ctx) }, true),
      };
    },
  },
  update_payment_method: {
    applies: () => true,
    fields: () => [],
    defaults: () => ({}),
    build: (values, ctx) => ({
      params: {},
      summary: [[gettext("Current method"), (ctx.account && ctx.account.payment_method && ctx.account.payment_method.display) || gettext("None on file")]],
      effect: interpolate(gettext("A secure link where %(customer)s updates their card is created (no card data passes through Billing Desk)."), { customer: customerName(ctx) }, true),
    }),
  },
  send_tax_invoice: {
    applies: (ctx) => invoiceOptions(ctx).length > 0,
    fields: (ctx) => [
      { name: "invoice_id", label: gettext("Invoice"), type: "select", options: invoiceOptions(ctx) },
      { name: "tax_id_type", label: gettext("Tax ID type"), type: "select", options: [["", gettext("Keep current tax IDs")], ...choices("tax_id_types")] },
      { name: "tax_id_value", label: gettext("Tax ID"), type: "text", maxlength: 64 },
      { name: "line1", label: gettext("Address line 1"), type: "text", maxlength: 200 },
      { name: "city", label: gettext("City"), type: "text", maxlength: 100 },
      { name: "postal_code", label: gettext("Postal code"), type: "text", maxlength: 20 },
      { name: "country", label: gettext("Country (2 letters)"), type: "text", maxlength: 2 },
    ],
    defaults: (ctx, prefill = {}) => {
      const address = (ctx.customer && ctx.customer.address) || {};
      return {
        invoice_id: prefill.invoice_id || (invoiceOptions(ctx)[0] || [""])[0],
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
      if (!values.invoice_id) errors.invoice_id = gettext("Pick an invoice.");
      if (values.tax_id_type && !values.tax_id_value.trim()) errors.tax_id_value = gettext("Enter the tax ID.");
      if (values.country && !/^[A-Za-z]{2}$/.test(values.country.trim())) errors.country = gettext("Use a 2-letter country code, such as DE.");
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
          [gettext("Invoice"), values.invoice_id],
          [gettext("Tax ID"), values.tax_id_type ? `${values.tax_id_type} ${values.tax_id_value}` : gettext("Unchanged")],
          [gettext("Address"), addressChanged ? Object.values(address).filter(Boolean).join(", ") : gettext("Unchanged")],
        ],
        effect: gettext("The customer's tax details are updated and the invoice is sent again with them; you get the PDF link."),
      };
    },
  },
};
