"""``POST /api/v1/customers/<id>/refund-link/``: an agent sends a customer the self-service
refund-request link (the panel's "Send refund request link").

Needs ``view_billing`` on the caller's workspace; a customer outside it, or a caller who
may not read billing, is 404 ``customer_not_found`` (as every customer view answers).
The caller's role must also be able to refund (the guardian ``issue_refund`` permission
and an ``issue_refund`` matrix cell that is not "not permitted" — the panel shows the
button only then): else 403 ``not_permitted`` and no link. The link is audited with its
sender and ticket, and rate-limited (429 ``refund_link_rate_limited``: per customer and
per agent an hour).
"""

from __future__ import annotations

from django.urls import re_path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..services.refund_links import refund_link_create, refund_link_sender_check
from .customers import CUSTOMER_ID, billing_reader, customer_errors
from .schema import ErrorSerializer


class RefundLinkApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RefundLinkBody"

        ticket_id = serializers.RegexField(
            r"^[A-Za-z0-9_\-]{0,64}$", required=False, allow_blank=True, default=""
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RefundLink"

        link_id = serializers.UUIDField()
        url = serializers.URLField()
        expires_at = serializers.DateTimeField()

    @extend_schema(
        summary="Create a self-service refund-request link for the customer",
        description="A signed link to the customer's refund-request page, valid for the "
        "workspace's self_service_link_days. The agent sends it to the customer (a reply, a "
        "macro); the customer's requests are then decided by the agents' own rules. Only "
        "a role that may refund (directly or by approval) may send one.",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **customer_errors(400, 401, 404),
            403: OpenApiResponse(
                ErrorSerializer,
                description="``not_permitted``: the caller's role may not refund in this "
                "workspace (no ``issue_refund`` permission, or its matrix cell is not "
                "permitted).",
            ),
            429: OpenApiResponse(
                ErrorSerializer,
                description="``refund_link_rate_limited``: too many links this hour (per "
                "customer, per agent).",
            ),
        },
    )
    def post(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        refund_link_sender_check(context=context)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        link, url = refund_link_create(
            workspace=context.workspace,
            customer_id=customer_id,
            source="panel",
            created_by=context.user,
            ticket_id=body.validated_data["ticket_id"],
            installation=context.installation,
        )
        data = {"link_id": link.pk, "url": url, "expires_at": link.expires_at}
        return Response(self.OutputSerializer(data).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    re_path(
        rf"^customers/{CUSTOMER_ID}/refund-link/$",
        RefundLinkApi.as_view(),
        name="api-customer-refund-link",
    ),
]
