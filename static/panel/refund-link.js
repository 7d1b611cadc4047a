// "Send refund request link" (issue 18): a signed link to the customer's self-service
// refund page, made by POST customers/<id>/refund-link/ (audited, rate-limited) for the
// agent to paste into a reply. The customer's requests are then decided by the agents'
// own rules (docs/self-service.md section 2). Text nodes only (dom.js).
// Shown only to a role that may refund (GET me/: issue_refund not "not_permitted"); the
// server refuses the others (403) in any case.

import { ApiError } from "./api.js";
import { clear, h } from "./dom.js";
import { longDate } from "./format.js";
import { handleExpired } from "./screens.js";
import { actionMode } from "./role.js";
import { live, state } from "./state.js";
import { button, errorText } from "./widgets.js";
import { gettext, interpolate } from "./i18n.js";

// The last link made per customer, kept while the panel is open (a re-render shows it again).
const made = new Map();

export function refundLinkBlock() {
  if (actionMode("issue_refund") === "not_permitted") return null;
  const box = h("div.bd-refund-link", { "data-testid": "refund-link" });
  paint(box, made.get(state.customerId) || null, null, false);
  return box;
}

function paint(box, link, error, busy) {
  clear(box);
  box.append(
    h("h3.bd-subtitle", {}, gettext("Self-service refund")),
    h("p.bd-muted", {}, gettext("Send the customer a secure link where they can pick a payment and request a refund. Your workspace's limits and approvals apply.")),
    button(busy ? gettext("Creating link…") : gettext("Send refund request link"), () => create(box), {
      small: true,
      testid: "refund-link-create",
      disabled: busy || null,
    }),
  );
  if (error) box.append(h("p.bd-error", { role: "alert", "data-testid": "refund-link-error" }, errorText(error)));
  if (!link) return;
  const input = h("input.bd-input", { type: "text", readonly: true, value: link.url, "aria-label": gettext("Refund request link"), "data-testid": "refund-link-url" });
  box.append(
    h("div.bd-refund-link__result", { style: { display: "flex", gap: "6px", alignItems: "center", marginTop: "6px" } },
      input,
      button(gettext("Copy"), () => copy(input), { small: true, testid: "refund-link-copy" }),
    ),
    h("p.bd-muted", {}, interpolate(gettext("Valid until %(date)s. Paste it into your reply to the customer."), { date: longDate(link.expires_at) }, true)),
  );
}

async function create(box) {
  const customerId = state.customerId;
  paint(box, made.get(customerId) || null, null, true);
  try {
    const link = await state.api.post(`customers/${encodeURIComponent(customerId)}/refund-link/`, {
      ticket_id: (state.ticket && state.ticket.ticketId) || "",
    });
    made.set(customerId, link);
    paint(box, link, null, false);
    live(gettext("Refund request link created."));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      handleExpired(error);
      return;
    }
    paint(box, made.get(customerId) || null, error, false);
  }
}

async function copy(input) {
  input.focus();
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    live(gettext("Link copied."));
  } catch {
    // The helpdesk frame may not allow the clipboard: the link stays selected to copy by hand.
    live(gettext("Press Ctrl+C to copy the selected link."));
  }
}
