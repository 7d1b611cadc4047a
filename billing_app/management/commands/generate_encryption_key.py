"""``manage.py generate_encryption_key`` — print a new key for secrets stored in the database."""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Print a new Fernet key for BILLING_DESK_ENCRYPTION_KEYS, the comma-separated keys "
        "(newest first) that encrypt Stripe keys, webhook secrets and helpdesk credentials in "
        "the database. First install: set the variable to this key. Rotation: prepend it "
        "(NEW,OLD), restart every process, run `manage.py rotate_encryption_keys`, then drop OLD."
    )
    # Must work before the key exists, when the production checks still fail.
    requires_system_checks: list = []

    def handle(self, *args, **options) -> None:
        self.stdout.write(Fernet.generate_key().decode())
