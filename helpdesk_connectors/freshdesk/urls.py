"""freshdesk entry routes."""

urlpatterns: list = []
