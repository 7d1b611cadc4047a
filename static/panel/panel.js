// Billing Desk app panel: the customer's billing context beside the ticket, and the
// actions the agent's role allows. No build step; ES modules served as static files,
// loaded from this entry module (templates/panel/panel.html):
//
//   start.js      opening the panel: host, session, GET me/, then the customer
//   matching.js   which billing customer the ticket is about (pick, pin, search)
//   loading.js    loading the context and rendering the billing view whole
//   context.js    the billing account: header, banners, alerts, sections
//   forms.js      the Actions section and the action forms up to the confirm step
//   results.js    an action's outcome and the customer message
//   approvals.js  the Approvals tab
//   screens.js    loading, fatal-error and expired-session states
//   role.js       what the agent's role may do (from GET me/)
//   state.js      the panel's state, root element and live announcer
//   widgets.js    buttons, banners, rows, sections, badges
//   actions.js    one form spec per action kind; policy.js the confirmation's policy note
//   host.js, api.js, format.js, dom.js   the helpdesk, the API, money and dates, elements

import { start } from "./start.js";

document.documentElement.classList.add("bd-js");
start();
