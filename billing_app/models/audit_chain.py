"""The tamper-evident audit chain (docs/audit.md): append-only entries, one chain per workspace.

Actions and approval requests change after they are written (an action's status and
outcome move), so their rows are not hashed in place: each audited change appends an
``AuditEntry`` holding the row's snapshot, chained to the workspace's previous entry.
``verify_audit`` walks the chain and compares each row with its latest snapshot.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .tenancy import Workspace


class AuditEntry(models.Model):
    """One audited change: never updated or deleted by the application."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="audit_entries")
    # 1, 2, 3… per workspace, without gaps: a deleted or inserted entry breaks the sequence.
    seq = models.BigIntegerField()
    event = models.CharField(max_length=48)
    subject_type = models.CharField(max_length=32)
    subject_id = models.CharField(max_length=64)
    # The canonical JSON that is hashed (billing_app.audit_chain.canonical_json), as hashed.
    content = models.TextField()
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["workspace", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "seq"], name="uniq_audit_entry_seq"),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "subject_type", "subject_id", "seq"],
                name="audit_entry_subject_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event} {self.subject_type}:{self.subject_id}"


class AuditChainHead(models.Model):
    """The end of a workspace's chain, and the lock that keeps it one chain.

    Appending upserts this row first (``INSERT … ON CONFLICT DO UPDATE``): on PostgreSQL
    the row stays locked until commit, so two appenders take turns and never fork.
    """

    workspace = models.OneToOneField(
        Workspace, primary_key=True, on_delete=models.CASCADE, related_name="audit_head"
    )
    seq = models.BigIntegerField(default=0)
    # The hash before the last append (what its first entry chains to), and after it.
    previous_hash = models.CharField(max_length=64, blank=True)
    last_hash = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit head of {self.workspace_id} at {self.seq}"


class AuditVerification(models.Model):
    """One run of ``verify_audit`` over one workspace's chain: when, and what it found."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="audit_verifications"
    )
    verified_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    entries = models.BigIntegerField(default=0)
    # The chain's end as verified: the next run must still find this hash at this seq.
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True)
    # The first row that does not match ("entry 17", "billing_action 3f2a…"), and why.
    first_bad = models.CharField(max_length=128, blank=True)
    reason = models.TextField(blank=True)
    run_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-verified_at"]

    def __str__(self) -> str:
        return f"audit verification {self.verified_at:%Y-%m-%d %H:%M} ({'ok' if self.ok else 'broken'})"
