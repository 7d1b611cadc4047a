"""Endpoints the panel needs beside the context.

* ``GET customers/{customer_id}/plans/`` — the plans the subscription can change to.
* ``POST customers/{customer_id}/refresh/`` — the agent's Refresh button: queue a
  refresh of the mirrored data now, whatever its age (one at a time per customer).
* ``GET vocabulary/`` — the words the panel labels with (``billing_app.vocabulary``):
  refund reasons, cancellation feedback, decline codes, action and role labels… The
  panel loads it once at start, beside ``me/``, and holds no copy of these tables.
"""

from __future__ import annotations

from django.urls import path, re_path
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..errors import NotFound
from ..models import MirrorCustomer
from ..selectors.plans import plan_options
from ..services.refresh import customer_refresh_enqueue
from ..vocabulary import vocabulary_payload
from .customers import CUSTOMER_ID, billing_reader
from .schema import error_responses

# The vocabulary changes only with a deploy: the browser may reuse it for a while.
VOCABULARY_MAX_AGE = 300


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

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 404)})
    def get(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        data = plan_options(workspace=context.workspace, customer_id=customer_id)
        data["plans"] = self.PlanSerializer(data["plans"], many=True).data
        return Response(self.OutputSerializer(data).data)


class CustomerRefreshApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerRefresh"

        refreshing = serializers.BooleanField()

    @extend_schema(request=None, responses={202: OutputSerializer, **error_responses(401, 404)})
    def post(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        customer = MirrorCustomer.objects.filter(
            workspace=context.workspace, stripe_id=customer_id
        ).first()
        if customer is None or customer.deleted:
            raise NotFound(
                _("No customer %(customer)s in this workspace.") % {"customer": customer_id},
                code="customer_not_found",
            )
        refreshing = customer_refresh_enqueue(workspace=context.workspace, customer_id=customer_id)
        return Response(self.OutputSerializer({"refreshing": refreshing}).data, status=202)


def _pairs() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2),
        help_text="Ordered ``[key, label]`` pairs, in the order the panel offers them.",
    )


class DeclineWordsSerializer(serializers.Serializer):
    class Meta:
        ref_name = "DeclineCode"

    category = serializers.CharField(help_text="A key of ``failure_categories``.")
    agent_text = serializers.CharField()
    customer_text = serializers.CharField()


class VocabularyApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Vocabulary"

        refund_reasons = _pairs()
        cancellation_feedback = _pairs()
        pause_behaviors = _pairs()
        discount_durations = _pairs()
        tax_id_types = _pairs()
        failure_categories = _pairs()
        decline_codes = serializers.DictField(
            child=DeclineWordsSerializer(), help_text="Stripe decline / failure code → its words."
        )
        action_labels = _pairs()
        role_labels = _pairs()

    @extend_schema(
        summary="The words the panel labels with (the same for every agent)",
        responses={200: OutputSerializer, **error_responses(401)},
    )
    def get(self, request: Request) -> Response:
        response = Response(self.OutputSerializer(vocabulary_payload()).data)
        response["Cache-Control"] = f"private, max-age={VOCABULARY_MAX_AGE}"
        return response


urlpatterns = [
    path("vocabulary/", VocabularyApi.as_view(), name="api-vocabulary"),
    re_path(
        rf"^customers/{CUSTOMER_ID}/plans/$", PlanOptionsApi.as_view(), name="api-plan-options"
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/refresh/$",
        CustomerRefreshApi.as_view(),
        name="api-customer-refresh",
    ),
]
