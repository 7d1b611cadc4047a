// The demo host page plays the helpdesk: it mints a demo app session and opens the
// panel in its frame by form POST (as the Freshdesk app frame does), answers the
// panel's "ready" with the ticket's context, resizes the frame to the panel's height,
// renews the session when asked, and puts a public reply from the panel into the reply
// editor. The postMessage protocol is documented in static/panel/host.js.

import { gettext, interpolate } from "../panel/i18n.js";

const PREFIX = "billing-desk:";

function ticketContext() {
  const ticket = document.getElementById("ticket");
  return {
    type: `${PREFIX}context`,
    capabilities: ["reply"],
    ticket_id: ticket.dataset.ticketId,
    requester_email: ticket.dataset.requesterEmail,
    requester_name: ticket.dataset.requesterName,
    organization: ticket.dataset.organization ? { id: "", name: ticket.dataset.organization } : null,
    subject: ticket.dataset.subject || "",
    tags: (ticket.dataset.tags || "").split(" ").filter(Boolean),
  };
}

async function mintSession(form) {
  const response = await fetch(form.dataset.sessionUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({
      role: form.dataset.role,
      workspace: form.dataset.workspace,
      ticket_id: form.elements.ticket_id.value,
      requester_email: form.elements.requester_email.value,
    }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok || !data.token) {
    const error = (data && data.error) || {};
    throw new Error(`${error.message || `HTTP ${response.status}`}${error.code ? ` (${error.code})` : ""}`);
  }
  return data;
}

async function openPanel(form) {
  const status = document.getElementById("panel-status");
  try {
    const session = await mintSession(form);
    form.elements.token.value = session.token;
    form.submit();
    form.elements.token.value = "";
  } catch (error) {
    if (status) status.textContent = interpolate(gettext("Could not start the demo session: %(error)s"), { error: error.message }, true);
  }
}

function init() {
  document.documentElement.classList.add("demo-js");
  const frame = document.getElementById("panel-frame");
  const form = document.getElementById("panel-open");
  if (!frame || !form) return;

  window.addEventListener("message", (event) => {
    if (event.origin !== window.location.origin || event.source !== frame.contentWindow) return;
    const message = event.data;
    if (!message || typeof message.type !== "string" || !message.type.startsWith(PREFIX)) return;
    const type = message.type.slice(PREFIX.length);
    if (type === "ready") {
      frame.contentWindow.postMessage(ticketContext(), window.location.origin);
    } else if (type === "height" && Number.isFinite(message.height)) {
      frame.style.height = `${Math.max(200, Math.min(6000, Math.ceil(message.height)))}px`;
    } else if (type === "reply" && typeof message.text === "string") {
      const editor = document.getElementById("reply-body");
      editor.value = editor.value ? `${editor.value}\n\n${message.text}` : message.text;
      editor.focus();
      const status = document.getElementById("reply-status");
      if (status) status.textContent = gettext("Billing Desk put the customer message in the public reply.");
    } else if (type === "refresh-session") {
      mintSession(form)
        .then((session) => {
          frame.contentWindow.postMessage(
            { type: `${PREFIX}session`, token: session.token, expires_at: session.expires_at },
            window.location.origin,
          );
        })
        .catch(() => {});
    }
  });

  // The switchers submit themselves on change; the button stays for keyboards without JS.
  for (const select of document.querySelectorAll("[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }

  openPanel(form);

  const send = document.getElementById("reply-send");
  if (send) {
    send.addEventListener("click", () => {
      const editor = document.getElementById("reply-body");
      const text = editor.value.trim();
      if (!text) return;
      const list = document.getElementById("conversation");
      const item = document.createElement("li");
      item.className = "demo-msg demo-msg--agent";
      const who = document.createElement("p");
      who.className = "demo-msg__who";
      who.textContent = interpolate(gettext("%(agent)s · public reply · just now"), { agent: document.getElementById("ticket").dataset.agentName }, true);
      const body = document.createElement("p");
      body.className = "demo-msg__body";
      body.textContent = text;
      item.append(who, body);
      list.append(item);
      editor.value = "";
      const status = document.getElementById("reply-status");
      if (status) status.textContent = gettext("Reply added to the conversation (demo: nothing is emailed).");
    });
  }
}

init();
