"""One helpdesk account that installed the app. Connectors hold no tenant state: it lives here."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F

from . import session_cache
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

    def clean(self) -> None:
        """What each connector needs to verify its app frame and call its helpdesk's API."""
        super().clean()
        errors: dict[str, str] = {}
        if self.domain and not _HOSTNAME.match(self.domain):
            errors["domain"] = "Give the helpdesk account's host name only, e.g. acme.zendesk.com."
        if self.connector == self.Connector.ZENDESK:
            if not self.app_id and not self.public_key:
                errors["app_id"] = (
                    "Zendesk needs the app id (to fetch the app's public key) or the public key."
                )
            elif self.app_id and not self.app_id.isdigit():
                errors["app_id"] = "A Zendesk app id is a number."
            if self.api_token and not self.api_email:
                errors["api_email"] = (
                    "Zendesk API tokens are used with the agent email they belong to."
                )
        if self.connector == self.Connector.FRESHDESK and not self.shared_secret:
            errors["shared_secret"] = (
                "Freshdesk needs the shared secret that the app's request template sends."
            )
        if self.public_key and not _is_pem_public_key(self.public_key):
            errors["public_key"] = "Not a PEM public key (-----BEGIN PUBLIC KEY----- …)."
        if errors:
            raise ValidationError(errors)

    @property
    def base_url(self) -> str:
        return f"https://{self.domain}"

    def bump_version(self) -> None:
        """Invalidate every app session token issued for this installation."""
        Installation.objects.filter(pk=self.pk).update(version=F("version") + 1)
        session_cache.installation_changed(self.pk)  # update() sends no signal
        self.refresh_from_db(fields=["version"])


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)


def _is_pem_public_key(text: str) -> bool:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        load_pem_public_key(text.strip().encode())
    except (ValueError, TypeError):
        return False
    return True


class DemoTicket(models.Model):
    """A ticket of the demo connector's local helpdesk (demo mode and tests only)."""

    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="demo_tickets"
    )
    ticket_id = models.CharField(max_length=32)
    subject = models.CharField(max_length=255)
    status = models.CharField(max_length=16, default="open")
    tags = models.JSONField(default=list, blank=True)
    requester_email = models.EmailField(blank=True)
    group = models.CharField(max_length=120, blank=True)
    satisfaction_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(db_index=True)
    solved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["installation", "ticket_id"], name="uniq_demo_ticket"),
        ]
        ordering = ["updated_at", "id"]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.subject}"


class DemoTicketComment(models.Model):
    """A note or reply the demo connector 'posted' to a demo ticket (shown by the demo host page)."""

    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="demo_comments"
    )
    ticket_id = models.CharField(max_length=32, db_index=True)
    body = models.TextField()
    public = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        kind = "reply" if self.public else "note"
        return f"{kind} on #{self.ticket_id}"


class ConsumedEntryToken(models.Model):
    """A signed entry token (Zendesk signed URL) already accepted once, kept until it expires.

    Signed-URL tokens are bearer tokens: one copied from a browser, a log or a proxy could
    open the panel again until its ``exp``. Each accepted token's digest is inserted here
    and the unique constraint decides: a second insert of the same digest — a replay, or
    two concurrent requests with one token — fails, whatever the cache is doing. Rows are
    pruned once ``expires_at`` (the token's ``exp`` plus the verification leeway) passes,
    because the token is refused as expired from then on.
    """

    connector = models.CharField(max_length=16)
    # sha256 hex of the token's identity: ``iss`` + ``jti`` when it has one, else its claims.
    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)
    consumed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.connector} token {self.digest[:12]}… until {self.expires_at:%Y-%m-%d %H:%M}"


class DeviceCredential(models.Model):
    """A Freshdesk agent's proof of one browser, issued after an emailed code (issue 17).

    Freshworks does not attest which agent calls through the request proxy, so every
    ``POST /freshdesk/session/`` must carry, besides the installation's shared secret, a
    credential issued to *that* agent on *that* installation. Only the SHA-256 of the
    256-bit secret is stored; the browser keeps the secret (the app frame's storage).
    ``expires_at`` is stamped at issue from the workspace's ``device_credential_days``; the
    credential ends at the earlier of that stamp and ``created_at`` plus the current days
    (``devices.expires_at``), so shortening the setting takes effect at once and lengthening
    it never revives an expired credential. ``email_digest`` is a keyed HMAC of the agent's
    Freshdesk email (lower-cased) at enrollment: once Freshdesk holds another address, the
    credential is refused (the code went to the old mailbox).
    """

    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="device_credentials"
    )
    agent_id = models.CharField(max_length=32)
    # The agent's email the code went to, masked (``m•••@acme.example``), for the admin.
    email_masked = models.CharField(max_length=255, blank=True)
    digest = models.CharField(max_length=64, unique=True)
    # What the app frame said the browser is (its User-Agent, shortened): for the admin only.
    device_label = models.CharField(max_length=200, blank=True)
    email_digest = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["installation", "agent_id"], name="device_cred_agent")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"agent {self.agent_id} on {self.installation.domain} · device #{self.pk}"


class DeviceEnrollment(models.Model):
    """One enrollment attempt: the emailed code, hashed, bound to agent, installation and attempt.

    ``attempt_digest`` is the SHA-256 of a random attempt id that only the enrolling frame
    holds; ``code_digest`` is an HMAC (keyed with ``SECRET_KEY``) over that attempt id and
    the code, so a six-digit code cannot be recovered from a database copy by trying all
    of them. ``attempts`` counts every verification try (reserved before the comparison,
    so concurrent guesses cannot exceed the limit); ``used_at`` is set by one conditional
    UPDATE, so one code issues at most one credential. ``send_failed_at``: the email could
    not be handed over; the row neither counts towards the hourly limit nor verifies (a code
    delivered after all answers that it was not sent). ``released_at``: an admin lifted the
    agent's lock and hourly limit; the row no longer counts and its code no longer verifies.
    """

    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="device_enrollments"
    )
    agent_id = models.CharField(max_length=32)
    attempt_digest = models.CharField(max_length=64, unique=True)
    code_digest = models.CharField(max_length=64)
    email_masked = models.CharField(max_length=255, blank=True)
    email_digest = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    send_failed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    credential = models.OneToOneField(
        DeviceCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["installation", "agent_id", "created_at"], name="device_enr_agent")
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"enrollment of agent {self.agent_id} on {self.installation.domain}"
