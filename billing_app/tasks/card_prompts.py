"""Celery task of the card-update prompts: the daily scan (beat). Ids in, one service call out.

Safe to run twice or concurrently: a prompt's unique key makes it once, and the emails
go out through the outbox (``services.card_prompts``).
"""

from __future__ import annotations

from celery import shared_task

from ..services.card_prompts import card_prompts_scan_all


@shared_task(acks_late=True, ignore_result=True)
def card_prompts_scan_task() -> int:
    """Beat, daily: every opted-in workspace's due prompts; returns how many were created."""
    return sum(result.created for result in card_prompts_scan_all())
