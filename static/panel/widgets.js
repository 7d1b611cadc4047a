// Small building blocks every view uses: buttons, banners, definition rows, sections,
// status badges, and how an error reads to the agent.

import { ApiError } from "./api.js";
import { h, nextId } from "./dom.js";
import { humanize } from "./format.js";
import { gettext } from "./i18n.js";

export function button(label, onClick, { kind = "secondary", testid, small, ...attrs } = {}) {
  return h(
    `button.bd-btn.bd-btn--${kind}${small ? ".bd-btn--small" : ""}`,
    { type: "button", onclick: onClick, "data-testid": testid, ...attrs },
    label,
  );
}

/**
 * How an error reads to the agent: the server's own sentence, never its code. A bare
 * "not valid" gets the field messages the server sent with it.
 */
export function errorText(error) {
  if (error instanceof ApiError) {
    const message = error.message || gettext("Something went wrong.");
    const fields = fieldMessages(error.details && (error.details.params || error.details));
    if (fields.length && !fields.some((text) => message.includes(text))) return `${message} ${fields.join(" ")}`;
    return message;
  }
  return String((error && error.message) || error || gettext("Something went wrong."));
}

function fieldMessages(details) {
  if (!details || typeof details !== "object") return [];
  const found = [];
  for (const [key, value] of Object.entries(details)) {
    if (key === "codes" || key === "first_code") continue;
    const texts = Array.isArray(value) ? value : [];
    for (const text of texts) if (typeof text === "string") found.push(text.endsWith(".") ? text : `${text}.`);
  }
  return [...new Set(found)].slice(0, 3);
}

export function banner(kind, title, body, { testid, actions } = {}) {
  return h(
    `div.bd-banner.bd-banner--${kind}`,
    { role: kind === "danger" ? "alert" : "status", "data-testid": testid },
    h("strong.bd-banner__title", {}, title),
    body ? h("span.bd-banner__body", {}, body) : null,
    actions ? h("div.bd-banner__actions", {}, actions) : null,
  );
}

export function row(label, value, { testid, emphasis } = {}) {
  return [
    h("dt", {}, label),
    h(`dd${emphasis ? ".bd-strong" : ""}`, { "data-testid": testid }, value === undefined || value === null || value === "" ? "—" : value),
  ];
}

export function section(title, id, ...children) {
  const headingId = nextId("bd-h");
  return h("section.bd-section", { "aria-labelledby": headingId, "data-testid": id },
    h("h2.bd-section__title", { id: headingId }, title),
    ...children,
  );
}

// An action sent to Stripe whose answer was lost: open until reconciliation settles it.
export const CONFIRMING = gettext("Confirming with Stripe…");

// A status's words when the server sent none with it (the same as the key, humanised, in English).
function statusWords() {
  return {
    paid: gettext("Paid"), succeeded: gettext("Succeeded"), active: gettext("Active"), failed: gettext("Failed"),
    past_due: gettext("Past due"), unpaid: gettext("Unpaid"), uncollectible: gettext("Uncollectible"),
    canceled: gettext("Canceled"), refunded: gettext("Refunded"), partially_refunded: gettext("Partially refunded"),
    disputed: gettext("Disputed"), open: gettext("Open"), trialing: gettext("Trialing"), paused: gettext("Paused"),
    ending: gettext("Ending"), pending: gettext("Pending"), pending_approval: gettext("Pending approval"),
    approved: gettext("Approved"), denied: gettext("Denied"), expired: gettext("Expired"), executing: gettext("Executing"),
    not_permitted: gettext("Not permitted"), draft: gettext("Draft"), void: gettext("Void"),
  };
}

/** A status key in words, for when the server sent none. */
export function statusText(status) {
  return status === "outcome_unknown" ? CONFIRMING : statusWords()[status] || humanize(status);
}

export function statusBadge(status, label) {
  const kind = {
    paid: "success", succeeded: "success", active: "success",
    failed: "danger", past_due: "danger", unpaid: "danger", uncollectible: "danger", canceled: "neutral",
    refunded: "neutral", partially_refunded: "warning", disputed: "danger", open: "warning",
    trialing: "info", paused: "warning", ending: "warning", pending: "warning", pending_approval: "warning",
    denied: "danger", expired: "neutral", executing: "info", not_permitted: "neutral", draft: "neutral", void: "neutral",
    outcome_unknown: "warning",
  }[status] || "neutral";
  return h(`span.bd-badge.bd-badge--${kind}`, {}, label || statusText(status));
}
