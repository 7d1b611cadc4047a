/* Billing Desk for Freshdesk (FDK platform 3.0, ticket sidebar).
 *
 * 1. On app.activated: read the logged-in agent, the ticket, the requester and the account
 *    domain from the Freshdesk page.
 * 2. Call the `createSession` request template: Freshworks' proxy adds the shared secret from
 *    the secure iparam and POSTs to Billing Desk's /freshdesk/session/, which looks the agent up
 *    with the Freshdesk API and answers {token, expires_at}.
 * 3. Load the panel from Billing Desk by posting the token (form POST into the panel iframe, so
 *    it never appears in a URL or a log line).
 * 4. Relay the panel's messages: its height (resize the app), a request for a fresh session
 *    when the short-lived token expires, and a public reply to put in the editor. On the panel's
 *    "ready" the frame answers with the ticket (subject and tags choose its investigation card).
 *    A ticket sidebar app opens the reply editor with text through the interface method
 *    client.interface.trigger("click", {id: "reply", text}) ("setValue" on the editor is for
 *    the conversation-editor location only).
 */
(function () {
  "use strict";

  var PANEL_PATH = "/freshdesk/panel/";
  var client = null;
  var backendOrigin = "";
  var context = null;

  function setStatus(text, isError) {
    var status = document.getElementById("status");
    status.textContent = text;
    status.className = isError ? "status error" : "status";
    status.hidden = false;
  }

  function readContext() {
    return Promise.all([
      client.data.get("loggedInUser"),
      client.data.get("ticket"),
      client.data.get("requester"),
      client.data.get("domainName"),
      client.iparams.get("billing_desk_host")
    ]).then(function (results) {
      var host = String(results[4].billing_desk_host || "").replace(/^https?:\/\//, "").replace(/\/+$/, "");
      backendOrigin = "https://" + host;
      return {
        agent_id: results[0].loggedInUser.id,
        ticket_id: results[1].ticket.id,
        subject: results[1].ticket.subject || "",
        tags: results[1].ticket.tags || [],
        requester_email: (results[2].requester && results[2].requester.email) || "",
        domain: results[3].domainName
      };
    });
  }

  function createSession() {
    return client.request
      .invokeTemplate("createSession", {
        body: JSON.stringify({
          agent_id: context.agent_id,
          domain: context.domain,
          ticket_id: context.ticket_id,
          requester_email: context.requester_email
        })
      })
      .then(function (data) {
        var session = JSON.parse(data.response);
        if (!session.token) {
          throw new Error("Billing Desk did not return a session.");
        }
        return session;
      });
  }

  function loadPanel(session) {
    var form = document.getElementById("panel-entry");
    var frame = document.getElementById("panel");
    form.action = backendOrigin + PANEL_PATH;
    form.elements.token.value = session.token;
    form.elements.ticket_id.value = context.ticket_id;
    form.elements.requester_email.value = context.requester_email;
    frame.hidden = false;
    form.submit();
    form.elements.token.value = "";
    document.getElementById("status").hidden = true;
  }

  function describe(error) {
    if (error && error.status === 401) {
      var body = {};
      try { body = JSON.parse(error.response || "{}"); } catch (ignored) { body = {}; }
      var code = body.error && body.error.code ? " (" + body.error.code + ")" : "";
      return "Billing Desk could not verify you" + code + ". Ask your administrator to check the app settings.";
    }
    if (error && error.status === 503) {
      return "Freshdesk's API is not answering Billing Desk right now. Reload the ticket in a minute.";
    }
    return "Billing Desk is not reachable. Reload the ticket to try again.";
  }

  function onMessage(event) {
    if (event.origin !== backendOrigin || !event.data || typeof event.data !== "object") {
      return;
    }
    var frame = document.getElementById("panel");
    if (event.data.type === "billing-desk:height" && typeof event.data.height === "number") {
      var height = Math.max(200, Math.min(2000, Math.round(event.data.height)));
      frame.style.height = height + "px";
      client.instance.resize({ height: String(height) + "px" });
    } else if (event.data.type === "billing-desk:ready" && context) {
      frame.contentWindow.postMessage(
        {
          type: "billing-desk:context",
          ticket_id: context.ticket_id,
          requester_email: context.requester_email,
          subject: context.subject,
          tags: context.tags,
          capabilities: ["reply"]
        },
        backendOrigin
      );
    } else if (event.data.type === "billing-desk:reply" && typeof event.data.text === "string") {
      client.interface.trigger("click", { id: "reply", text: event.data.text }).catch(function () {
        setStatus("Could not open the reply editor: copy the message from Billing Desk instead.", true);
      });
    } else if (event.data.type === "billing-desk:refresh-session") {
      createSession().then(function (session) {
        frame.contentWindow.postMessage(
          { type: "billing-desk:session", token: session.token, expires_at: session.expires_at },
          backendOrigin
        );
      }, function (error) {
        setStatus(describe(error), true);
      });
    }
  }

  function start() {
    readContext()
      .then(function (ctx) {
        context = ctx;
        return createSession();
      })
      .then(loadPanel)
      .catch(function (error) {
        setStatus(describe(error), true);
      });
  }

  // index.html loads the app client and this script at the end of <body>: the DOM is ready.
  window.addEventListener("message", onMessage);
  app.initialized().then(function (initializedClient) {
    client = initializedClient;
    client.events.on("app.activated", start);
  });
})();
