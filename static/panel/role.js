// What the agent's role may do, from GET me/: each action's mode (direct, request_approval,
// not_permitted), its label as the role sees it, and whether the agent approves requests.

import { ACTIONS } from "./actions.js";
import { humanize } from "./format.js";
import { state } from "./state.js";

export function canApprove() {
  const me = state.me;
  if (!me) return false;
  if (typeof me.can_approve === "boolean") return me.can_approve;
  return Boolean(me.role && me.role.key === "manager");
}

export function roleLabel(role) {
  return { l1: "L1 Agent", l2: "L2 Agent", manager: "Manager", specialist: "Billing Specialist", vp: "VP", legal: "Legal" }[role] || role;
}

export function meAction(kind) {
  return state.me && (state.me.actions || []).find((a) => a.kind === kind);
}

export function actionMode(kind) {
  const action = meAction(kind);
  return action ? action.mode : "not_permitted";
}

export function actionLabel(kind) {
  const spec = ACTIONS[kind];
  const label = spec ? spec.label : humanize(kind);
  return actionMode(kind) === "request_approval" ? `Request approval: ${label}` : label;
}
