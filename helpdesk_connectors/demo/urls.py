"""demo entry routes."""

urlpatterns: list = []
