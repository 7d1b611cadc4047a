"""Endpoints the panel needs beside the context.

* ``GET customers/{customer_id}/plans/`` — the plans the subscription can change to.
* ``POST customers/{customer_id}/refresh/`` — the agent's Refresh button: queue a
  refresh of the mirrored data now, whatever its age (one at a time per customer).
"""

from __future__ import annotations

from django.urls import re_path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..errors import NotFound
from ..models import MirrorCustomer
from ..roles import user_has_workspace_perm
from ..selectors.plans import plan_options
from ..services.refresh import customer_refresh_enqueue
from .customers import CUSTOMER_ID


def _reader(request: Request, customer_id: str):  # type: ignore[no-untyped-def]
    context = request.auth
    if not user_has_workspace_perm(context.user, "view_billing", context.workspace):
        # Not allowed to read billing here: the customer does not exist for them.
        raise NotFound(f"No customer {customer_id} in this workspace.", code="customer_not_found")
    return context


class PlanOptionsApi(APIView):
    class PlanSerializer(serializers.Serializer):
        id = serializers.CharField()
        name = serializers.CharField()
        nickname = serializers.CharField(allow_blank=True)
        unit_amount = serializers.DictField()
        quantity = serializers.IntegerField()
        amount = serializers.DictField()
        interval = serializers.CharField()
        interval_count = serializers.IntegerField()
        current = serializers.BooleanField()
        display = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PlanOptions"

        subscription_id = serializers.CharField(allow_null=True)
        quantity = serializers.IntegerField()
        currency = serializers.CharField(allow_blank=True)
        plans = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses={200: OutputSerializer, 404: serializers.DictField()})
    def get(self, request: Request, customer_id: str) -> Response:
        context = request.auth
        if not user_has_workspace_perm(context.user, "view_billing", context.workspace):
            # Not allowed to read billing here: the customer does not exist for them.
            raise NotFound(
                f"No customer {customer_id} in this workspace.", code="customer_not_found"
            )
        data = plan_options(workspace=context.workspace, customer_id=customer_id)
        data["plans"] = self.PlanSerializer(data["plans"], many=True).data
        return Response(self.OutputSerializer(data).data)


class CustomerRefreshApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerRefresh"

        refreshing = serializers.BooleanField()

    @extend_schema(request=None, responses={202: OutputSerializer, 404: serializers.DictField()})
    def post(self, request: Request, customer_id: str) -> Response:
        context = _reader(request, customer_id)
        customer = MirrorCustomer.objects.filter(
            workspace=context.workspace, stripe_id=customer_id
        ).first()
        if customer is None or customer.deleted:
            raise NotFound(
                f"No customer {customer_id} in this workspace.", code="customer_not_found"
            )
        refreshing = customer_refresh_enqueue(workspace=context.workspace, customer_id=customer_id)
        return Response(self.OutputSerializer({"refreshing": refreshing}).data, status=202)


urlpatterns = [
    re_path(
        rf"^customers/{CUSTOMER_ID}/plans/$", PlanOptionsApi.as_view(), name="api-plan-options"
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/refresh/$",
        CustomerRefreshApi.as_view(),
        name="api-customer-refresh",
    ),
]
