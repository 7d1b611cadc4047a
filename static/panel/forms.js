// The Actions section and the action forms: the buttons the role may use, then one form
// per action kind (fields from actions.js) going edit → (preview: plan, seats, discount) →
// confirm → result.
// One idempotency key per opened form, so a double click or a resubmission after a lost
// answer makes one action.

import { ACTIONS } from "./actions.js";
import { ApiError } from "./api.js";
import { h } from "./dom.js";
import { amountOn, longDate, money } from "./format.js";
import { refreshContext } from "./loading.js";
import { confirmAsk, confirmBlocked, confirmButtonText, confirmParams, confirmView, handlingStartedAt } from "./confirm.js";
import { limitWords } from "./policy.js";
import { resultHeadline, resultStep } from "./results.js";
import { refundLinkBlock } from "./refund-link.js";
import { actionLabel } from "./role.js";
import { handleExpired } from "./screens.js";
import { live, region, state } from "./state.js";
import { actionName } from "./vocabulary.js";
import { button, errorText, row } from "./widgets.js";
import { gettext, interpolate } from "./i18n.js";

export function renderActions() {
  const el = region("bd-actions");
  if (!state.ctx || !state.me) return;
  if (state.form) {
    el.append(renderForm());
    return;
  }
  const direct = [];
  const request = [];
  for (const action of state.me.actions || []) {
    const spec = ACTIONS[action.kind];
    if (!spec || action.mode === "not_permitted" || !spec.applies(state.ctx)) continue;
    if (action.mode === "direct") {
      direct.push(
        h("li", {},
          h("button.bd-action", { type: "button", "data-kind": action.kind, "data-testid": `action-${action.kind}`, onclick: () => openForm(action.kind) },
            h("span.bd-action__label", {}, actionName(action.kind)),
            action.limit_display ? h("span.bd-action__limit", {}, limitWords(action)) : null,
          ),
        ),
      );
    } else {
      request.push(
        h("li", {},
          h("button.bd-action.bd-action--request", { type: "button", "data-kind": action.kind, "data-testid": `request-${action.kind}`, onclick: () => openForm(action.kind) },
            h("span.bd-action__label", {}, interpolate(gettext("Request approval: %(action)s"), { action: actionName(action.kind) }, true)),
          ),
        ),
      );
    }
  }
  el.append(
    h("section.bd-section.bd-section--actions", { "aria-labelledby": "bd-actions-title" },
      h("h2.bd-section__title", { id: "bd-actions-title" }, gettext("Actions")),
      direct.length ? h("ul.bd-actions", { "data-testid": "direct-actions" }, direct) : h("p.bd-muted", {}, gettext("No direct actions for your role.")),
      request.length
        ? h("details.bd-more", { open: direct.length === 0 ? true : null },
          h("summary", {}, interpolate(gettext("Request approval (%(count)s)"), { count: request.length }, true)),
          h("ul.bd-actions", { "data-testid": "request-actions" }, request))
        : null,
      refundLinkBlock(),
    ),
  );
}

function newKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export async function openForm(kind, prefill = {}, { confirmNow = false } = {}) {
  const spec = ACTIONS[kind];
  if (!spec) return;
  if (kind === "change_plan") {
    try {
      const data = await state.api.get(`customers/${encodeURIComponent(state.customerId)}/plans/`);
      state.planOptions = (data.plans || []).filter((plan) => !plan.current);
    } catch (error) {
      if (handleExpired(error)) return;
      state.planOptions = [];
      live(interpolate(gettext("Could not load the plans: %(error)s"), { error: errorText(error) }, true));
    }
    state.ctx.plan_options = state.planOptions;
  }
  state.form = {
    kind,
    spec,
    step: "edit",
    values: spec.defaults(state.ctx, prefill),
    errors: {},
    built: null,
    preview: null,
    previewError: null,
    serverError: null,
    inFlight: false,
    result: null,
    // One idempotency key per opened form: a double click or a retry after a lost
    // answer resubmits the same key, and the server returns the first answer.
    key: newKey(),
    opener: document.activeElement,
  };
  // A kind with nothing to fill in (Resume, Keep subscription) goes straight to the confirm step.
  if (confirmNow || !spec.fields(state.ctx).length) review();
  else rerenderForm({ focusFirst: true });
}

