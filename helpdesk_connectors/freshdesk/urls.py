"""Freshdesk entry routes (mounted at ``/freshdesk/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("session/", views.session, name="freshdesk-session"),
    path("panel/", views.panel, name="freshdesk-panel"),
]
