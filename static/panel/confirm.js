// The confirm step asks the server what will happen (POST actions/dry-run/: the very
// decision the execution takes — policy, refund history, exchange rates, preconditions)
// and says it in words before the Confirm button: "Happens now", "Goes to a Manager for
// approval — refund pattern: …", or "Not possible: …" (Confirm is then disabled).
// forms.js calls confirmAsk when the confirm step opens and renders confirmView.

import { ApiError } from "./api.js";
import { h } from "./dom.js";
import { limitSentence } from "./policy.js";
import { meAction } from "./role.js";
import { state } from "./state.js";
import { gettext, interpolate } from "./i18n.js";

/** The parameters the confirm step submits: the form's, with a plan preview's proration date. */
export function confirmParams(form) {
  const params = { ...(form.built ? form.built.params : {}) };
  if (form.preview && form.preview.proration_date) params.proration_date = form.preview.proration_date;
  return params;
}

/** When the agent opened the panel on this ticket, as the server told it (GET me/ `now`). */
export function handlingStartedAt() {
  return (state.me && state.me.now) || null;
}

/**
 * Ask the dry run for `form`'s request; `onAnswer` re-renders the confirm step. An answer
 * for a form that has since closed, gone back to editing or been asked again is dropped.
 */
export function confirmAsk(form, onAnswer) {
  const ask = { pending: true, answer: null, error: null };
  form.dryRun = ask;
  form.params = confirmParams(form);
  state.api
    .post("actions/dry-run/", {
      kind: form.kind,
      customer_id: state.customerId,
      ticket_id: (state.ticket && state.ticket.ticketId) || "",
      params: form.params,
    })
    .then((answer) => {
      ask.answer = answer;
    })
    .catch((error) => {
      ask.error = error;
    })
    .finally(() => {
      ask.pending = false;
      if (state.form === form && form.dryRun === ask && form.step === "confirm") onAnswer(confirmFocus(form));
    });
}

/** Where focus goes once the answer is shown: Confirm, or the answer when Confirm is off. */
export function confirmFocus(form) {
  return confirmBlocked(form) ? "[data-testid=dry-run]" : "[data-testid=form-confirm]";
}

/** Confirm waits for the answer, and stays off when the server says it is not possible. */
export function confirmBlocked(form) {
  const ask = form.dryRun;
  if (!ask) return false;
  return ask.pending || Boolean(ask.answer && ask.answer.outcome === "refused");
}

export function confirmButtonText(form) {
  const ask = form.dryRun;
  if (ask && ask.answer && ask.answer.outcome === "approval") return gettext("Send for approval");
  return gettext("Confirm");
}

const TONE = { execute: "execute", approval: "approval", refused: "refused" };

/** The server's answer in words (or that it is being asked, or could not be asked). */
export function confirmView(form) {
  const ask = form.dryRun;
  const limit = limitSentence(meAction(form.kind));
  let body;
  if (!ask || ask.pending) {
    body = h("p.bd-outcome.bd-outcome--pending", { role: "status" }, gettext("Checking what will happen…"));
  } else if (ask.answer) {
    const answer = ask.answer;
    body = h(`div.bd-outcome.bd-outcome--${TONE[answer.outcome] || "pending"}`,
      { "data-outcome": answer.outcome, role: answer.outcome === "refused" ? "alert" : "status" },
      h("strong.bd-outcome__headline", {}, answer.headline),
      answer.reason ? h("span.bd-outcome__reason", {}, sentence(answer.reason)) : null,
    );
  } else {
    body = h("p.bd-outcome.bd-outcome--unknown", { role: "status" },
      interpolate(gettext("Could not check what will happen (%(error)s). Billing Desk decides when you confirm."), { error: errorWords(ask.error) }, true));
  }
  return h("div.bd-confirm-outcome", { "data-testid": "dry-run", tabindex: "-1" },
    body,
    limit ? h("p.bd-outcome__limit", { "data-testid": "role-limit" }, limit) : null,
  );
}

function sentence(text) {
  const trimmed = String(text).trim();
  const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

function errorWords(error) {
  if (error instanceof ApiError) return error.message.replace(/\.$/, "");
  return gettext("no answer");
}
