"""zendesk entry routes."""

urlpatterns: list = []
