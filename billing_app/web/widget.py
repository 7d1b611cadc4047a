"""``/widget/api/v1/<slug>/…``: the billing help widget's API (docs/self-service.md, section 3).

Called by ``static/widget/billing-help.js`` from the customer's own product page, across
origins. Every call is a ``POST`` of JSON — ``{"customer", "signature", "visit", "lang",
…}`` — so the browser always sends ``Origin`` (a same-origin GET would not) and the
signature never lands in a URL or an access log:

* ``start/``: the widget's words and questions (nothing recorded — the script asks
  before showing anything, and shows nothing when refused);
* ``open/``: the customer opened it (one ``opened`` event per visit);
* ``answers/<question>/``: one answer (``answered``);
* ``contact/``: ``{"message"}`` → a helpdesk ticket (``contact``).

CORS, strictly: a preflight or a request is answered with
``Access-Control-Allow-Origin: <that exact origin>`` only when the origin is one of the
workspace's allowed origins; ``Vary: Origin`` always; never
``Access-Control-Allow-Credentials`` (the script sends no cookies, and no cookie or
session means anything here — hence ``csrf_exempt``: there is no ambient credential to
ride on). A foreign origin gets 403 with no CORS headers, so its page cannot read even
the refusal. The workspace and the origin are checked before the body is read, so an
allowed page can read every later error (415, malformed JSON, an unexpected exception:
the JSON envelope, logged with its traceback). Answers are ``no-store``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from helpdesk_connectors.wire import BodyRejected, error_response, json_loads_bounded

from ..errors import BillingDeskError
from ..locales import language_normalise, language_or_default
from ..selectors.widget import widget_for_slug, widget_origins
from ..services.widget import (
    WidgetCaller,
    WidgetRefused,
    widget_answer,
    widget_caller_resolve,
    widget_contact,
    widget_for_origin,
    widget_open,
    widget_texts,
    widget_visit_check,
)

logger = logging.getLogger(__name__)

PREFLIGHT_MAX_AGE = 600
_API_CSP = "default-src 'none'; frame-ancestors 'none'"

Handler = Callable[[WidgetCaller, dict[str, Any], dict[str, str]], dict[str, Any]]


def _finish(response: HttpResponse, origin: str | None) -> HttpResponse:
    """CORS for ``origin`` (an allowed one) or none at all; never cached, never framed."""
    if origin:
        response["Access-Control-Allow-Origin"] = origin
    patch_vary_headers(response, ["Origin"])
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = _API_CSP
    return response


def _preflight(request: HttpRequest, slug: str) -> HttpResponse:
    origin = request.headers.get("Origin", "")
    widget = widget_for_slug(slug=slug)
    if widget is None or origin not in widget_origins(widget):
        return _finish(HttpResponse(status=403), None)
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "POST"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return _finish(response, origin)


def _body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise BodyRejected(
            "Send JSON (Content-Type: application/json).",
            code="unsupported_media_type",
            status=415,
        )
    try:
        raw = request.body
    except RequestDataTooBig:
        raise BodyRejected(
            "The request body is too large.", code="body_too_large", status=413
        ) from None
    data = json_loads_bounded(raw or b"{}")
    if not isinstance(data, dict):
        raise BodyRejected("Send a JSON object.", code="malformed_request")
    return data


def _widget_endpoint(handler: Handler) -> Callable[..., HttpResponse]:
    """The CORS, identity and error handling every widget endpoint shares."""

    @csrf_exempt
    def view(request: HttpRequest, slug: str, **kwargs: str) -> HttpResponse:
        if request.method == "OPTIONS":
            return _preflight(request, slug)
        origin = request.headers.get("Origin", "")
        if request.method != "POST":
            response = error_response(405, "method_not_allowed", "Use POST.")
            response["Allow"] = "POST, OPTIONS"
            return _finish(response, None)
        allowed: str | None = None
        lang = ""
        try:
            widget = widget_for_origin(slug=slug, origin=origin)
            allowed = origin
            data = _body(request)
            lang = language_or_default(
                language_normalise(data.get("lang")) or translation.get_language()
            )
            with translation.override(lang):
                caller = widget_caller_resolve(
                    slug=slug,
                    origin=origin,
                    customer_id=data.get("customer"),
                    signature=data.get("signature"),
                    widget=widget,
                )
                payload = handler(caller, data, kwargs)
                response = JsonResponse(payload)
        except WidgetRefused as exc:
            return _finish(
                error_response(exc.status, exc.code, exc.message), origin if exc.cors else None
            )
        except BodyRejected as exc:
            return _finish(error_response(exc.status, exc.code, exc.message), allowed)
        except BillingDeskError as exc:
            # a refusal in the customer's words, in the language the page asked for
            response = error_response(exc.status, exc.code, exc.message, exc.details)
            if lang:
                response["Content-Language"] = lang
            return _finish(response, allowed)
        except DatabaseError as exc:
            # An outage answers the envelope, readable by an allowed page (the error
            # middleware's would carry no CORS); one line, no traceback.
            logger.warning("billing widget unavailable (%s)", type(exc).__name__)
            response = error_response(
                503, "service_unavailable", "The service is unavailable; try again shortly."
            )
            return _finish(response, allowed)
        except Exception:
            # A bug: its traceback logged, and the envelope the allowed page can read (the
            # script then shows its "something went wrong").
            logger.exception("billing widget request failed workspace=%s", slug[:50])
            response = error_response(500, "internal_error", "Something went wrong on our side.")
            return _finish(response, allowed)
        response["Content-Language"] = lang
        return _finish(response, allowed)

    return view


def _start(caller: WidgetCaller, data: dict[str, Any], kwargs: dict[str, str]) -> dict[str, Any]:
    return {"texts": widget_texts(caller=caller)}


def _open(caller: WidgetCaller, data: dict[str, Any], kwargs: dict[str, str]) -> dict[str, Any]:
    widget_open(caller=caller, visit=widget_visit_check(data.get("visit")))
    return {"ok": True}


def _answer(caller: WidgetCaller, data: dict[str, Any], kwargs: dict[str, str]) -> dict[str, Any]:
    answer = widget_answer(
        caller=caller,
        visit=widget_visit_check(data.get("visit")),
        question=kwargs.get("question", ""),
    )
    return {"answer": answer.as_dict()}


def _contact(caller: WidgetCaller, data: dict[str, Any], kwargs: dict[str, str]) -> dict[str, Any]:
    widget_contact(
        caller=caller, visit=widget_visit_check(data.get("visit")), message=data.get("message")
    )
    return {
        "ok": True,
        "message": gettext(
            "Thank you. We have opened a ticket and will reply by email to %(email)s."
        )
        % {"email": caller.customer.email},
    }


widget_start_view = _widget_endpoint(_start)
widget_open_view = _widget_endpoint(_open)
widget_answer_view = _widget_endpoint(_answer)
widget_contact_view = _widget_endpoint(_contact)
