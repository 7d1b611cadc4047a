/*
 * Billing Desk — billing help widget (docs/self-service.md, section 3).
 *
 * Embedded by one tag on the customer's own product page:
 *   <script async src="https://billing-desk.example/static/widget/billing-help.js"
 *           data-workspace="acme" data-customer="cus_…"
 *           data-signature="hex HMAC-SHA256(widget secret, customer id)"
 *           data-lang="en"></script>
 *
 * It asks Billing Desk (the origin it was loaded from) for its words first; refused —
 * no or a wrong signature, an origin the workspace does not allow — it shows nothing.
 * Otherwise a "Billing help" button opens a panel, rendered in a shadow root (the page's
 * styles and ours do not mix), built from text nodes only: no innerHTML, no inline
 * script or style, so it runs under a strict CSP. Every call is a POST of JSON without
 * cookies (credentials: "omit"); the texts come translated from the server (data-lang).
 * The visit id (counted for deflection) lives in the tab's sessionStorage.
 */
(function () {
  "use strict";

  var script =
    document.currentScript ||
    document.querySelector('script[data-workspace][src*="widget/billing-help.js"]');
  if (!script || !window.fetch || !window.URL || !Element.prototype.attachShadow) return;
  var ds = script.dataset;
  var slug = ds.workspace || "";
  var customer = ds.customer || "";
  var signature = ds.signature || "";
  if (!slug || !customer || !signature) return;

  var src = new URL(script.src, window.location.href);
  var api = src.origin + "/widget/api/v1/" + encodeURIComponent(slug) + "/";
  var cssUrl = new URL("billing-help.css", src).href;
  var lang = ds.lang || document.documentElement.lang || "";
  var visit = visitId();

  // One visit per tab session (sessionStorage), not per page view: a customer who reads
  // an answer, moves to another page and contacts support is one visit that contacted.
  // After a contact a new visit begins (the server opens one ticket per visit, so a
  // repeated send is one ticket and a later, second message is a ticket of its own).
  function visitId(renew) {
    var key = "billing-desk-widget-visit:" + slug + ":" + customer;
    try {
      var kept = renew ? "" : window.sessionStorage.getItem(key);
      if (kept && /^[0-9a-f]{32}$/.test(kept)) return kept;
    } catch (e) { /* storage refused (privacy settings): a visit per page view */ }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var fresh = Array.prototype.map
      .call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); })
      .join("");
    try { window.sessionStorage.setItem(key, fresh); } catch (e) { /* as above */ }
    return fresh;
  }

  function post(path, extra) {
    var body = { customer: customer, signature: signature, visit: visit, lang: lang };
    Object.keys(extra || {}).forEach(function (k) { body[k] = extra[k]; });
    return window
      .fetch(api + path, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        cache: "no-store",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      })
      .then(function (response) {
        return response
          .json()
          .catch(function () { return {}; })
          .then(function (data) { return { ok: response.ok, status: response.status, data: data }; });
      })
      .catch(function () { return { ok: false, status: 0, data: {} }; });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.appendChild(document.createTextNode(text));
    return node;
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : "";
  }

  function build(texts) {
    var host = el("div");
    host.setAttribute("data-billing-help", "");
    var root = host.attachShadow({ mode: "open" });
    var style = el("link");
    style.rel = "stylesheet";
    style.href = cssUrl;
    root.appendChild(style);

    var launcher = el("button", "bh-launcher", texts.launcher);
    launcher.type = "button";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("data-testid", "widget-launcher");

    var panel = el("section", "bh-panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", texts.title);
    panel.setAttribute("data-testid", "widget-panel");
    panel.hidden = true;

    var head = el("div", "bh-head");
    head.appendChild(el("h2", "bh-title", texts.title));
    var close = el("button", "bh-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", texts.close);
    head.appendChild(close);
    panel.appendChild(head);

    var body = el("div", "bh-body");
    panel.appendChild(body);
    var status = el("p", "bh-status");
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    panel.appendChild(status);

    var opened = false;

    function clear(node) {
      while (node.firstChild) node.removeChild(node.firstChild);
    }

    function say(text) {
      clear(status);
      if (text) status.appendChild(document.createTextNode(text));
    }

    function backButton() {
      var back = el("button", "bh-back", "← " + texts.back);
      back.type = "button";
      back.setAttribute("data-testid", "widget-back");
      back.addEventListener("click", showQuestions);
      return back;
    }

    function link(item) {
      var url = safeUrl(item.url);
      if (!url) return null;
      var a = el("a", "bh-link bh-link--" + (item.kind || "link"), item.label);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      return a;
    }

    function showQuestions() {
      clear(body);
      say("");
      body.appendChild(el("p", "bh-intro", texts.intro));
      var list = el("ul", "bh-questions");
      (texts.questions || []).forEach(function (q) {
        var li = el("li");
        var button = el("button", "bh-question", q.label);
        button.type = "button";
        button.setAttribute("data-question", q.key);
        button.addEventListener("click", function () { ask(q.key); });
        li.appendChild(button);
        list.appendChild(li);
      });
      var contactLi = el("li");
      var contact = el("button", "bh-question bh-question--contact", texts.contact);
      contact.type = "button";
      contact.setAttribute("data-question", "contact");
      contact.addEventListener("click", showContact);
      contactLi.appendChild(contact);
      list.appendChild(contactLi);
      body.appendChild(list);
    }

    function ask(key) {
      clear(body);
      body.appendChild(backButton());
      say(texts.loading);
      post("answers/" + encodeURIComponent(key) + "/").then(function (result) {
        if (!result.ok) {
          say((result.data.error && result.data.error.message) || texts.error);
          return;
        }
        say("");
        render(result.data.answer || {});
      });
    }

    function render(answer) {
      var box = el("div", "bh-answer");
      box.setAttribute("data-testid", "widget-answer");
      box.setAttribute("data-answer", answer.question || "");
      box.appendChild(el("h3", "bh-answer__title", answer.title));
      (answer.lines || []).forEach(function (line) { box.appendChild(el("p", "bh-line", line)); });
      if ((answer.items || []).length) {
        var list = el("ul", "bh-items");
        answer.items.forEach(function (item) {
          var li = el("li", "bh-item");
          li.appendChild(el("span", "bh-item__label", item.label));
          if (item.detail) li.appendChild(el("span", "bh-item__detail", item.detail));
          var links = el("span", "bh-item__links");
          (item.links || []).forEach(function (l) {
            var a = link(l);
            if (a) links.appendChild(a);
          });
          if (links.firstChild) li.appendChild(links);
          list.appendChild(li);
        });
        box.appendChild(list);
      }
      (answer.links || []).forEach(function (l) {
        var a = link(l);
        if (a) {
          a.className += " bh-link--primary";
          box.appendChild(a);
        }
      });
      body.appendChild(box);
    }

    function showContact() {
      clear(body);
      say("");
      body.appendChild(backButton());
      var form = el("form", "bh-contact");
      form.setAttribute("data-testid", "widget-contact");
      form.appendChild(el("p", "bh-line", texts.contact_intro));
      var id = "bh-message";
      var label = el("label", "bh-label", texts.message_label);
      label.htmlFor = id;
      var area = el("textarea", "bh-textarea");
      area.id = id;
      area.maxLength = 4000;
      area.rows = 4;
      area.required = true;
      var send = el("button", "bh-send", texts.send);
      send.type = "submit";
      form.appendChild(label);
      form.appendChild(area);
      form.appendChild(send);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (!area.value.trim()) return;
        send.disabled = true;
        say(texts.loading);
        post("contact/", { message: area.value }).then(function (result) {
          if (!result.ok) {
            send.disabled = false;
            say((result.data.error && result.data.error.message) || texts.error);
            return;
          }
          visit = visitId(true);
          clear(body);
          body.appendChild(backButton());
          var done = el("p", "bh-done", result.data.message || "");
          done.setAttribute("data-testid", "widget-contact-done");
          body.appendChild(done);
          say("");
        });
      });
      body.appendChild(form);
      area.focus();
    }

    function setOpen(open) {
      panel.hidden = !open;
      launcher.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) {
        if (!opened) {
          opened = true;
          post("open/");
        }
        showQuestions();
        var first = body.querySelector("button");
        if (first) first.focus();
      } else {
        launcher.focus();
      }
    }

    launcher.addEventListener("click", function () { setOpen(panel.hidden); });
    close.addEventListener("click", function () { setOpen(false); });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") setOpen(false);
    });

    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(host);
  }

  function start() {
    post("start/").then(function (result) {
      if (result.ok && result.data && result.data.texts) build(result.data.texts);
    });
  }

  // An async script in <head> may run before <body> exists.
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
