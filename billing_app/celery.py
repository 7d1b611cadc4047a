"""Celery application. Tasks are interfaces: ids in, one service call out."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_app.settings")

app = Celery("billing_desk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["billing_app", "helpdesk_connectors"])
