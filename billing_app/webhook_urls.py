"""Stripe webhook routes."""

urlpatterns: list = []
