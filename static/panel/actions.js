// What each action kind asks for, how its parameters are built for POST /actions/,
// and how the confirmation describes it. Amounts are typed in major units of the
// customer's currency and sent as integer minor units (DESIGN.md section 11).

import { PAYMENT_ACTIONS } from "./actions-payments.js";
import { SUBSCRIPTION_ACTIONS } from "./actions-subscriptions.js";

/**
 * Each kind (its label is the server's: vocabulary.js actionName): fields(ctx) → field specs; defaults(ctx, prefill) → values;
 * build(values, ctx) → {params, errors, measure: {amount?, currency?, percent?, days?}, summary: [[label, value]], effect};
 * applies(ctx) → whether to offer it for this customer.
 */
export const ACTIONS = { ...PAYMENT_ACTIONS, ...SUBSCRIPTION_ACTIONS };
