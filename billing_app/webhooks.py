"""``POST /webhooks/stripe/<workspace_slug>/``: Stripe's deliveries for one workspace.

A plain Django view, not DRF: it needs the raw body for the signature and has no
user. Order matters (STYLE.md 8): find the workspace (read only), verify the
signature on the raw body, and only then write — the event, stored once.
Processing is not done here: once the event row is committed the endpoint answers
200 JSON even with the broker down — the processing doorbell's failure is only logged
and the outbox re-drive (every minute) processes any event left ``received``.
Answers: 200 (stored, or a duplicate already stored), 400 with a code (missing,
invalid or expired signature; not a Stripe event), 404 (no such workspace, or it
is not connected to Stripe).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from helpdesk_connectors.wire import error_response

from .errors import ValidationFailed
from .services.webhooks import stripe_event_receive, stripe_webhook_verify, webhook_workspace_get


def _error(status: int, code: str, message: str) -> JsonResponse:
    return error_response(status, code, message)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, workspace_slug: str) -> JsonResponse:
    workspace = webhook_workspace_get(slug=workspace_slug)
    if workspace is None:
        return _error(404, "not_found", "No Stripe webhook endpoint at this address.")
    try:
        event = stripe_webhook_verify(
            secret=workspace.stripe_webhook_secret,
            payload=request.body,
            signature=request.headers.get("Stripe-Signature"),
        )
    except ValidationFailed as exc:
        return _error(400, exc.code, exc.message)
    stored, created = stripe_event_receive(workspace=workspace, event=event)
    return JsonResponse({"received": True, "event_id": stored.event_id, "duplicate": not created})
