/* Billing Desk for Freshdesk (FDK platform 3.0, ticket sidebar).
 *
 * 1. On app.activated (every ticket the agent opens): read the logged-in agent, the ticket, the
 *    requester and the account domain from the Freshdesk page.
 * 2. Find this agent's app session in the frame's localStorage (keyed by account domain and
 *    agent id). Only when there is none, or less than RENEW_MARGIN_MS of it is left, call the
 *    `createSession` request template: Freshworks' request proxy adds the shared secret from the
 *    secure iparam (Authorization header) and POSTs to Billing Desk's /freshdesk/session/, which
 *    looks the agent up with the Freshdesk API and answers {token, expires_at, expires_in}.
 *    The proxy allows 50 requests per minute per app per account, so one session serves the
 *    agent on every ticket for its whole lifetime (APP_SESSION_TTL_SECONDS, 15 minutes).
 * 3. Load the panel from Billing Desk by posting the token (form POST into the panel iframe, so
 *    it never appears in a URL or a log line). The token is not tied to a ticket: the ticket id
 *    travels beside it.
 * 4. While the app is open, renew the session once shortly before it expires and hand the new
 *    token to the panel. Nothing runs while the app is closed (app.deactivated stops the timer).
 * 5. Device enrollment (issue 17): Freshworks does not say which agent calls through the proxy,
 *    so Billing Desk gives a session only to an agent whose browser holds their device
 *    credential. When /freshdesk/session/ answers one of DEVICE_CODES (none yet, revoked,
 *    expired, another agent's), the frame drops any stored credential and shows a small form:
 *    "Send me a code" calls the `startEnrollment` template (Billing Desk emails a six-digit code
 *    to the agent's address as Freshdesk knows it, and answers only the masked address); the
 *    agent types the code, `verifyEnrollment` answers the device credential, which is kept in
 *    this frame's storage per account and agent and sent with every `createSession` call.
 * 6. Relay the panel's messages: its height (resize the app), a request for a fresh session
 *    (answered with the stored session when the panel holds an older one, else one renewal:
 *    the panel asks only after Billing Desk refused its token), and a public reply to put in
 *    the editor. On the panel's "ready" the frame answers with the ticket (subject and tags
 *    choose its investigation card). A ticket sidebar app opens the reply editor with text
 *    through the interface method client.interface.trigger("click", {id: "reply", text}).
 *
 * The shared secret never reaches this frame: only the request proxy reads secure iparams.
 * Texts follow the agent's Freshdesk language (loggedInUser.contact.language): English, German.
 */
