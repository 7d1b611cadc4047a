"""One helpdesk account that installed the app. Connectors hold no tenant state: it lives here."""

from __future__ import annotations

from django.db import models
from django.db.models import F

from .fields import EncryptedTextField


class Installation(models.Model):
    class Connector(models.TextChoices):
        ZENDESK = "zendesk", "Zendesk"
        FRESHDESK = "freshdesk", "Freshdesk"
        DEMO = "demo", "Demo (local signer)"

    connector = models.CharField(max_length=32, choices=Connector.choices)
    # The helpdesk account's host, e.g. ``acme.zendesk.com`` or ``acme.freshdesk.com``.
    domain = models.CharField(max_length=255)
    # Zendesk: the app installation id; Freshdesk: the app's installation id (optional).
    installation_id = models.CharField(max_length=64, blank=True)
    # Zendesk: the marketplace app id, used to fetch the app's public key.
    app_id = models.CharField(max_length=64, blank=True)
    # Zendesk signed-URL verification key (PEM), fetched and cached or configured.
    public_key = models.TextField(blank=True)
    public_key_fetched_at = models.DateTimeField(null=True, blank=True)
    # Freshdesk: the secret the request template injects from a secure iparam.
    shared_secret = EncryptedTextField(blank=True)
    # Helpdesk API credentials for reading agents and posting notes.
    api_email = models.CharField(max_length=255, blank=True)
    api_token = EncryptedTextField(blank=True)
    oauth_token = EncryptedTextField(blank=True)
    is_active = models.BooleanField(default=True)
    # Bumped on every change that must invalidate app session tokens.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "domain"], name="uniq_installation_domain"
            ),
        ]
        ordering = ["connector", "domain"]

    def __str__(self) -> str:
        return f"{self.get_connector_display()} · {self.domain}"

    @property
    def base_url(self) -> str:
        return f"https://{self.domain}"

    def bump_version(self) -> None:
        """Invalidate every app session token issued for this installation."""
        Installation.objects.filter(pk=self.pk).update(version=F("version") + 1)
        self.refresh_from_db(fields=["version"])
