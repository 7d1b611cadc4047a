"""API views: reports."""

urlpatterns: list = []
