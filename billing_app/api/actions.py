"""API views: actions."""

urlpatterns: list = []
