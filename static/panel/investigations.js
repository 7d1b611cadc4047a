// The investigation card: the brief's playbook scenario this ticket is about, chosen from the
// ticket's signals (its tags, its subject, the context's alerts) and switchable by the agent,
// with the evidence the playbook names, the proposed action (the action form, prefilled) and
// the filled customer message, one click from the helpdesk's public reply editor.
//
// The six cards themselves (which endpoints each reads, what each shows) are in
// investigation-cards.js; this module chooses, loads and draws the frame around them.

import { CARDS, SCENARIOS } from "./investigation-cards.js";
import { h } from "./dom.js";
import { handleExpired } from "./screens.js";
import { live, state } from "./state.js";
import { button, errorText } from "./widgets.js";
import { gettext, interpolate } from "./i18n.js";

// Ticket tags and subject words that name a scenario, most specific first: a subject about a
// "refund for a duplicate charge" is the duplicate-charge scenario. Subjects are read in English
// and German (the languages the panel speaks; customers write in theirs).
const SIGNALS = [
  ["charged_twice", ["duplicate_charge", "double_charge", "charged_twice", "duplicate"],
    /\b(charged twice|double[- ]?charged?|duplicate|two (identical |same )?charges|charged two times)|\b(doppelt|zweimal) (belastet|abgebucht|berechnet)|\bdoppel(buchung|abbuchung|belastung)|\bdoppelte (zahlung|abbuchung|belastung)/],
  ["payment_failed", ["payment_failed", "failed_payment", "declined", "dunning", "card_declined"],
    /\b(payment (has |was )?failed|failed payment|declined|card (has )?expired|expired card)|\b(zahlung (ist )?fehlgeschlagen|fehlgeschlagene zahlung|abgelehnt|karte (ist )?abgelaufen|abgelaufene karte)/],
  ["tax_invoice", ["tax_invoice", "vat", "tax", "tax_id"],
    /\b(tax invoice|vat|tax id|gst|tax receipt)|\b(steuerrechnung|mwst|ust-id|umsatzsteuer|rechnung mit steuer)/],
  ["refund", ["refund", "refund_request", "money_back"],
    /\b(refund|money back|reimburse)|\b(erstattung|rückerstattung|geld zurück|zurückerstatten)/],
  ["overcharge", ["overcharge", "overcharged", "billing_dispute", "invoice_dispute"],
    /\b(overcharg|higher than|so much higher|more than (usual|expected)|wrong amount|charged too much)|\b(zu viel (berechnet|abgebucht)|höher als|falscher betrag)/],
  ["plan_change", ["plan_change", "upgrade", "downgrade", "renewal", "trial", "seats"],
    /\b(plan|upgrade|downgrade|renewal|seats?|trial|subscription)\b|\b(tarif|abo\b|abonnement|kündig|lizenz|testphase|verlängerung)/],
];
const ALERT_SCENARIOS = { duplicate_charge: "charged_twice", payment_failed: "payment_failed" };

/** Which scenario the ticket is about, and why: {scenario, reason}. */
export function chooseScenario(ticket, ctx) {
  const tags = ((ticket && ticket.tags) || []).map((t) => String(t).toLowerCase());
  for (const [scenario, names] of SIGNALS) {
    const tag = tags.find((t) => names.includes(t));
    if (tag) return { scenario, reason: interpolate(gettext("The ticket's tag “%(tag)s”."), { tag }, true) };
  }
  const subject = String((ticket && ticket.subject) || "").toLowerCase().replace(/_/g, " ");
  for (const [scenario, , words] of SIGNALS) {
    const found = words.exec(subject);
    if (found) return { scenario, reason: interpolate(gettext("The subject says “%(words)s”."), { words: found[0].trim() }, true) };
  }
  for (const alert of (ctx && ctx.alerts) || []) {
    if (ALERT_SCENARIOS[alert.type]) return { scenario: ALERT_SCENARIOS[alert.type], reason: interpolate(gettext("The alert: %(message)s"), { message: alert.message }, true) };
  }
  return { scenario: "plan_change", reason: gettext("Nothing in the ticket names a scenario: pick the one that fits.") };
}

const card = { customerId: null, scenario: null, reason: "", byAgent: false, data: {}, errors: {}, loading: false, seq: 0 };

/** Draw the card for the current customer and (re)load its evidence. */
export function renderInvestigation() {
  const el = document.getElementById("bd-investigation");
  if (!el || !state.ctx || !state.me) return;
  if (card.customerId !== state.customerId) {
    const chosen = chooseScenario(state.ticket, state.ctx);
    Object.assign(card, { customerId: state.customerId, scenario: chosen.scenario, reason: chosen.reason, byAgent: false, data: {}, errors: {} });
  }
  paint();
  load();
}

function switchTo(scenario) {
  if (!CARDS[scenario] || scenario === card.scenario) return;
  card.scenario = scenario;
  card.byAgent = true;
  card.reason = gettext("Chosen by you.");
  paint();
  load();
  live(interpolate(gettext("%(scenario)s: loading the investigation."), { scenario: SCENARIOS.find((s) => s.key === scenario).label }, true));
}