export function closeForm({ refresh = false } = {}) {
  const opener = state.form && state.form.opener;
  state.form = null;
  renderActions();
  if (refresh) refreshContext(false);
  const kind = opener && opener.dataset && opener.dataset.kind;
  const again = kind && document.querySelector(`#bd-actions [data-kind="${kind}"]`);
  (again || document.getElementById("bd-actions-title") || document.body).focus?.();
}

function rerenderForm({ focusFirst = false, focusSelector } = {}) {
  renderActions();
  const form = document.getElementById("bd-form");
  if (!form) return;
  if (focusSelector) {
    const target = form.querySelector(focusSelector);
    if (target) {
      target.focus();
      return;
    }
  }
  if (focusFirst) {
    const first = form.querySelector("input, select, textarea, button.bd-btn--primary");
    if (first) first.focus();
  }
  form.scrollIntoView({ block: "nearest" });
}

function renderForm() {
  const form = state.form;
  const titleId = "bd-form-title";
  const container = h("div.bd-form", {
    id: "bd-form",
    role: "region",
    "aria-labelledby": titleId,
    "data-testid": "action-form",
    "data-step": form.step,
    onkeydown: (event) => {
      if (event.key === "Escape" && !form.inFlight) {
        event.preventDefault();
        closeForm({ refresh: form.step === "result" });
      }
    },
  });
  container.append(
    h("div.bd-form__head", {},
      h("h2.bd-form__title", { id: titleId, tabindex: "-1" }, actionLabel(form.kind)),
      button(gettext("Close"), () => closeForm({ refresh: form.step === "result" }), { kind: "link", small: true, "aria-label": gettext("Close the form"), disabled: form.inFlight }),
    ),
  );
  if (form.step === "edit") container.append(editStep());
  else if (form.step === "confirm") container.append(confirmStep());
  else container.append(resultStep());
  return container;
}

function fieldControl(field, value, error) {
  const id = `bd-f-${field.name}`;
  const describedBy = [field.help ? `${id}-help` : null, error ? `${id}-error` : null].filter(Boolean).join(" ") || null;
  const common = {
    id,
    name: field.name,
    "aria-invalid": error ? "true" : null,
    "aria-describedby": describedBy,
    onchange: (event) => onFieldChange(field, event.target),
    oninput: (event) => onFieldInput(field, event.target),
  };
  let control;
  if (field.type === "select") {
    control = h("select.bd-input", common, field.options.map(([key, label]) => h("option", { value: key, selected: key === value }, label)));
  } else if (field.type === "textarea") {
    control = h("textarea.bd-input", { ...common, rows: 3, maxlength: field.maxlength }, value || "");
  } else if (field.type === "checkbox") {
    return h("div.bd-field.bd-field--check", {},
      h("input", { ...common, type: "checkbox", checked: Boolean(value) }),
      h("label", { for: id }, field.label),
    );
  } else {
    const currency = state.ctx.customer && state.ctx.customer.currency;
    control = h("input.bd-input", {
      ...common,
      type: field.type === "money" ? "text" : field.type,
      inputmode: field.type === "money" ? "decimal" : field.type === "number" ? "numeric" : null,
      autocomplete: "off",
      min: field.min, max: field.max, step: field.step, maxlength: field.maxlength,
      value: value ?? "",
    });
    if (field.type === "money" && currency) {
      control = h("div.bd-money", {}, h("span.bd-money__currency", { "aria-hidden": "true" }, currency), control);
    }
  }
  return h("div.bd-field", {},
    h("label", { for: id }, field.type === "money" && state.ctx.customer ? `${field.label} (${state.ctx.customer.currency})` : field.label),
    control,
    field.help ? h("p.bd-help", { id: `${id}-help` }, field.help) : null,
    error ? h("p.bd-field-error", { id: `${id}-error` }, error) : null,
  );
}

function readValue(field, target) {
  return field.type === "checkbox" ? target.checked : target.value;
}

function onFieldInput(field, target) {
  state.form.values[field.name] = readValue(field, target);
}

function onFieldChange(field, target) {
  const form = state.form;
  form.values[field.name] = readValue(field, target);
  if (!form.spec.onChange) return;
  // A dependent field follows (the refund amount follows the charge): update it in place,
  // never re-render — a re-render between mousedown and click would swallow the click.
  const before = form.values;
  const after = form.spec.onChange(field.name, { ...before }, state.ctx);
  for (const [name, value] of Object.entries(after)) {
    if (value === before[name]) continue;
    const input = document.getElementById(`bd-f-${name}`);
    if (input) input.value = value;
  }
  form.values = after;
}

