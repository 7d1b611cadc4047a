"""Staff and demo web pages."""

urlpatterns: list = []
