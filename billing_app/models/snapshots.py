"""Per-customer context snapshots, computed when the mirror changes (issue 15).

A panel open reads one ``CustomerSnapshot`` row instead of building the context from
the customer's whole history. The row is also its own outbox entry:

* writers (``mirror_upsert``, refreshes, actions, approvals) raise ``wanted_version``
  in their own transaction — the snapshot is *stale* from the moment the change
  commits, and knows it;
* a builder reads ``wanted_version``, builds the context from the mirror, and stores
  it with ``built_version`` set to what it read — only if that is newer than what is
  stored, so a slow build never overwrites a newer one;
* ``built_version < wanted_version`` is the pending condition the re-drive scans
  (``snapshot_pending_idx``), like ``StripeEvent`` rows that are their own outbox.

The context is stored as JSON *text* (``body``), exactly as the API answers it minus
the per-request fields: the read path splices those in front of it and answers the
bytes, never decoding and re-encoding the customer's lists on a panel open.

Time moves the context too (a trial ends, a failure leaves the 90-day window, an
approval expires): ``valid_until`` (the billing clock) and ``valid_until_real`` (the
wall clock) are the first instants at which any figure of ``data`` would change
without a write. A snapshot read after either is rebuilt. ``opened_at`` says when a
panel last read the snapshot (moved at most once an hour per customer: a read does not
write on every request); the time-driven re-drive rebuilds the snapshots opened in the
last days whose horizon has passed (``snapshot_horizon_idx`` / ``snapshot_horizon_real_idx``).

Languages (issue 16): the context's texts are in the agent's language, so a customer has
one row per language a panel read it in. ``locale`` "" is the default row
(``settings.LANGUAGE_CODE``): the only row writers touch — ``wanted_version`` is raised
there and nowhere else, so the write path costs what it did. A language row (``locale``
"de") is current when its ``built_version`` reaches the *default row's*
``wanted_version`` (the read joins it in the same query) and its generation and horizon
hold; its own ``wanted_version`` is set to what it was built from, so it is never pending
by ``snapshot_pending_idx`` — the rebuild of the default row rebuilds the language rows
a panel opened recently (``services.snapshots``).
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models import F, Q

from .tenancy import Workspace


class CustomerSnapshot(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer_id = models.CharField(max_length=255)
    # The language of the texts ("" = ``settings.LANGUAGE_CODE``: the row writers mark).
    locale = models.CharField(max_length=16, default="", blank=True)
    # Raised by every write that changes what the context is computed from.
    wanted_version = models.BigIntegerField(default=1)
    # The wanted_version the stored data was built from (0: never built).
    built_version = models.BigIntegerField(default=0)
    # The workspace's context_generation the data was built with (settings, catalog, names).
    workspace_generation = models.PositiveIntegerField(default=0)
    # The context as the API answers it (compact JSON text), without the per-request fields.
    body = models.TextField(null=True, blank=True)
    # When the customer's mirrored data was read from the provider (the context's as_of).
    as_of = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    built_at = models.DateTimeField(null=True, blank=True)
    # The data holds until then (billing clock / wall clock); NULL: no time boundary ahead.
    valid_until = models.DateTimeField(null=True, blank=True)
    valid_until_real = models.DateTimeField(null=True, blank=True)
    build_ms = models.PositiveIntegerField(default=0)
    # When a panel last read it (moved at most once an hour: ``services.snapshots``).
    opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "customer_id", "locale"],
                name="uniq_customer_snapshot_locale",
            )
        ]
        indexes = [
            models.Index(
                fields=["workspace", "customer_id"],
                condition=Q(built_version__lt=F("wanted_version")),
                name="snapshot_pending_idx",
            ),
            # The time-driven re-drive: horizons passed, per workspace (its own billing clock)
            # and on the wall clock.
            models.Index(
                fields=["workspace", "valid_until"],
                condition=Q(valid_until__isnull=False),
                name="snapshot_horizon_idx",
            ),
            models.Index(
                fields=["valid_until_real"],
                condition=Q(valid_until_real__isnull=False),
                name="snapshot_horizon_real_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} v{self.built_version}/{self.wanted_version}"

    @property
    def current(self) -> bool:
        return self.built_version >= self.wanted_version and self.body is not None

    @property
    def data(self) -> dict[str, Any] | None:
        """The stored context decoded (tests, the shell); the read path never decodes it."""
        return None if self.body is None else json.loads(self.body)