function editStep() {
  const form = state.form;
  const fields = form.spec.fields(state.ctx);
  const body = h("form.bd-form__body", {
    novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      review();
    },
  });
  if (form.serverError) body.append(h("p.bd-error", { role: "alert" }, errorText(form.serverError)));
  for (const field of fields) body.append(fieldControl(field, form.values[field.name], form.errors[field.name]));
  if (form.spec.needsPreview && form.previewError) {
    body.append(h("p.bd-error", { role: "alert", tabindex: "-1", "data-testid": "preview-error" }, errorText(form.previewError)));
  }
  body.append(
    h("div.bd-form__buttons", {},
      h("button.bd-btn.bd-btn--primary", { type: "submit", "data-testid": "form-review", disabled: form.inFlight },
        form.spec.needsPreview ? (form.inFlight ? gettext("Previewing…") : gettext("Preview")) : gettext("Review")),
      button(gettext("Cancel"), () => closeForm(), { kind: "secondary" }),
    ),
  );
  return body;
}

async function review() {
  const form = state.form;
  const built = form.spec.build(form.values, state.ctx);
  form.errors = built.errors || {};
  form.built = built;
  if (Object.keys(form.errors).length) {
    const first = Object.keys(form.errors)[0];
    rerenderForm({ focusSelector: `#bd-f-${first}` });
    live(interpolate(gettext("Check the form: %(errors)s"), { errors: Object.values(form.errors).join(" ") }, true));
    return;
  }
  if (form.spec.needsPreview) {
    form.inFlight = true;
    form.previewError = null;
    rerenderForm();
    try {
      form.preview = await state.api.post(`customers/${encodeURIComponent(state.customerId)}/${form.spec.preview}`, built.params);
    } catch (error) {
      // A refusal the server predicts (below the seats in use, a second discount, the same
      // plan…) is answered here, in its words, before the confirm step.
      form.previewError = error;
      form.inFlight = false;
      if (handleExpired(error)) return;
      rerenderForm({ focusSelector: "[data-testid=preview-error]" });
      return;
    }
    form.inFlight = false;
    if (state.form !== form) return;
  }
  form.step = "confirm";
  confirmAsk(form, (focusSelector) => rerenderForm({ focusSelector }));
  rerenderForm({ focusSelector: "[data-testid=dry-run]" });
}

function previewLines(lines) {
  return lines.length
    ? h("table.bd-table.bd-table--compact.bd-preview__lines", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, gettext("Line")), h("th.bd-num", { scope: "col" }, gettext("Amount")))),
      h("tbody", {}, lines.map((line) => h("tr", {}, h("td.bd-wrap", {}, line.description), h("td.bd-num", {}, money(line.amount))))))
    : h("p.bd-muted", {}, gettext("No proration lines."));
}

function previewView(preview) {
  const lines = preview.lines || [];
  if (!preview.direction) return changePreviewView(preview);
  return h("div.bd-preview", { "data-testid": "plan-preview" },
    h("h3.bd-subtitle", {}, preview.direction === "downgrade" ? gettext("Preview: downgrade") : gettext("Preview: upgrade")),
    previewLines(lines),
    h("dl.bd-dl", {},
      row(gettext("Amount due now"), money(preview.amount_due_now), { testid: "preview-due-now", emphasis: true }),
      row(gettext("New recurring amount"), money(preview.new_recurring_amount), { testid: "preview-recurring" }),
      row(gettext("Effective date"), longDate(preview.effective_date), { testid: "preview-effective" }),
    ),
  );
}

// A seat change's or a discount's preview: what the next invoice carries and bills.
function changePreviewView(preview) {
  const next = preview.next_invoice;
  return h("div.bd-preview", { "data-testid": "change-preview" },
    h("h3.bd-subtitle", {}, gettext("Preview: next invoice")),
    preview.kind === "adjust_seats" ? previewLines(preview.lines || []) : null,
    h("dl.bd-dl", {},
      row(gettext("Recurring amount now"), money(preview.current_recurring_amount), { testid: "preview-current" }),
      row(gettext("New recurring amount"), money(preview.new_recurring_amount), { testid: "preview-recurring" }),
      row(gettext("Amount due now"), money(preview.amount_due_now), { testid: "preview-due-now" }),
      row(gettext("Next invoice"), next ? amountOn(next.amount, longDate(next.date)) : gettext("None: the subscription does not renew"), { testid: "preview-next-invoice", emphasis: true }),
      next && next.discount && next.discount.amount ? row(gettext("Discount on it"), `−${money(next.discount)}`, { testid: "preview-next-discount" }) : null,
    ),
  );
}

