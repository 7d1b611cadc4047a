// The role's limit for an action in words, from GET me/ ("Your limit: up to $500.00;
// above that, your role may not do this."). What a request will do is the server's
// answer (confirm.js asks POST actions/dry-run/); the panel does not guess it.

import { roleLabel } from "./vocabulary.js";
import { gettext, interpolate, orList } from "./i18n.js";

/** "up to $500.00" / "below $500.00": the role's limit beside an action. */
export function limitWords(action) {
  const text = action.limit_inclusive === false ? gettext("below %(limit)s") : gettext("up to %(limit)s");
  return interpolate(text, { limit: action.limit_display }, true);
}

/** One sentence naming the role's limit and what happens above it; "" when there is none. */
export function limitSentence(action) {
  if (!action || action.mode !== "direct") return "";
  const parts = [];
  if (action.limit !== null && action.limit !== undefined && action.limit_display) {
    const values = { limit: action.limit_display, approvers: approvers(action) };
    const below = action.limit_inclusive === false;
    let text;
    if (action.above_limit === "deny") {
      text = below
        ? gettext("Your limit: below %(limit)s; your role may not do more.")
        : gettext("Your limit: up to %(limit)s; your role may not do more.");
    } else {
      text = below
        ? gettext("Your limit: below %(limit)s; more needs approval by %(approvers)s.")
        : gettext("Your limit: up to %(limit)s; more needs approval by %(approvers)s.");
    }
    parts.push(interpolate(text, values, true));
  }
  if (action.customer_requested_only) {
    parts.push(
      action.above_limit === "deny"
        ? gettext("Your role may do this only when the customer asked for it.")
        : interpolate(gettext("Without the customer's request it needs approval by %(approvers)s."), { approvers: approvers(action) }, true),
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
  return orList(roles.map((role) => roleLabel(role)));
}
