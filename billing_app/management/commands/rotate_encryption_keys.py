"""``manage.py rotate_encryption_keys`` — re-encrypt every stored secret under the newest key."""

from __future__ import annotations

from collections import Counter

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from helpdesk_connectors import session_cache
from helpdesk_connectors.fields import EncryptedTextField, get_fernet
from helpdesk_connectors.models import Installation

from ...models import Workspace
from ...services import auth_cache


def _cached_secrets_changed(model: type, pk: int) -> None:
    """End the app session cache entries that keep this row's ciphertext.

    ``update()`` sends no signal; without the bump a cached grant would keep the old
    key's ciphertext, and fail to decrypt once the old key is removed. Pending now, a
    fresh token when the rotation commits.
    """
    if issubclass(model, Workspace):
        auth_cache.workspace_changed(pk)
    elif issubclass(model, Installation):
        session_cache.installation_changed(pk)


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field (Stripe keys, webhook secrets, helpdesk shared "
        "secrets and API tokens) under the newest key, the first of "
        "BILLING_DESK_ENCRYPTION_KEYS. Run it after prepending a new key; once it succeeds "
        "the old keys can be removed. All rows are rewritten in one transaction: if any "
        "secret cannot be decrypted with the configured keys, nothing is changed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Decrypt every secret to prove the keys work, but write nothing.",
        )

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        try:
            get_fernet()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        rows: Counter[str] = Counter()
        secrets = 0
        try:
            with transaction.atomic():
                for model in apps.get_models():
                    fields = [
                        f.name
                        for f in model._meta.concrete_fields
                        if isinstance(f, EncryptedTextField)
                    ]
                    if not fields:
                        continue
                    manager = model._default_manager
                    for pk in manager.order_by("pk").values_list("pk", flat=True):
                        # Row lock: a secret saved meanwhile is not overwritten by its old value.
                        try:
                            obj = manager.select_for_update().only("pk", *fields).get(pk=pk)
                        except ObjectDoesNotExist:
                            continue
                        except ImproperlyConfigured as exc:
                            raise ImproperlyConfigured(f"{model._meta.label} #{pk}: {exc}") from exc
                        values = {name: getattr(obj, name) for name in fields if getattr(obj, name)}
                        if not values:
                            continue
                        if not dry_run:
                            manager.filter(pk=obj.pk).update(**values)
                            _cached_secrets_changed(model, obj.pk)
                        rows[model._meta.label] += 1
                        secrets += len(values)
        except ImproperlyConfigured as exc:
            raise CommandError(f"{exc} Nothing was changed.") from exc
        per_model = ", ".join(f"{label}: {n} row(s)" for label, n in sorted(rows.items()))
        verb = "Would re-encrypt" if dry_run else "Re-encrypted"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {secrets} secret(s) in {sum(rows.values())} row(s) under the newest key"
                + (f" ({per_model})." if per_model else ".")
            )
        )
