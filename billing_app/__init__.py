"""Billing Desk: the Django project package and the billing domain."""

from .celery import app as celery_app

__all__ = ["celery_app"]
