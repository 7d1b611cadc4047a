// The helpdesk around the panel. Three hosts give the same things — the ticket's
// requester and id, a way to resize the frame, a way to put a public reply in the
// editor, and what to do when the app session expires:
//   zendesk   — the ZAF SDK (client.get / client.invoke), loaded only there;
//   freshdesk — the FDK app frame (freshdesk_app/app/scripts/app.js) over postMessage;
//   demo      — the demo host page over postMessage, plus URL parameters.
//
// postMessage protocol (the one freshdesk_app/app/scripts/app.js speaks; the demo host too):
//   panel → host  {type: "billing-desk:ready"}                 the panel is listening
//                 {type: "billing-desk:height", height}         resize the frame to this height
//                 {type: "billing-desk:refresh-session"}        the app session expired: send a new one
//                 {type: "billing-desk:reply", text}            put this public reply in the editor
//                                                               (only when the host offered "reply")
//   host → panel  {type: "billing-desk:session", token, expires_at}
//                 {type: "billing-desk:context", ticket_id, requester_email, requester_name,
//                  organization: {id, name}, subject, tags: [..], capabilities: ["reply"]}
// The ticket's subject and tags choose the investigation card (investigations.js).
// Messages are taken only from the parent frame. Which origins may be that parent is
// enforced by the panel page's CSP frame-ancestors (every ancestor is checked when the
// frame loads), so the parent is a helpdesk frame the installation allows.

import { gettext } from "./i18n.js";

const PREFIX = "billing-desk:";

export function readConfig() {
  const el = document.getElementById("panel");
  const data = el ? el.dataset : {};
  let extra = {};
  const block = document.getElementById("panel-config");
  if (block) {
    try {
      extra = JSON.parse(block.textContent || "{}") || {};
    } catch {
      extra = {};
    }
  }
  const params = new URLSearchParams(window.location.search);
  const pick = (...values) => values.find((v) => v !== undefined && v !== null && v !== "") || "";
  return {
    token: pick(extra.app_token, data.token),
    expiresAt: pick(extra.app_token_expires_at, data.tokenExpiresAt),
    connector: pick(extra.connector, data.connector, "demo"),
    helpdeskOrigin: pick(extra.helpdesk_origin, data.helpdeskOrigin),
    ticketId: pick(extra.ticket_id, data.ticketId, params.get("ticket_id")),
    requesterEmail: pick(extra.requester_email, data.requesterEmail, params.get("email")),
    requesterName: pick(extra.requester_name, params.get("name")),
    organization: extra.organization || (params.get("org") ? { id: params.get("org"), name: "" } : null),
    customerId: pick(extra.customer_id, data.customerId, params.get("customer")),
    subject: pick(extra.subject, params.get("subject")),
    tags: extra.tags || params.get("tags") || [],
    apiBase: pick(extra.api_base, data.apiBase, "/api/v1/"),
  };
}

function withTimeout(promise, ms, fallback) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(fallback), ms))]);
}

class ParentChannel {
  constructor(config) {
    // Outgoing messages name the parent's origin when the page knows it (the demo is
    // same-origin); a Freshdesk panel's parent is the FDK app frame, whose origin the
    // frame-ancestors policy already pins, so "*" reaches only that frame.
    this.origin = config.connector === "demo" ? window.location.origin : "";
    this.listeners = new Set();
    this.framed = Boolean(window.parent && window.parent !== window);
    window.addEventListener("message", (event) => {
      if (!this.framed || event.source !== window.parent) return;
      if (this.origin && event.origin !== this.origin) return;
      const message = event.data;
      if (!message || typeof message !== "object" || typeof message.type !== "string") return;
      if (!message.type.startsWith(PREFIX)) return;
      const type = message.type.slice(PREFIX.length);
      for (const listener of this.listeners) listener(type, message);
    });
  }

  post(type, data = {}) {
    if (!this.framed) return false;
    window.parent.postMessage({ ...data, type: PREFIX + type }, this.origin || "*");
    return true;
  }

  next(type, ms) {
    return withTimeout(
      new Promise((resolve) => {
        const listener = (got, message) => {
          if (got === type) {
            this.listeners.delete(listener);
            resolve(message);
          }
        };
        this.listeners.add(listener);
      }),
      ms,
      null,
    );
  }

  on(type, callback) {
    this.listeners.add((got, message) => got === type && callback(message));
  }
}

function tagsFrom(value) {
  if (Array.isArray(value)) return value.map((tag) => String(tag || "").trim()).filter(Boolean).slice(0, 50);
  if (typeof value === "string") return value.split(/[\s,]+/).filter(Boolean).slice(0, 50);
  return [];
}

function contextFrom(message, config) {
  const org = message.organization;
  return {
    ticketId: String(message.ticket_id || config.ticketId || ""),
    requesterEmail: String(message.requester_email || config.requesterEmail || ""),
    requesterName: String(message.requester_name || config.requesterName || ""),
    organization: org && (org.id || org.name) ? { id: String(org.id || ""), name: String(org.name || "") } : config.organization,
    subject: String(message.subject || config.subject || "").slice(0, 500),
    tags: tagsFrom(message.tags !== undefined ? message.tags : config.tags),
  };
}

