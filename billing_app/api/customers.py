"""API views: customers."""

urlpatterns: list = []
