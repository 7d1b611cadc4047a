// Whole-panel states that replace the billing view: loading, a fatal error with
// "Try again", and an expired session.

import { ApiError } from "./api.js";
import { clear, h } from "./dom.js";
import { start } from "./start.js";
import { root, state } from "./state.js";
import { banner, button, errorText } from "./widgets.js";
import { gettext } from "./i18n.js";

export function showLoading() {
  const el = root();
  clear(el);
  el.append(
    h("div.bd-skeleton", { "aria-hidden": "true" },
      h("div.bd-skel.bd-skel--title"), h("div.bd-skel.bd-skel--line"), h("div.bd-skel.bd-skel--block"),
      h("div.bd-skel.bd-skel--line"), h("div.bd-skel.bd-skel--block")),
    h("p.bd-visually-hidden", { role: "status" }, gettext("Loading billing context…")),
  );
  document.getElementById("panel").setAttribute("aria-busy", "true");
}

export function showFatal(title, error) {
  const el = root();
  clear(el);
  el.append(
    h("div.bd-state", {},
      banner("danger", title, errorText(error), {
        testid: "error-banner",
        actions: [button(gettext("Try again"), () => start(), { small: true })],
      }),
    ),
  );
  document.getElementById("panel").setAttribute("aria-busy", "false");
}

export function handleExpired(error) {
  if (!(error instanceof ApiError) || error.status !== 401) return false;
  state.expired = true;
  const el = root();
  clear(el);
  el.append(
    h("div.bd-state", { "data-testid": "session-expired" },
      banner("warning", gettext("Session expired."), state.host ? state.host.expiredMessage : gettext("Reopen the app to continue.")),
    ),
  );
  return true;
}
