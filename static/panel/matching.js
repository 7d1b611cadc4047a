// Which billing customer the ticket is about: a pinned or single match opens directly;
// several → the agent picks one (and may pin it); none → search by billing email.

import { clear, h } from "./dom.js";
import { shortDate } from "./format.js";
import { selectCustomer } from "./loading.js";
import { handleExpired, showFatal, showLoading } from "./screens.js";
import { live, root, state } from "./state.js";
import { errorText, statusText } from "./widgets.js";
import { gettext, interpolate } from "./i18n.js";

export async function findCustomer() {
  const ticket = state.ticket;
  if (state.config.customerId) return selectCustomer(state.config.customerId);
  if (!ticket.requesterEmail && !(ticket.organization && ticket.organization.id)) {
    return showEmpty(gettext("This ticket has no requester email."));
  }
  return lookup(ticket.requesterEmail);
}

export async function lookup(email) {
  state.lookupEmail = email;
  showLoading();
  let data;
  try {
    data = await state.api.get("customers/lookup/", {
      email,
      ticket_id: state.ticket.ticketId,
      organization_id: state.ticket.organization && state.ticket.organization.id,
    });
  } catch (error) {
    if (handleExpired(error)) return;
    return showFatal(gettext("Could not look the customer up."), error);
  }
  const matches = (data && data.matches) || [];
  state.matches = matches;
  const pinned = data.pinned_customer_id || (matches.find((m) => m.pinned) || {}).id;
  if (pinned) return selectCustomer(pinned);
  if (matches.length === 1) return selectCustomer(matches[0].id);
  if (!matches.length) return showEmpty(email ? interpolate(gettext("No billing customer matches %(email)s."), { email }, true) : gettext("No billing customer found."));
  return showPicker();
}

function matchLine(m) {
  const status = m.plan && m.plan.status && m.plan.status !== "active" ? m.plan.status_label || statusText(m.plan.status) : "";
  const plan = m.plan ? `${m.plan.display}${status ? ` (${status})` : ""}` : gettext("No subscription");
  const since = m.created ? interpolate(gettext("customer since %(date)s"), { date: shortDate(m.created) }, true) : "";
  return [m.email, plan, m.currency, since, m.deleted ? gettext("deleted") : "", m.id].filter(Boolean).join(" · ");
}

export function showPicker() {
  state.ctx = null;
  const el = root();
  clear(el);
  const name = "bd-match";
  const pinId = "bd-pin";
  const list = h("fieldset.bd-picker", {},
    h("legend", {}, interpolate(gettext("%(count)s billing customers match this requester. Which one is it?"), { count: state.matches.length }, true)),
    state.matches.map((m, i) => {
      const id = `bd-match-${i}`;
      return h("div.bd-choice", {},
        h("input", { type: "radio", name, id, value: m.id, checked: i === 0 }),
        h("label", { for: id }, h("strong", {}, m.name || m.email || m.id), h("span.bd-muted.bd-small.bd-block", {}, matchLine(m))),
      );
    }),
  );
  const form = h("form.bd-state", {
    "data-testid": "customer-picker",
    onsubmit: async (event) => {
      event.preventDefault();
      const chosen = form.querySelector(`input[name=${name}]:checked`);
      if (!chosen) return;
      if (document.getElementById(pinId).checked) {
        try {
          await state.api.post(`customers/${encodeURIComponent(chosen.value)}/link/`, {
            email: state.lookupEmail || state.ticket.requesterEmail || "",
            organization_id: (state.ticket.organization && state.ticket.organization.id) || "",
          });
          live(gettext("Customer pinned to this requester."));
        } catch (error) {
          if (handleExpired(error)) return;
          live(interpolate(gettext("Could not pin the customer: %(error)s"), { error: errorText(error) }, true));
        }
      }
      selectCustomer(chosen.value);
    },
  },
  h("h1.bd-title", {}, gettext("Choose the customer")),
  list,
  h("div.bd-field.bd-field--check", {},
    h("input", { type: "checkbox", id: pinId, checked: true }),
    h("label", { for: pinId }, gettext("Remember this customer for this requester")),
  ),
  h("div.bd-form__buttons", {}, h("button.bd-btn.bd-btn--primary", { type: "submit", "data-testid": "picker-select" }, gettext("Show billing"))),
  searchBox(),
  );
  el.append(form);
  const first = form.querySelector("input[type=radio]");
  if (first) first.focus();
}

function searchBox() {
  const id = "bd-search-email";
  return h("form.bd-search", {
    role: "search",
    onsubmit: (event) => {
      event.preventDefault();
      const value = document.getElementById(id).value.trim();
      if (!value || !/^[^@\s]+@[^@\s]+$/.test(value)) {
        document.getElementById(id).setAttribute("aria-invalid", "true");
        live(gettext("Enter an email address."));
        return;
      }
      state.config.customerId = "";
      lookup(value);
    },
  },
  h("label", { for: id }, gettext("Search by billing email")),
  h("div.bd-search__row", {},
    h("input.bd-input", { id, type: "email", autocomplete: "off", placeholder: gettext("billing@example.com"), "data-testid": "search-email" }),
    h("button.bd-btn.bd-btn--secondary", { type: "submit" }, gettext("Search")),
  ));
}

function showEmpty(text) {
  state.ctx = null;
  const el = root();
  clear(el);
  el.append(
    h("div.bd-state", { "data-testid": "empty-state" },
      h("h1.bd-title", {}, gettext("No billing account found")),
      h("p", {}, text),
      h("p.bd-muted", {}, gettext("The requester may pay with another email address. Search for the billing email:")),
      searchBox(),
    ),
  );
}
