// The role's limit for an action in words, from GET me/ ("Your limit: up to $500.00;
// above that, your role may not do this."). What a request will do is the server's
// answer (confirm.js asks POST actions/dry-run/); the panel does not guess it.

import { roleLabel } from "./vocabulary.js";

/** One sentence naming the role's limit and what happens above it; "" when there is none. */
export function limitSentence(action) {
  if (!action || action.mode !== "direct") return "";
  const parts = [];
  if (action.limit !== null && action.limit !== undefined && action.limit_display) {
    const above = action.above_limit === "deny"
      ? "your role may not do more"
      : `more needs approval by ${approvers(action)}`;
    parts.push(`Your limit: ${action.limit_inclusive === false ? "below" : "up to"} ${action.limit_display}; ${above}.`);
  }
  if (action.customer_requested_only) {
    parts.push(
      action.above_limit === "deny"
        ? "Your role may do this only when the customer asked for it."
        : `Without the customer's request it needs approval by ${approvers(action)}.`,
    );
  }
  return parts.join(" ");
}

/** The approvers of the route above the role's limit, as the server's route table says. */
function approvers(action) {
  const routes = [...(action.approval_routes || [])].sort((a, b) => a.threshold - b.threshold);
  const limit = action.limit;
  let chosen = routes[0];
  if (limit !== null && limit !== undefined) {
    for (const route of routes) {
      if (route.inclusive ? limit + 1 >= route.threshold : limit + 1 > route.threshold) chosen = route;
    }
  }
  const roles = (chosen && chosen.roles) || ["manager"];
  return roles.map((role) => `a ${roleLabel(role)}`).join(" or ");
}
