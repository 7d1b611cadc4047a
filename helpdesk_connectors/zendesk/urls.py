"""Zendesk entry routes (mounted at ``/zendesk/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("sidebar/", views.sidebar, name="zendesk-sidebar"),
]
