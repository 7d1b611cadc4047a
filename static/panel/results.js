// The last step of an action form: what happened (done, sent for approval, failed, being
// confirmed with Stripe), its details, and the customer message to copy or post as a reply.

import { h, nextId } from "./dom.js";
import { capitalize, longDate, money } from "./format.js";
import { closeForm } from "./forms.js";
import { live, state } from "./state.js";
import { roleLabel } from "./vocabulary.js";
import { CONFIRMING, button, errorText, row } from "./widgets.js";
import { gettext, interpolate, orList } from "./i18n.js";

/** "Manager", "VP Approver or Legal Approver": who must decide a request, in words. */
export function approverWords(result) {
  const approval = result.approval || {};
  const roles = approval.required_roles || (result.decision || {}).approver_roles || [];
  return roles.length ? orList(roles.map(roleLabel)) : gettext("an approver");
}

export function resultHeadline(result) {
  if (result.status === "succeeded") return gettext("Done.");
  if (result.status === "pending_approval") return interpolate(gettext("Sent for approval to %(approvers)s."), { approvers: approverWords(result) }, true);
  if (result.status === "outcome_unknown") return CONFIRMING;
  return gettext("The action failed.");
}

export function resultStep() {
  const form = state.form;
  const result = form.result || {};
  const kind = { succeeded: "success", pending_approval: "warning", failed: "danger", outcome_unknown: "warning" }[result.status] || "info";
  const details = resultDetails(result);
  const message = result.customer_message || "";
  const headline = {
    succeeded: gettext("Done"),
    pending_approval: interpolate(gettext("Sent for approval to %(approvers)s"), { approvers: approverWords(result) }, true),
    outcome_unknown: CONFIRMING,
  }[result.status] || gettext("Failed");
  return h("div.bd-form__body", {},
    h(`div.bd-result.bd-result--${kind}`, { role: "status", "data-testid": "action-result", "data-status": result.status },
      h("strong", {}, headline),
      h("span", {}, resultMessage(result)),
    ),
    details.length ? h("dl.bd-dl", {}, details.map(([label, value]) => row(label, value))) : null,
    message ? messageBox(message) : null,
    h("div.bd-form__buttons", {}, button(gettext("Done"), () => closeForm({ refresh: true }), { kind: "primary", testid: "form-done" })),
  );
}

/** The customer message, read-only, with Copy and (where the helpdesk allows) Post as reply. */
export function messageBox(message, { title = gettext("Message for the customer"), testid = "customer-message" } = {}) {
  const messageId = nextId("bd-msg");
  return h("div.bd-message", {},
    h("label", { for: messageId }, title),
    h("textarea.bd-input", { id: messageId, rows: 5, readonly: true, "data-testid": testid }, message),
    h("div.bd-form__buttons", {},
      button(gettext("Copy"), (event) => copyText(message, event.currentTarget), { testid: "copy-message" }),
      state.host.canReply ? button(gettext("Post as public reply"), (event) => postReply(message, event.currentTarget), { testid: "post-reply" }) : null,
    ),
    state.host.canReply ? null : h("p.bd-help", {}, gettext("Copy the message into your reply.")),
  );
}

function resultMessage(result) {
  const decision = result.decision || {};
  if (result.status === "pending_approval") {
    const approval = result.approval || {};
    const reason = approval.reason || decision.reason || "";
    return `${reason ? ` — ${capitalize(reason)}.` : "."} ${gettext("The decision and the message for the customer appear under Recent actions when you reopen or refresh this ticket.")}`;
  }
  if (result.status === "failed") {
    const error = result.error || {};
    return ` ${error.message || gettext("The billing provider refused the action.")}`;
  }
  if (result.status === "executing") return ` ${gettext("The billing provider is still working on it; refresh in a moment.")}`;
  if (result.status === "outcome_unknown") {
    return ` ${gettext("Stripe did not confirm this in time, so it may already be done. Billing Desk is confirming with Stripe and will record the outcome; do not retry it.")}`;
  }
  return decision.reason ? ` ${capitalize(decision.reason)}.` : "";
}

function resultDetails(result) {
  const r = result.result || {};
  const out = [];
  const url = r.url || r.hosted_invoice_url || r.invoice_pdf || r.link;
  if (url) out.push([gettext("Link"), h("a.bd-break", { href: url, target: "_blank", rel: "noopener noreferrer", "data-testid": "result-link" }, url)]);
  if (r.amount) out.push([gettext("Amount"), money(r.amount)]);
  if (r.ending_balance) {
    // Stripe's customer balance is negative while the customer holds credit.
    const held = r.ending_balance.amount < 0;
    out.push([held ? gettext("Credit now available") : gettext("Balance due after"), held
      ? money({ amount: -r.ending_balance.amount, currency: r.ending_balance.currency })
      : money(r.ending_balance)]);
  }
  if (r.refund_id) out.push([gettext("Refund"), r.refund_id]);
  if (r.effective_date) out.push([gettext("Effective"), longDate(r.effective_date)]);
  if (result.reference) out.push([gettext("Reference"), result.reference]);
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
  el.textContent = ok ? gettext("Copied") : gettext("Select and copy");
  live(ok ? gettext("Message copied.") : gettext("Copy did not work: select the text and copy it."));
}

async function postReply(text, el) {
  el.disabled = true;
  try {
    const note = await state.host.reply(text);
    el.textContent = gettext("Posted");
    live(note);
  } catch (error) {
    el.disabled = false;
    live(interpolate(gettext("Could not post the reply: %(error)s"), { error: errorText(error) }, true));
  }
}
