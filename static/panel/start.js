// Opening the panel: read the page's configuration, connect to the host (helpdesk frame),
// load who the agent is (GET me/) and the server's words (GET vocabulary/), then find the
// ticket's customer.

import { createApi } from "./api.js";
import { renderTabs } from "./approvals.js";
import { createHost, readConfig } from "./host.js";
import { tickAge } from "./loading.js";
import { findCustomer, lookup } from "./matching.js";
import { canApprove } from "./role.js";
import { handleExpired, showFatal, showLoading } from "./screens.js";
import { state } from "./state.js";
import { vocabularySet } from "./vocabulary.js";
import { gettext, language } from "./i18n.js";

function watchSize() {
  let last = 0;
  let queued = false;
  const send = () => {
    queued = false;
    const height = Math.ceil(document.getElementById("panel").getBoundingClientRect().height) + 2;
    if (height !== last && state.host) {
      last = height;
      state.host.resize(height);
    }
  };
  const schedule = () => {
    if (!queued) {
      queued = true;
      requestAnimationFrame(send);
    }
  };
  if (window.ResizeObserver) new ResizeObserver(schedule).observe(document.getElementById("panel"));
  else setInterval(schedule, 500);
  schedule();
}

export async function start() {
  state.config = state.config || readConfig();
  showLoading();
  if (!state.host) {
    state.host = await createHost(state.config);
    document.documentElement.dataset.host = state.host.name;
    state.api = createApi({ base: state.config.apiBase, session: state.host.session });
    state.host.onContextChange((next) => {
      const changed = next.requesterEmail && next.requesterEmail !== (state.ticket && state.ticket.requesterEmail);
      state.ticket = next;
      if (changed && !state.config.customerId && state.me) lookup(next.requesterEmail);
    });
    watchSize();
    setInterval(tickAge, 30000);
  }
  state.ticket = state.host.context;
  try {
    // The vocabulary is the same for every agent of a language and changes only with a
    // deploy: the browser may answer it from its cache (Cache-Control from the server). The
    // language is in the URL (the server reads it from the session, not from there) so a
    // cached English vocabulary never answers a German panel in the same browser.
    const [me, vocabulary] = await Promise.all([
      state.api.get("me/"),
      state.api.get("vocabulary/", { lang: language() }, { cache: "default" }),
    ]);
    vocabularySet(vocabulary);
    state.me = me;
  } catch (error) {
    if (handleExpired(error)) return;
    return showFatal(gettext("Could not open Billing Desk."), error);
  }
  if (canApprove()) {
    state.api.get("approvals/", { status: "pending" }).then((data) => {
      state.approvals.items = Array.isArray(data) ? data : data.results || data.items || [];
      if (document.getElementById("bd-tabs")) renderTabs();
    }).catch(() => {});
  }
  await findCustomer();
}
