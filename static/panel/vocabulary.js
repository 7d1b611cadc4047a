// Billing Desk's words, defined once on the server (billing_app/vocabulary.py) and loaded
// at start from GET vocabulary/: refund reasons, cancellation feedback, pause behaviours,
// discount durations, tax-id types, decline codes, action and role labels. The panel
// keeps no copy of these tables; until the vocabulary is loaded, keys read as words.

import { humanize } from "./format.js";

let words = {};

export function vocabularySet(payload) {
  words = payload && typeof payload === "object" ? payload : {};
}

/** The ordered [key, label] pairs of one table (e.g. "refund_reasons"), for a select. */
export function choices(table) {
  return Array.isArray(words[table]) ? words[table] : [];
}

function find(table, key) {
  return choices(table).find(([k]) => k === key);
}

/** The label of `key` in `table` (the key itself when the table has no such key). */
export function label(table, key) {
  const pair = find(table, key);
  return pair ? pair[1] : key;
}

export function actionName(kind) {
  const pair = find("action_labels", kind);
  return pair ? pair[1] : humanize(kind);
}

export function roleLabel(role) {
  return label("role_labels", role);
}
