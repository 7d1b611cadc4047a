"""Freshdesk entry routes (mounted at ``/freshdesk/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("session/", views.session, name="freshdesk-session"),
    path("enroll/start/", views.enroll_start, name="freshdesk-enroll-start"),
    path("enroll/verify/", views.enroll_verify, name="freshdesk-enroll-verify"),
    path("panel/", views.panel, name="freshdesk-panel"),
]