/** A session: the app token and how to renew it in this host. */
export class Session {
  constructor(config, renewer) {
    this.value = config.token;
    this.expiresAt = config.expiresAt;
    this.renewer = renewer;
    this.pending = null;
  }

  token() {
    return this.value;
  }

  set(token, expiresAt) {
    if (token) this.value = token;
    if (expiresAt) this.expiresAt = expiresAt;
  }

  /** One renewal at a time; true when a fresh token is in hand. */
  async renew() {
    if (!this.renewer) return false;
    if (!this.pending) {
      this.pending = this.renewer()
        .then((fresh) => {
          if (fresh && fresh.token) {
            this.set(fresh.token, fresh.expires_at);
            return true;
          }
          return false;
        })
        .catch(() => false)
        .finally(() => {
          setTimeout(() => {
            this.pending = null;
          }, 0);
        });
    }
    return this.pending;
  }
}

async function zendeskHost(config) {
  const client = window.ZAFClient.init();
  let context = contextFrom({}, config);
  try {
    const data = await withTimeout(
      client.get([
        "ticket.requester.email",
        "ticket.requester.name",
        "ticket.id",
        "ticket.organization",
        "ticket.subject",
        "ticket.tags",
      ]),
      8000,
      {},
    );
    const org = data["ticket.organization"];
    context = contextFrom(
      {
        ticket_id: data["ticket.id"],
        requester_email: data["ticket.requester.email"],
        requester_name: data["ticket.requester.name"],
        organization: org ? { id: org.id, name: org.name } : null,
        subject: data["ticket.subject"],
        tags: data["ticket.tags"],
      },
      config,
    );
  } catch {
    // Outside a ticket (or the SDK refused): carry on with what the page was given.
  }
  return {
    name: "zendesk",
    context,
    session: new Session(config, null),
    canReply: true,
    resize(height) {
      client.invoke("resize", { width: "100%", height: `${height}px` });
    },
    // ZAF ticket sidebar: the Comment object's "comment.type" property (publicReply or
    // internalNote) and its "comment.appendText" action put the text in the editor; the
    // agent still reviews and submits the ticket.
    async reply(text) {
      await client.set("comment.type", "publicReply");
      await client.invoke("comment.appendText", text);
      return gettext("The message is in the public reply editor: review it and submit the ticket.");
    },
    onContextChange(callback) {
      client.on("ticket.requester.email.changed", (email) => {
        context = { ...context, requesterEmail: String(email || "") };
        callback(context);
      });
      client.on("ticket.subject.changed", (subject) => {
        context = { ...context, subject: String(subject || "") };
        callback(context);
      });
      client.on("ticket.tags.changed", (tags) => {
        context = { ...context, tags: tagsFrom(tags) };
        callback(context);
      });
    },
    expiredMessage: gettext("Your Billing Desk session expired. Reopen the ticket (or reload the apps) to continue."),
  };
}

async function framedHost(config) {
  const channel = new ParentChannel(config);
  let context = contextFrom({}, config);
  let capabilities = [];
  const contextListeners = new Set();
  channel.on("context", (message) => {
    context = contextFrom(message, config);
    capabilities = Array.isArray(message.capabilities) ? message.capabilities : capabilities;
    for (const listener of contextListeners) listener(context);
  });
  const session = new Session(
    config,
    channel.framed
      ? async () => {
          const wait = channel.next("session", 10000);
          channel.post("refresh-session");
          const message = await wait;
          return message && message.token ? { token: message.token, expires_at: message.expires_at } : null;
        }
      : null,
  );
  channel.on("session", (message) => message.token && session.set(message.token, message.expires_at));
  // A host that has the ticket's context (the demo) answers "ready" at once; the Freshdesk
  // app frame posts the ticket with the token instead, so the page already has it.
  const first = channel.next("context", config.token ? 250 : 10000);
  channel.post("ready");
  await first;
  return {
    name: config.connector,
    get context() {
      return context;
    },
    session,
    get canReply() {
      return capabilities.includes("reply");
    },
    resize(height) {
      channel.post("height", { height });
    },
    async reply(text) {
      if (!capabilities.includes("reply") || !channel.post("reply", { text })) {
        throw new Error(gettext("This helpdesk frame cannot take a reply: copy the message instead."));
      }
      return gettext("The message is in the ticket's public reply editor.");
    },
    onContextChange(callback) {
      contextListeners.add(callback);
    },
    expiredMessage:
      config.connector === "demo"
        ? gettext("The demo session expired and could not be renewed. Reload the page.")
        : gettext("Your Billing Desk session expired. Reopen the app to continue."),
  };
}

export async function createHost(config) {
  if (config.connector === "zendesk" && window.ZAFClient) return zendeskHost(config);
  return framedHost(config);
}
