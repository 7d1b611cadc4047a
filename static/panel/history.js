// The payment history (6 months, then "Load more"): one stacked entry per payment, so
// it fits the 320 px sidebar whatever the rows hold — date, amount and status on the
// first line; what was refunded, the method and the invoice on the second. A long
// invoice number is shortened with an ellipsis; its full value stays the link's text
// (what a screen reader reads and a copy takes) and its title.

import { h } from "./dom.js";
import { money, shortDate } from "./format.js";
import { loadMoreHistory } from "./loading.js";
import { state } from "./state.js";
import { button, errorText, statusBadge } from "./widgets.js";
import { gettext, interpolate } from "./i18n.js";

function invoiceView(item) {
  const number = item.invoice_number || item.invoice_id;
  if (!number) return null;
  const text = h("span.bd-payment__id", {}, number);
  const title = interpolate(gettext("Invoice %(number)s"), { number }, true);
  return h("span.bd-payment__invoice", { title },
    `${gettext("Invoice")} `,
    item.hosted_invoice_url
      ? h("a", { href: item.hosted_invoice_url, target: "_blank", rel: "noopener noreferrer", title }, text)
      : text,
  );
}

function paymentEntry(item) {
  const refunded = item.refunded && item.refunded.amount ? h("span.bd-payment__refund", {}, interpolate(gettext("−%(amount)s refunded"), { amount: money(item.refunded) }, true)) : null;
  const method = item.method ? h("span.bd-payment__method", {}, item.method) : null;
  const invoice = invoiceView(item);
  return h("li.bd-payment", { "data-charge-id": item.charge_id || "" },
    h("span.bd-payment__date", {}, shortDate(item.date)),
    h("span.bd-payment__amount", {}, money(item.amount)),
    h("span.bd-payment__status", {}, statusBadge(item.disputed ? "disputed" : item.status, item.disputed ? gettext("Disputed") : item.status_label)),
    refunded || method || invoice ? h("span.bd-payment__meta", {}, refunded, method, invoice) : null,
  );
}

export function paymentHistory() {
  const items = state.history.items;
  const wrap = h("div.bd-history", {});
  if (!items.length) {
    wrap.append(h("p.bd-muted", {}, gettext("No payments in the last 6 months.")));
  } else {
    wrap.append(h("ol.bd-payments", { "data-testid": "payment-history", "aria-label": gettext("Payments, newest first"), tabindex: "-1" }, items.map(paymentEntry)));
  }
  if (state.history.error) wrap.append(h("p.bd-error", { role: "alert" }, errorText(state.history.error)));
  if (state.history.nextCursor) {
    wrap.append(
      button(state.history.loading ? gettext("Loading…") : gettext("Load more"), loadMoreHistory, {
        small: true, testid: "history-more", disabled: state.history.loading,
      }),
    );
  }
  return wrap;
}
