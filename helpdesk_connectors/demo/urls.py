"""Demo entry routes (mounted at ``/demo/``; the host page ``GET /demo/`` lives with the web pages)."""

from django.urls import path

from . import views

urlpatterns = [
    path("session/", views.session, name="demo-session"),
    path("panel/", views.panel, name="demo-panel"),
]
