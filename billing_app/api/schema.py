"""What the OpenAPI document says about errors and money, written once for every endpoint.

Every error leaves the API in the one envelope (``helpdesk_connectors.wire.error_body``,
answered by ``api.exceptions.exception_handler``); :func:`error_responses` documents it,
with a sentence per status that names the codes an endpoint can answer.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

# Money on the wire: defined with the context's serializers, which are built below the API
# (the context snapshot stores their output; issue 15).
from ..selectors.context.serialize import MoneySerializer

# What each status means everywhere; an endpoint adds or replaces sentences with ``**text``.
ERROR_TEXT: dict[int, str] = {
    400: "Bad input (``error.code`` says which, e.g. ``invalid_params``); nothing changed.",
    401: "``not_authenticated``: no or invalid app session token.",
    403: "``not_permitted``: the role may not do this here (an attempted action is recorded).",
    404: "``not_found`` (or a more precise code): no such object in this workspace.",
    409: "``idempotency_key_reused``, ``idempotency_key_owned_by_another_agent``, "
    "``already_decided``, ``approval_expired``, ``action_in_progress`` or "
    "``action_outcome_unknown`` (an earlier action on the same charge, subscription or "
    "balance is still being confirmed with Stripe; ``details.action_id``).",
    422: "The billing state does not allow it (e.g. ``exceeds_refundable``); nothing changed.",
    503: "``provider_unavailable``: the billing provider cannot be reached and nothing "
    "is mirrored yet; retry.",
}


class ErrorSerializer(serializers.Serializer):
    """The error envelope: ``{"error": {"code", "message", "details"}}``."""

    class Meta:
        ref_name = "Error"

    class Body(serializers.Serializer):
        class Meta:
            ref_name = "ErrorBody"

        code = serializers.CharField(help_text="Machine-readable, stable.")
        message = serializers.CharField(help_text="For people; may change.")
        details = serializers.JSONField()

    error = Body()


def error_responses(*statuses: int, **text: str) -> dict[int, OpenApiResponse]:
    """``{status: OpenApiResponse(ErrorSerializer, …)}`` for ``statuses``.

    ``text`` replaces the generic sentence of a status for this endpoint, keyed
    ``s400``, ``s404``…: ``error_responses(400, 404, s404="No such customer.")``.
    """
    out = {}
    for status in statuses:
        description = text.get(f"s{status}", ERROR_TEXT[status])
        out[status] = OpenApiResponse(ErrorSerializer, description=description)
    return out


__all__ = ["ERROR_TEXT", "ErrorSerializer", "MoneySerializer", "error_responses"]