async function load() {
  const scenario = card.scenario;
  const customerId = card.customerId;
  const seq = ++card.seq;
  card.loading = true;
  try {
    const data = await CARDS[scenario].load(state.api, customerId, state.ctx);
    if (seq !== card.seq) return;
    card.data[scenario] = data;
    card.errors[scenario] = null;
  } catch (error) {
    if (handleExpired(error)) return;
    if (seq !== card.seq) return;
    card.errors[scenario] = error;
  }
  card.loading = false;
  paint();
}

function paint() {
  const el = document.getElementById("bd-investigation");
  if (!el) return;
  // Keep the agent's place: redrawing must not take the focus away from the select or a button.
  const active = document.activeElement && el.contains(document.activeElement) ? document.activeElement : null;
  const focused = active && active.dataset.testid
    ? `${active.closest("[data-price]") ? `[data-price="${active.closest("[data-price]").dataset.price}"] ` : ""}[data-testid="${active.dataset.testid}"]`
    : null;
  while (el.firstChild) el.removeChild(el.firstChild);
  const meta = SCENARIOS.find((s) => s.key === card.scenario);
  const data = card.data[card.scenario];
  const error = card.errors[card.scenario];
  const body = data ? CARDS[card.scenario].render(data, state.ctx, paint) : null;
  el.append(
    h("section.bd-section.bd-inv", { "aria-labelledby": "bd-inv-title", "data-testid": "investigation", "data-scenario": card.scenario, "aria-busy": card.loading ? "true" : "false" },
      h("div.bd-inv__head", {},
        h("h2.bd-section__title", { id: "bd-inv-title" }, gettext("Investigation")),
        h("span.bd-inv__time", { "data-testid": "investigation-time" }, meta.time),
      ),
      h("div.bd-field.bd-inv__pick", {},
        h("label", { for: "bd-inv-scenario" }, gettext("Playbook scenario")),
        h("select.bd-input", { id: "bd-inv-scenario", "data-testid": "investigation-scenario", "aria-describedby": "bd-inv-why", onchange: (event) => switchTo(event.target.value) },
          SCENARIOS.map((s) => h("option", { value: s.key, selected: s.key === card.scenario }, s.label))),
        h("p.bd-help", { id: "bd-inv-why", "data-testid": "investigation-reason" }, card.reason),
      ),
      error
        ? h("p.bd-error", { role: "alert", "data-testid": "investigation-error" }, interpolate(gettext("Could not load this investigation: %(error)s"), { error: errorText(error) }, true))
        : null,
      !body && !error ? h("p.bd-muted", { "data-testid": "investigation-loading" }, gettext("Looking into it…")) : null,
      body ? h("div.bd-inv__evidence", { "data-testid": "investigation-evidence" }, body.evidence) : null,
      body && body.actions && body.actions.length
        ? h("div.bd-inv__actions", { "data-testid": "investigation-actions" }, h("h3.bd-subtitle", {}, gettext("Proposed action")), body.actions)
        : null,
      body ? messageBlock(body.message, body.messageHelp) : null,
      body && body.followUp ? followUpBlock(body.followUp) : null,
    ),
  );
  if (focused) el.querySelector(focused)?.focus();
}

function messageBlock(text, help) {
  if (!text) {
    return h("div.bd-inv__message", {},
      h("h3.bd-subtitle", {}, gettext("Message for the customer")),
      h("p.bd-muted", { "data-testid": "investigation-message-help" }, help || gettext("No message for this scenario yet.")));
  }
  return replyBlock(gettext("Message for the customer"), text, "investigation-message", "investigation-insert", help);
}

function followUpBlock(followUp) {
  return h("div.bd-inv__follow", { "data-testid": "investigation-follow-up" },
    replyBlock(followUp.title, followUp.message, "follow-up-message", "follow-up-insert", null),
    followUp.note ? h("p.bd-help", { "data-testid": "follow-up-note" }, followUp.note) : null,
  );
}

function replyBlock(title, text, testid, insertId, help) {
  const id = `bd-${testid}`;
  return h("div.bd-inv__message", {},
    h("label.bd-subtitle", { for: id }, title),
    h("textarea.bd-input", { id, rows: 5, readonly: true, "data-testid": testid }, text),
    help ? h("p.bd-help", {}, help) : null,
    h("div.bd-form__buttons", {},
      state.host && state.host.canReply
        ? button(gettext("Insert as public reply"), (event) => insert(text, event.currentTarget), { kind: "primary", small: true, testid: insertId })
        : null,
      button(gettext("Copy"), (event) => copy(text, event.currentTarget), { small: true, testid: `${testid}-copy` }),
    ),
    state.host && state.host.canReply ? null : h("p.bd-help", {}, gettext("Copy the message into your public reply.")),
  );
}

async function insert(text, el) {
  el.disabled = true;
  try {
    const note = await state.host.reply(text);
    el.textContent = gettext("Inserted");
    live(note);
  } catch (error) {
    live(interpolate(gettext("Could not insert the reply: %(error)s"), { error: errorText(error) }, true));
  }
  el.disabled = false;
}

async function copy(text, el) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    const area = el.closest(".bd-inv__message").querySelector("textarea");
    area.select();
    ok = Boolean(document.execCommand && document.execCommand("copy"));
  }
  el.textContent = ok ? gettext("Copied") : gettext("Select and copy");
  live(ok ? gettext("Message copied.") : gettext("Copy did not work: select the text and copy it."));
}
