"""API views: approvals."""

urlpatterns: list = []
