"""Stripe webhook routes: one endpoint per workspace, verified with that workspace's secret."""

from django.urls import path

from .webhooks import stripe_webhook

urlpatterns = [
    path("stripe/<slug:workspace_slug>/", stripe_webhook, name="stripe-webhook"),
]
