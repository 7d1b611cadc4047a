// What the agent's role may do, from GET me/: each action's mode (direct, request_approval,
// not_permitted), its label as the role sees it, and whether the agent approves requests.

import { state } from "./state.js";
import { actionName } from "./vocabulary.js";
import { gettext, interpolate } from "./i18n.js";

export function canApprove() {
  const me = state.me;
  if (!me) return false;
  if (typeof me.can_approve === "boolean") return me.can_approve;
  return Boolean(me.role && me.role.key === "manager");
}

export function meAction(kind) {
  return state.me && (state.me.actions || []).find((a) => a.kind === kind);
}

export function actionMode(kind) {
  const action = meAction(kind);
  return action ? action.mode : "not_permitted";
}

export function actionLabel(kind) {
  const label = actionName(kind);
  return actionMode(kind) === "request_approval" ? interpolate(gettext("Request approval: %(action)s"), { action: label }, true) : label;
}
