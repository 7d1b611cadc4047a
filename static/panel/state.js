// What the panel knows right now (one object every view reads), the root element, the
// aria-live announcer and the region helper the views render into.

import { clear } from "./dom.js";

export const state = {
  config: null,
  host: null,
  api: null,
  me: null,
  ticket: null,
  customerId: "",
  matches: null,
  ctx: null,
  ctxError: null,
  loading: false,
  refreshing: false,
  tab: "billing",
  history: { items: [], nextCursor: null, loading: false, error: null },
  form: null,
  approvals: { items: null, loading: false, error: null, busy: {} },
  expired: false,
};

export const root = () => document.getElementById("bd-root");
export const live = (text) => {
  const region = document.getElementById("bd-live");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 30);
};

export function region(id) {
  return clear(document.getElementById(id));
}
