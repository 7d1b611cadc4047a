// The agent's own reading of the permission matrix on the confirm step ("Within your
// limit", "Needs approval by Manager"); the server decides.

import { roleLabel } from "./vocabulary.js";

/** The agent's own reading of the matrix before submitting; the server decides. */
export function policyNote(action, measure, me) {
  const base = me && me.workspace ? me.workspace.base_currency : "USD";
  if (!action || action.mode === "not_permitted") return { kind: "deny", text: "Your role may not do this." };
  const value = measuredValue(action, measure, base);
  const by = approverText(action, value);
  if (action.mode === "request_approval") {
    return { kind: "approval", text: `Needs approval${by}: your role may request this, not do it.` };
  }
  if (action.customer_requested_only && measure.customerRequested === false) {
    return { kind: "approval", text: `Needs approval${by}: your role may do this only when the customer asked.` };
  }
  if (action.limit === null || action.limit === undefined) {
    return { kind: "direct", text: "Within your role's limits: it happens at once." };
  }
  if (value === null) {
    if (action.measure === "amount" && measure.amount !== undefined) {
      return {
        kind: "unknown",
        text: `Your limit is ${action.limit_display}; this amount is converted to ${base} at the workspace's rate — above the limit, or with no rate, it needs approval.`,
      };
    }
    return { kind: "unknown", text: "" };
  }
  const within = action.limit_inclusive ? value <= action.limit : value < action.limit;
  if (within) return { kind: "direct", text: `Within your limit (${limitWords(action)}): it happens at once.` };
  if (action.above_limit === "deny") return { kind: "deny", text: `Above your limit (${limitWords(action)}): your role may not do this.` };
  return { kind: "approval", text: `Needs approval${by}: above your limit (${limitWords(action)}).` };
}

/** The request's size in the unit of the limit, or null when it cannot be told here. */
function measuredValue(action, measure, base) {
  if (action.measure === "amount") {
    if (measure.amount === undefined) return null;
    return (measure.currency || "").toUpperCase() === base.toUpperCase() ? measure.amount : null;
  }
  if (action.measure === "percent") return measure.percent ?? null;
  if (action.measure === "days") return measure.days ?? null;
  return null;
}

function limitWords(action) {
  return `${action.limit_inclusive ? "up to" : "below"} ${action.limit_display}`;
}

/** " by Manager": the approval route this size takes, as policy.route_for chooses it. */
function approverText(action, value) {
  const routes = [...(action.approval_routes || [])].sort((a, b) => a.threshold - b.threshold);
  let roles = ["manager"];
  if (routes.length) {
    let chosen = routes[0];
    if (value === null || value === undefined) chosen = routes[routes.length - 1];
    else {
      for (const route of routes) {
        if (route.inclusive ? value >= route.threshold : value > route.threshold) chosen = route;
      }
    }
    roles = chosen.roles || roles;
  }
  return ` by ${roles.map(roleLabel).join(" or ")}`;
}
