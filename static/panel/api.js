// The Billing Desk API client: bearer token, JSON in and out, errors as ApiError
// carrying the server's {"error": {"code", "message", "details"}}.

import { gettext, interpolate } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function createApi({ base, session }) {
  const root = base.endsWith("/") ? base : `${base}/`;

  function url(path, query) {
    const target = new URL(root + path.replace(/^\//, ""), window.location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") {
        target.searchParams.set(key, String(value));
      }
    }
    return target.toString();
  }

  async function send(method, path, { query, body, cache = "no-store" } = {}, retried = false) {
    const token = session.token();
    if (!token) {
      throw new ApiError(401, "not_authenticated", gettext("No app session: reopen the app."));
    }
    const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url(path, query), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache,
      });
    } catch {
      throw new ApiError(
        0,
        "network_error",
        gettext("Billing Desk could not be reached. Check the connection and try again."),
      );
    }
    if (response.status === 401 && !retried && (await session.renew())) {
      return send(method, path, { query, body, cache }, true);
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(
        response.status,
        error.code || `http_${response.status}`,
        error.message || interpolate(gettext("The request failed (HTTP %(status)s)."), { status: response.status }, true),
        error.details,
      );
    }
    return data;
  }

  return {
    get: (path, query, { cache } = {}) => send("GET", path, { query, cache }),
    post: (path, body) => send("POST", path, { body: body || {} }),
  };
}