(function () {
  "use strict";

  // The deployment's Billing Desk URL; `manage.py build_helpdesk_apps` writes it here.
  var BILLING_DESK_URL = "https://billing-desk.invalid";
  var PANEL_PATH = "/freshdesk/panel/";
  var STORAGE_PREFIX = "billing-desk:freshdesk-session:";
  var DEVICE_PREFIX = "billing-desk:freshdesk-device:";
  var ENROLLMENT_PREFIX = "billing-desk:freshdesk-enrollment:";
  // Billing Desk's answers after which this browser must be enrolled (again) for the agent.
  var DEVICE_CODES = [
    "device_enrollment_required",
    "device_credential_invalid",
    "device_credential_mismatch",
    "device_credential_revoked",
    "device_credential_expired",
    "device_credential_email_changed"
  ];
  // A stored session is reused while more than this is left; renewal happens this long before expiry.
  var RENEW_MARGIN_MS = 2 * 60 * 1000;
  // A panel that asks again this soon after a renewal gets the renewed session, not another call.
  var FORCED_RENEWAL_GAP_MS = 30 * 1000;
  var MINUTE_MS = 60 * 1000;
  // A panel loaded with a stored session says "ready"; if it does not, the session was refused
  // (for example after a role change): renew once and load the panel again.
  var READY_TIMEOUT_MS = 8000;

  var MESSAGES = {
    en: {
      loading: "Loading billing account…",
      not_verified: "Billing Desk could not verify you%(code)s. Ask your administrator to check the app settings.",
      helpdesk_down: "Freshdesk's API is not answering Billing Desk right now. Reload the ticket in a minute.",
      rate_limited: "Freshdesk is limiting how often apps may call out. Reload the ticket in a minute.",
      unreachable: "Billing Desk is not reachable. Reload the ticket to try again.",
      no_session: "Billing Desk did not return a session.",
      reply_failed: "Could not open the reply editor: copy the message from Billing Desk instead.",
      enroll_intro: "Billing Desk does not know this browser yet. To confirm it is you, it sends a code to your Freshdesk email address.",
      enroll_again: "This browser must be confirmed again (%(reason)s). Billing Desk sends a code to your Freshdesk email address.",
      enroll_send: "Send me a code",
      enroll_sent: "A code was sent to %(email)s. Type it here within %(minutes)s minutes.",
      enroll_code_label: "Code from the email",
      enroll_confirm: "Confirm this browser",
      enroll_resend: "Send a new code",
      code_wrong: "That code is not right. %(left)s tries left.",
      code_expired: "This code has expired. Ask for a new code.",
      code_used: "This code was already used. Ask for a new code.",
      code_not_sent: "Sending this code failed, so it cannot be used. Ask for a new code.",
      enrollment_unknown: "Ask for a new code.",
      enrollment_locked: "Too many wrong codes. Try again in %(minutes)s minutes.",
      enrollment_rate_limited: "Too many codes were sent in the last hour. Try again later.",
      email_unavailable: "The code could not be sent. Try again in a minute.",
      agent_without_email: "Freshdesk has no email address for you, so Billing Desk cannot send a code. Ask your administrator.",
      code_missing: "Type the six-digit code from the email."
    },
    de: {
      loading: "Abrechnungskonto wird geladen …",
      not_verified: "Billing Desk konnte die Anmeldung nicht bestätigen%(code)s. Bitte die App-Einstellungen von der Administration prüfen lassen.",
      helpdesk_down: "Die Freshdesk-API antwortet Billing Desk gerade nicht. Das Ticket in einer Minute neu laden.",
      rate_limited: "Freshdesk begrenzt gerade, wie oft Apps Anfragen senden dürfen. Das Ticket in einer Minute neu laden.",
      unreachable: "Billing Desk ist nicht erreichbar. Zum erneuten Versuch das Ticket neu laden.",
      no_session: "Billing Desk hat keine Sitzung zurückgegeben.",
      reply_failed: "Der Antworteditor ließ sich nicht öffnen: Die Nachricht bitte aus Billing Desk kopieren.",
      enroll_intro: "Billing Desk kennt diesen Browser noch nicht. Zur Bestätigung, dass Sie es sind, sendet es einen Code an Ihre E-Mail-Adresse in Freshdesk.",
      enroll_again: "Dieser Browser muss erneut bestätigt werden (%(reason)s). Billing Desk sendet einen Code an Ihre E-Mail-Adresse in Freshdesk.",
      enroll_send: "Code senden",
      enroll_sent: "Ein Code wurde an %(email)s gesendet. Bitte hier innerhalb von %(minutes)s Minuten eingeben.",
      enroll_code_label: "Code aus der E-Mail",
      enroll_confirm: "Browser bestätigen",
      enroll_resend: "Neuen Code senden",
      code_wrong: "Der Code stimmt nicht. Noch %(left)s Versuche.",
      code_expired: "Dieser Code ist abgelaufen. Bitte einen neuen Code anfordern.",
      code_used: "Dieser Code wurde bereits verwendet. Bitte einen neuen Code anfordern.",
      code_not_sent: "Das Senden dieses Codes ist fehlgeschlagen, daher kann er nicht verwendet werden. Bitte einen neuen Code anfordern.",
      enrollment_unknown: "Bitte einen neuen Code anfordern.",
      enrollment_locked: "Zu viele falsche Codes. Bitte in %(minutes)s Minuten erneut versuchen.",
      enrollment_rate_limited: "In der letzten Stunde wurden zu viele Codes gesendet. Bitte später erneut versuchen.",
      email_unavailable: "Der Code konnte nicht gesendet werden. Bitte in einer Minute erneut versuchen.",
      agent_without_email: "Freshdesk kennt keine E-Mail-Adresse für Sie, daher kann Billing Desk keinen Code senden. Bitte an die Administration wenden.",
      code_missing: "Bitte den sechsstelligen Code aus der E-Mail eingeben."
    }
  };

  var client = null;
  var backendOrigin = new URL(BILLING_DESK_URL).origin;
  var context = null;
  var language = "en";
  var active = false;
  var renewalTimer = null;
  var readyTimer = null;
  var inflight = null;
  var inflightKey = "";
  var lastForcedRenewal = 0;
  var panelToken = "";
  // The agent whose browser is being enrolled (the form is showing), and a call in flight.
  var enrolling = null;
  var enrollBusy = false;
  // Where storage is blocked (third-party storage off), sessions live as long as this frame.
  var memory = {};

  function text(key, values) {
    var table = MESSAGES[language] || MESSAGES.en;
    var template = table[key] || MESSAGES.en[key] || key;
    return template.replace(/%\((\w+)\)s/g, function (match, name) {
      return values && values[name] !== undefined ? String(values[name]) : "";
    });
  }

  function languageOf(user) {
    var code = user && user.contact && user.contact.language;
    var base = String(code || "").toLowerCase().split(/[-_]/)[0];
    return MESSAGES[base] ? base : "en";
  }

  function setStatus(message, isError) {
    var status = document.getElementById("status");
    status.textContent = message;
    status.className = isError ? "status error" : "status";
    status.hidden = false;
  }

  // --- the agent's session in this frame's storage ------------------------------------------

  function storage() {
    try {
      return window.localStorage;
    } catch (ignored) {
      return null;
    }
  }

  function storageKey(ctx) {
    return STORAGE_PREFIX + ctx.domain + ":" + ctx.agent_id;
  }

  // A stored record, only when it is this agent's on this account: never another agent's
  // or another account's session, whatever the key says.
  function parseStored(ctx, raw) {
    var session = null;
    try {
      session = raw ? JSON.parse(raw) : null;
    } catch (ignored) {
      return null;
    }
    if (!session || typeof session.token !== "string" || typeof session.expires !== "number" ||
        typeof session.lifetime !== "number" ||
        session.domain !== ctx.domain || String(session.agent_id) !== String(ctx.agent_id)) {
      return null;
    }
    return session;
  }

  // The frame's storage (shared by the agent's app frames) and this frame's memory copy:
  // the later-expiring of the two. Storage that reads but refused the write (quota) holds
  // nothing or an older session, and the memory copy must still serve every ticket.
  function readStored(ctx) {
    var store = storage();
    var raw = null;
    try {
      raw = store ? store.getItem(storageKey(ctx)) : null;
    } catch (ignored) {
      raw = null;
    }
    var stored = parseStored(ctx, raw);
    var kept = parseStored(ctx, memory[storageKey(ctx)] || null);
    if (!stored || (kept && kept.expires > stored.expires)) {
      return kept;
    }
    return stored;
  }

  function writeStored(ctx, session) {
    var store = storage();
    memory[storageKey(ctx)] = JSON.stringify(session);
    try {
      if (store) {
        store.setItem(storageKey(ctx), JSON.stringify(session));
      }
    } catch (ignored) {
      // Storage full or blocked: the session still serves this frame from memory; an older
      // stored one is dropped so that no frame takes it for the current one.
      try {
        store.removeItem(storageKey(ctx));
      } catch (alsoIgnored) {
        // blocked storage: nothing stored to drop
      }
    }
  }

  function forgetStored(ctx) {
    var store = storage();
    delete memory[storageKey(ctx)];
    try {
      if (store) {
        store.removeItem(storageKey(ctx));
      }
    } catch (ignored) {
      // nothing stored to forget
    }
  }

  // --- the agent's device credential and pending enrollment (issue 17) ---------------------------

  function storedRecord(prefix, ctx) {
    var key = prefix + ctx.domain + ":" + ctx.agent_id;
    var raw = memory[key] || null;
    try {
      var store = storage();
      raw = (store && store.getItem(key)) || raw;
    } catch (ignored) {
      // blocked storage: the memory copy serves
    }
    var record = null;
    try {
      record = raw ? JSON.parse(raw) : null;
    } catch (ignored) {
      return null;
    }
    // Never another agent's or another account's record, whatever the key says.
    if (!record || record.domain !== ctx.domain || String(record.agent_id) !== String(ctx.agent_id)) {
      return null;
    }
    return record;
  }

  function keepRecord(prefix, ctx, record) {
    var key = prefix + ctx.domain + ":" + ctx.agent_id;
    if (!record) {
      delete memory[key];
    } else {
      record.domain = ctx.domain;
      record.agent_id = ctx.agent_id;
      memory[key] = JSON.stringify(record);
    }
    try {
      var store = storage();
      if (store && record) {
        store.setItem(key, memory[key]);
      } else if (store) {
        store.removeItem(key);
      }
    } catch (ignored) {
      // Storage full or blocked: this frame keeps the record in memory; an older stored one is
      // dropped so that it is not read instead.
      try {
        storage().removeItem(key);
      } catch (alsoIgnored) {
        // blocked storage: nothing stored to drop
      }
    }
  }

  function deviceCredential(ctx) {
    var record = storedRecord(DEVICE_PREFIX, ctx);
    return record && typeof record.credential === "string" ? record.credential : "";
  }

  function errorCode(error) {
    try {
      var body = JSON.parse((error && error.response) || "{}");
      return (body && body.error && body.error.code) || "";
    } catch (ignored) {
      return "";
    }
  }

  function errorDetails(error) {
    try {
      var body = JSON.parse((error && error.response) || "{}");
      return (body && body.error && body.error.details) || {};
    } catch (ignored) {
      return {};
    }
  }

  function needsEnrollment(error) {
    return Boolean(error) && error.status === 401 && DEVICE_CODES.indexOf(errorCode(error)) >= 0;
  }

  // Two minutes, or a quarter of a shorter lifetime (a server with a short APP_SESSION_TTL_SECONDS
  // must not make every ticket, or the renewal timer, call the proxy again at once).
  function marginOf(session) {
    return Math.min(RENEW_MARGIN_MS, Math.max(0, session.lifetime || 0) / 4);
  }

  function usable(session) {
    return Boolean(session) && session.lifetime > 0 && session.expires - Date.now() > marginOf(session);
  }

  // --- the one proxy call ----------------------------------------------------------------------

  function createSession(ctx) {
    var credential = deviceCredential(ctx);
    return client.request
      .invokeTemplate("createSession", {
        body: JSON.stringify({
          agent_id: ctx.agent_id,
          domain: ctx.domain,
          ticket_id: ctx.ticket_id,
          requester_email: ctx.requester_email,
          device_credential: credential
        })
      })
      .then(function (data) {
        var answer = JSON.parse(data.response);
        if (!answer || typeof answer.token !== "string" || !answer.token) {
          throw new Error(text("no_session"));
        }
        // The lifetime counts from now on this browser's clock, so a skewed clock cannot keep
        // an expired token in use or renew a fresh one early.
        var lifetime = typeof answer.expires_in === "number" && answer.expires_in > 0
          ? answer.expires_in * 1000
          : Date.parse(answer.expires_at) - Date.now();
        lifetime = lifetime > 0 ? lifetime : 0;
        var session = {
          token: answer.token,
          expires_at: answer.expires_at,
          lifetime: lifetime,
          expires: Date.now() + lifetime,
          domain: ctx.domain,
          agent_id: ctx.agent_id
        };
        writeStored(ctx, session);
        return session;
      }, function (error) {
        // Refused for the credential sent: forget it, unless another of the agent's frames
        // has enrolled this browser again meanwhile (then the stored one is newer).
        if (needsEnrollment(error) && deviceCredential(ctx) === credential) {
          keepRecord(DEVICE_PREFIX, ctx, null);
        }
        throw error;
      });
  }

  function renew(ctx) {
    var key = storageKey(ctx);
    if (inflight && inflightKey === key) {
      return inflight;
    }
    inflightKey = key;
    inflight = createSession(ctx).then(
      function (session) {
        inflight = null;
        return session;
      },
      function (error) {
        inflight = null;
        if (error && error.status === 401) {
          forgetStored(ctx);
        }
        throw error;
      }
    );
    return inflight;
  }

  function ensureSession(ctx) {
    var stored = readStored(ctx);
    if (usable(stored)) {
      return Promise.resolve({ session: stored, reused: true });
    }
    return renew(ctx).then(function (session) {
      return { session: session, reused: false };
    });
  }

  // --- the panel ---------------------------------------------------------------------------------

  function panelFrame() {
    return document.getElementById("panel");
  }

  function postToPanel(message) {
    var frame = panelFrame();
    if (frame && frame.contentWindow) {
      frame.contentWindow.postMessage(message, backendOrigin);
    }
  }

  function sendSession(session) {
    panelToken = session.token;
    postToPanel({ type: "billing-desk:session", token: session.token, expires_at: session.expires_at });
  }

  function loadPanel(ctx, session, reused) {
    var form = document.getElementById("panel-entry");
    var frame = panelFrame();
    form.action = BILLING_DESK_URL + PANEL_PATH;
    form.elements.token.value = session.token;
    form.elements.ticket_id.value = ctx.ticket_id;
    form.elements.requester_email.value = ctx.requester_email;
    frame.hidden = false;
    document.getElementById("enroll").hidden = true;
    enrolling = null;
    form.submit();
    form.elements.token.value = "";
    panelToken = session.token;
    document.getElementById("status").hidden = true;
    clearTimeout(readyTimer);
    readyTimer = null;
    if (reused) {
      readyTimer = setTimeout(function () {
        readyTimer = null;
        if (active && context === ctx) {
          forgetStored(ctx);
          renew(ctx).then(function (fresh) {
            if (active && context === ctx) {
              loadPanel(ctx, fresh, false);
              scheduleRenewal(ctx, fresh);
            }
          }, onSessionFailure);
        }
      }, READY_TIMEOUT_MS);
    }
  }

  function scheduleRenewal(ctx, session) {
    clearTimeout(renewalTimer);
    renewalTimer = null;
    if (!active || !(session.lifetime > 0)) {
      return;
    }
    var delay = Math.max(1000, session.expires - marginOf(session) - Date.now());
    renewalTimer = setTimeout(function () {
      renewalTimer = null;
      if (!active || context !== ctx) {
        return;
      }
      ensureSession(ctx).then(function (result) {
        if (active && context === ctx) {
          sendSession(result.session);
          scheduleRenewal(ctx, result.session);
        }
      }, function () {
        // The panel asks for a session itself when Billing Desk refuses the old one.
      });
    }, delay);
  }

  function describe(error) {
    if (error && error.status === 401) {
      var body = {};
      try {
        body = JSON.parse(error.response || "{}");
      } catch (ignored) {
        body = {};
      }
      var code = body && body.error && body.error.code ? " (" + body.error.code + ")" : "";
      return text("not_verified", { code: code });
    }
    if (error && error.status === 429) {
      return text("rate_limited");
    }
    if (error && error.status === 503) {
      return text("helpdesk_down");
    }
    return text("unreachable");
  }

  function showError(error) {
    setStatus(describe(error), true);
  }

  // A session call failed: enroll this browser when that is why, else say what went wrong.
  function onSessionFailure(error) {
    if (needsEnrollment(error) && context) {
      showEnrollment(context, errorCode(error));
      return;
    }
    showError(error);
  }

  // --- the enrollment form (issue 17) ----------------------------------------------------------------

  // Billing Desk's enrollment refusals that have a text of their own.
  var ENROLL_ERRORS = [
    "code_wrong",
    "code_expired",
    "code_used",
    "code_not_sent",
    "enrollment_unknown",
    "enrollment_locked",
    "enrollment_rate_limited",
    "email_unavailable",
    "agent_without_email"
  ];

  function element(id) {
    return document.getElementById(id);
  }

  function enrollMessage(error) {
    var code = errorCode(error);
    var details = errorDetails(error);
    if (code === "code_wrong") {
      return text("code_wrong", { left: details.attempts_left });
    }
    if (code === "enrollment_locked") {
      return text("enrollment_locked", { minutes: Math.max(1, Math.ceil((details.retry_after || 60) / 60)) });
    }
    return ENROLL_ERRORS.indexOf(code) >= 0 ? text(code) : describe(error);
  }

  function showSendButton() {
    element("enroll-entry").hidden = true;
    element("enroll-send").textContent = text("enroll_send");
  }

  function showCodeEntry(pending) {
    var minutes = Math.max(1, Math.ceil((pending.expires - Date.now()) / MINUTE_MS));
    element("enroll-intro").textContent = text("enroll_sent", { email: pending.email, minutes: minutes });
    element("enroll-send").textContent = text("enroll_resend");
    element("enroll-entry").hidden = false;
    element("enroll-code").value = "";
    element("enroll-code").focus();
  }

  function showEnrollment(ctx, reason) {
    clearTimeout(readyTimer);
    clearTimeout(renewalTimer);
    readyTimer = null;
    renewalTimer = null;
    enrolling = ctx;
    panelFrame().hidden = true;
    element("status").hidden = true;
    element("enroll-intro").textContent = reason === "device_enrollment_required"
      ? text("enroll_intro")
      : text("enroll_again", { reason: reason });
    element("enroll-code-label").textContent = text("enroll_code_label");
    element("enroll-confirm").textContent = text("enroll_confirm");
    element("enroll-message").textContent = "";
    // A code asked for on another ticket (or before a reload) still serves until it expires.
    var pending = storedRecord(ENROLLMENT_PREFIX, ctx);
    if (pending && typeof pending.enrollment === "string" && pending.expires > Date.now()) {
      showCodeEntry(pending);
    } else {
      keepRecord(ENROLLMENT_PREFIX, ctx, null);
      showSendButton();
    }
    element("enroll").hidden = false;
  }

  // "Send me a code": Billing Desk emails it to the agent's Freshdesk address; the answer names
  // that address masked, never in full.
  function sendCode() {
    var ctx = enrolling;
    if (!ctx || enrollBusy) {
      return;
    }
    enrollBusy = true;
    element("enroll-message").textContent = "";
    client.request
      .invokeTemplate("startEnrollment", {
        body: JSON.stringify({
          agent_id: ctx.agent_id,
          domain: ctx.domain,
          device_label: String(navigator.userAgent || "").slice(0, 200)
        })
      })
      .then(function (data) {
        enrollBusy = false;
        var answer = JSON.parse(data.response);
        var pending = {
          enrollment: answer.enrollment,
          email: answer.email,
          expires: Date.now() + answer.expires_in * 1000
        };
        keepRecord(ENROLLMENT_PREFIX, ctx, pending);
        if (enrolling === ctx) {
          showCodeEntry(pending);
        }
      }, function (error) {
        enrollBusy = false;
        element("enroll-message").textContent = enrollMessage(error);
      });
  }

  // The typed code for this browser's device credential, kept for this agent on this account.
  function confirmCode(event) {
    event.preventDefault();
    var ctx = enrolling;
    var pending = ctx ? storedRecord(ENROLLMENT_PREFIX, ctx) : null;
    var typed = element("enroll-code").value.replace(/\s+/g, "");
    if (!ctx || !pending || enrollBusy) {
      return;
    }
    if (!/^[0-9]{6}$/.test(typed)) {
      element("enroll-message").textContent = text("code_missing");
      return;
    }
    enrollBusy = true;
    element("enroll-message").textContent = "";
    client.request
      .invokeTemplate("verifyEnrollment", {
        body: JSON.stringify({
          agent_id: ctx.agent_id,
          domain: ctx.domain,
          enrollment: pending.enrollment,
          code: typed,
          device_label: String(navigator.userAgent || "").slice(0, 200)
        })
      })
      .then(function (data) {
        enrollBusy = false;
        var answer = JSON.parse(data.response);
        keepRecord(DEVICE_PREFIX, ctx, { credential: answer.device_credential });
        keepRecord(ENROLLMENT_PREFIX, ctx, null);
        element("enroll").hidden = true;
        enrolling = null;
        if (active && context === ctx) {
          setStatus(text("loading"), false);
          openPanel(ctx);
        }
      }, function (error) {
        enrollBusy = false;
        var code = errorCode(error);
        if (code === "code_expired" || code === "code_used" || code === "enrollment_unknown") {
          keepRecord(ENROLLMENT_PREFIX, ctx, null);
          showSendButton();
        }
        element("enroll-message").textContent = enrollMessage(error);
      });
  }

  function refreshSession() {
    var ctx = context;
    if (!ctx) {
      return;
    }
    var stored = readStored(ctx);
    var now = Date.now();
    // The panel holds an older token than the one stored (renewed on another ticket or in
    // another tab): the stored one serves. The panel asks with the stored token only after
    // Billing Desk refused it, so then the session is renewed, once.
    if (usable(stored) && (stored.token !== panelToken || now - lastForcedRenewal < FORCED_RENEWAL_GAP_MS)) {
      sendSession(stored);
      return;
    }
    lastForcedRenewal = now;
    forgetStored(ctx);
    renew(ctx).then(function (session) {
      sendSession(session);
      scheduleRenewal(ctx, session);
    }, onSessionFailure);
  }

  function onMessage(event) {
    if (event.origin !== backendOrigin || !event.data || typeof event.data !== "object") {
      return;
    }
    var frame = panelFrame();
    if (event.data.type === "billing-desk:height" && typeof event.data.height === "number") {
      var height = Math.max(200, Math.min(2000, Math.round(event.data.height)));
      frame.style.height = height + "px";
      client.instance.resize({ height: String(height) + "px" });
    } else if (event.data.type === "billing-desk:ready" && context) {
      clearTimeout(readyTimer);
      readyTimer = null;
      postToPanel({
        type: "billing-desk:context",
        ticket_id: context.ticket_id,
        requester_email: context.requester_email,
        subject: context.subject,
        tags: context.tags,
        capabilities: ["reply"]
      });
    } else if (event.data.type === "billing-desk:reply" && typeof event.data.text === "string") {
      client.interface.trigger("click", { id: "reply", text: event.data.text }).catch(function () {
        setStatus(text("reply_failed"), true);
      });
    } else if (event.data.type === "billing-desk:refresh-session") {
      refreshSession();
    }
  }

  // --- lifecycle -----------------------------------------------------------------------------------

  function readContext() {
    return Promise.all([
      client.data.get("loggedInUser"),
      client.data.get("ticket"),
      client.data.get("requester"),
      client.data.get("domainName")
    ]).then(function (results) {
      var user = results[0].loggedInUser;
      language = languageOf(user);
      document.documentElement.lang = language;
      return {
        agent_id: user.id,
        ticket_id: results[1].ticket.id,
        subject: results[1].ticket.subject || "",
        tags: results[1].ticket.tags || [],
        requester_email: (results[2].requester && results[2].requester.email) || "",
        domain: String(results[3].domainName || "").toLowerCase()
      };
    });
  }

  function openPanel(ctx) {
    return ensureSession(ctx).then(function (result) {
      if (context === ctx && active) {
        loadPanel(ctx, result.session, result.reused);
        scheduleRenewal(ctx, result.session);
      }
    }, onSessionFailure);
  }

  function start() {
    active = true;
    return readContext()
      .then(function (ctx) {
        context = ctx;
        setStatus(text("loading"), false);
        return openPanel(ctx);
      })
      .catch(showError);
  }

  function stop() {
    active = false;
    clearTimeout(renewalTimer);
    clearTimeout(readyTimer);
    renewalTimer = null;
    readyTimer = null;
  }

  // index.html loads the app client and this script at the end of <body>: the DOM is ready.
  window.addEventListener("message", onMessage);
  element("enroll-send").addEventListener("click", sendCode);
  element("enroll").addEventListener("submit", confirmCode);
  app.initialized().then(function (initializedClient) {
    client = initializedClient;
    client.events.on("app.activated", start);
    client.events.on("app.deactivated", stop);
  });
})();