function confirmStep() {
  const form = state.form;
  const built = form.built;
  const customer = state.ctx.customer || {};
  form.params = confirmParams(form);
  return h("div.bd-form__body", {},
    h("p.bd-confirm__lead", {}, gettext("Check what will happen:")),
    h("dl.bd-dl.bd-dl--confirm", { "data-testid": "confirm-summary" },
      row(gettext("Customer"), customer.name && customer.email ? `${customer.name} (${customer.email})` : customer.name || customer.email || customer.id || state.customerId),
      built.summary.map(([label, value]) => row(label, value)),
    ),
    form.preview ? previewView(form.preview) : null,
    h("p.bd-effect", {}, built.effect),
    confirmView(form),
    form.serverError ? h("p.bd-error", { role: "alert", "data-testid": "form-error" }, errorText(form.serverError)) : null,
    outcomeOpen(form.serverError)
      ? h("p.bd-help", { "data-testid": "outcome-open-help" },
        gettext("Billing Desk records that action as soon as Stripe answers (usually within a minute) and shows it under recent actions. Do not repeat it in Stripe either."))
      : null,
    h("div.bd-form__buttons", {},
      h("button.bd-btn.bd-btn--primary", {
        type: "button",
        "data-testid": "form-confirm",
        // An earlier action on the same object is still being confirmed: sending it again
        // (under any key) is what could move money twice.
        disabled: form.inFlight || outcomeOpen(form.serverError) || confirmBlocked(form),
        "aria-disabled": form.inFlight ? "true" : null,
        onclick: submit,
      }, form.inFlight ? gettext("Working…") : confirmButtonText(form)),
      button(gettext("Back"), () => back(), { disabled: form.inFlight }),
    ),
  );
}

function outcomeOpen(error) {
  return error instanceof ApiError && error.code === "action_outcome_unknown";
}

function back() {
  const form = state.form;
  // After a definite refusal (4xx) nothing was done: edited parameters are a new request.
  if (form.serverError && form.serverError.status >= 400 && form.serverError.status < 500) form.key = newKey();
  form.serverError = null;
  form.step = "edit";
  form.preview = null;
  rerenderForm({ focusFirst: true });
}

async function submit(event) {
  const form = state.form;
  if (!form || form.inFlight) return;
  form.inFlight = true;
  form.serverError = null;
  if (event && event.currentTarget) {
    event.currentTarget.disabled = true;
    event.currentTarget.textContent = gettext("Working…");
  }
  live(gettext("Submitting…"));
  try {
    let result;
    try {
      result = await state.api.post("actions/", {
        kind: form.kind,
        customer_id: state.customerId,
        ticket_id: (state.ticket && state.ticket.ticketId) || "",
        params: form.params,
        idempotency_key: form.key,
        handling_started_at: handlingStartedAt(),
      });
    } catch (error) {
      // The first submission under this key is still running: wait for its answer.
      if (!(error instanceof ApiError) || error.code !== "action_in_progress" || !error.details.action_id) throw error;
      result = await awaitAction(error.details.action_id);
    }
    form.result = result;
    form.step = "result";
    form.inFlight = false;
    if (state.form !== form) return;
    rerenderForm({ focusSelector: "#bd-form-title" });
    live(resultHeadline(result));
    refreshContext(false, { quiet: true });
  } catch (error) {
    form.inFlight = false;
    if (handleExpired(error)) return;
    form.serverError = error;
    if (state.form !== form) return;
    rerenderForm({ focusSelector: "[data-testid=form-error]" });
    live(interpolate(gettext("Not done: %(error)s"), { error: errorText(error) }, true));
  }
}

async function awaitAction(actionId) {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(500 * (attempt + 1), 2000)));
    const action = await state.api.get(`actions/${encodeURIComponent(actionId)}/`);
    if (action.status !== "executing") return action;
  }
  return state.api.get(`actions/${encodeURIComponent(actionId)}/`);
}

export async function quickPaymentLink(data) {
  openForm("generate_payment_link", { invoice_id: data.invoice_id || "" }, { confirmNow: true });
}
