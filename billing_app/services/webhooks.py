"""Stripe webhooks: verified, stored once, processed once (DESIGN.md 9, STYLE.md 8).

The path of one delivery:

1. ``webhook_workspace_get`` finds the workspace by the URL's slug (a read only;
   an unknown workspace gets 404 and nothing is written).
2. ``stripe_webhook_verify`` checks ``Stripe-Signature`` over the **raw body** with
   that workspace's signing secret (300 s tolerance) *before anything touches the
   database*, then parses the event.
3. ``stripe_event_receive`` stores it as a ``StripeEvent`` — unique per
   (workspace, event id), so a redelivery is recognised and never processed
   twice — with the customer it is about (``customer_id``), and enqueues processing
   when the transaction commits. Nothing more per request (issue 15): no Stripe call,
   no mirror read.
4. ``stripe_event_process`` (the Celery task's one call), in one transaction holding
   the event's row lock, writes the mirror, runs the registered hooks and marks the
   event processed. The state written is the event's own payload when it is newer
   than what the mirror holds (``services.webhook_payloads``: ordered by the mirror's
   ``read_at`` against the event's ``created``) — no Stripe call. Only when that order
   cannot be decided (the mirror holds a state read within the event's own second) or
   the payload is partial is the object re-read from Stripe first
   (``services.webhook_rereads``), and that write is ordered by when the re-read was
   *sent*. An event older than the mirror writes nothing; its hooks still run. A
   failure leaves nothing half-done and the event ``failed``;
   ``ProviderUnavailable`` is retried by the re-drive.

Hooks, for workflows built on events (payment failures, disputes, ...):
``webhook_hook_register(event_type="invoice.payment_failed", hook=fn)`` — or a
prefix pattern such as ``"charge.dispute.*"``, or ``"*"`` — from the workflow's
module, imported at start-up (``BillingAppConfig.ready`` or the module's own
tasks import). Each hook receives a ``WebhookEvent`` *after* the mirror holds the
event's state (or a newer one), inside the processing transaction: if a hook raises, the mirror
writes roll back with it and the event is retried, so hooks need not be
idempotent against partial runs — but must be against Stripe's redelivery of
an already processed event, which never reaches them.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import stripe
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..errors import ValidationFailed
from ..models import MirrorInvoice, MirrorInvoiceLine, StripeEvent, Workspace
from ..providers import get_provider
from ..providers.sandbox.ports import sandbox_ports_register
from ..providers.stripe.readers import event_object, event_previous_attributes
from ..queue import enqueue
from .mirror import mirror_read_clock, mirror_upsert
from .webhook_payloads import webhook_payload_apply, webhook_payload_decide, webhook_payload_kind
from .webhook_rereads import REFRESHERS, Refresh, webhook_refresher_for  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

# The task that processes one stored event (``tasks.webhooks``), named: services never
# import tasks (``billing_app.queue``).
PROCESS_TASK = "billing_app.tasks.webhooks.stripe_event_process_task"

Obj = dict[str, Any]
DONE = (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED)


@dataclass(frozen=True)
class WebhookEvent:
    """What a hook receives: the stored event, its payload object and the newest state known."""

    workspace: Workspace
    stored: StripeEvent | None  # None when the sandbox emits an event: nothing was delivered
    event_id: str
    type: str
    created: int
    data_object: Obj
    previous_attributes: Obj
    # The object's newest known state: the payload when it was newer than the mirror, the
    # mirror's stored state when that is newer, a re-read otherwise (None: none of these).
    current: Obj | None


WebhookHook = Callable[[WebhookEvent], None]
_HOOKS: dict[str, list[WebhookHook]] = {}


def webhook_hook_register(*, event_type: str, hook: WebhookHook) -> None:
    """Run ``hook`` for every processed event of ``event_type`` (exact, ``prefix.*`` or ``*``).

    Registering the same hook twice for a type is a no-op (modules may be imported twice).
    """
    hooks = _HOOKS.setdefault(event_type, [])
    if hook not in hooks:
        hooks.append(hook)


def webhook_hook_unregister(*, event_type: str, hook: WebhookHook) -> None:
    hooks = _HOOKS.get(event_type, [])
    if hook in hooks:
        hooks.remove(hook)


def webhook_hooks_for(event_type: str) -> list[WebhookHook]:
    found: list[WebhookHook] = []
    for pattern, hooks in _HOOKS.items():
        if pattern in {event_type, "*"} or (
            pattern.endswith(".*") and event_type.startswith(pattern[:-1])
        ):
            found.extend(h for h in hooks if h not in found)
    return found


# --- events the sandbox announces in-process ---------------------------------------------------


def webhook_event_apply_local(workspace: Workspace, event: Obj) -> None:
    """Run the hooks of a Stripe-shaped event a billing simulation announces in-process.

    The sandbox's failed (and paid) charges reach the same hooks as Stripe's
    deliveries — the payment-failure records, recoveries and escalations — inside the
    sandbox write's transaction. The event's object is the simulation's current state
    (already stored), so there is nothing to re-read and no ``StripeEvent`` to store.
    """
    obj = event_object(event)
    webhook = WebhookEvent(
        workspace=workspace,
        stored=None,
        event_id=str(event.get("id") or ""),
        type=str(event.get("type") or ""),
        created=int(event.get("created") or 0),
        data_object=obj,
        previous_attributes=event_previous_attributes(event),
        current=obj,
    )
    for hook in webhook_hooks_for(webhook.type):
        hook(webhook)


def _sandbox_store(workspace: Workspace, obj: Obj) -> None:
    mirror_upsert(workspace=workspace, obj=obj)


# The sandbox stores its state in the mirror and announces its events here (its ports:
# providers do not import services). Registered when this module is imported at start-up.
sandbox_ports_register(store=_sandbox_store, deliver=webhook_event_apply_local)


# --- 1 and 2: the workspace, then the signature ------------------------------------------------


def webhook_workspace_get(*, slug: str) -> Workspace | None:
    """The workspace accepting Stripe webhooks at this slug (connected to Stripe, with a secret)."""
    # Only what intake reads: the other encrypted fields (the API key) are not decrypted.
    # Two columns by the unique slug, no model loading machinery (``.only()`` deferral and
    # ``.first()``'s ORDER BY were 40 % of an intake request's CPU); the instance is built
    # from what the filter proved: this slug, active, connected to Stripe.
    found = list(
        Workspace.objects.filter(
            slug=slug, is_active=True, provider=Workspace.Provider.STRIPE
        ).values_list("pk", "stripe_webhook_secret")[:1]
    )
    if not found or not found[0][1]:
        return None
    pk, secret = found[0]
    workspace = Workspace(
        pk=pk,
        slug=slug,
        is_active=True,
        provider=Workspace.Provider.STRIPE,
        stripe_webhook_secret=secret,
    )
    workspace._state.adding = False
    workspace._state.db = StripeEvent.objects.db
    return workspace


def _signature_timestamp(header: str) -> int | None:
    """The ``t`` stripe-python verified: the first ``t=`` item, read with ``int()`` as it does.

    Reading it any other way (another ``t`` item, a stricter digit test) could check a
    different time than the one the signature was verified with.
    """
    for part in header.split(","):
        name, _, value = part.partition("=")
        if name == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def stripe_webhook_verify(*, secret: str, payload: bytes, signature: str | None) -> Obj:
    """The event, once ``Stripe-Signature`` proves it was signed with ``secret`` recently.

    Uses stripe-python's ``WebhookSignature.verify_header`` (HMAC-SHA256 over
    ``"<t>.<raw body>"``, constant-time compare, ``t`` not older than the tolerance),
    then refuses a ``t`` more than the tolerance in the future, which it lets pass. Runs
    before any database access, so an unsigned request costs nothing but CPU.
    """
    tolerance = int(getattr(settings, "STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300))
    if not signature:
        raise ValidationFailed("The Stripe-Signature header is missing.", code="signature_missing")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The body is not UTF-8.", code="invalid_payload") from exc
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        timestamp = _signature_timestamp(signature)
        if timestamp is not None and timestamp < time.time() - tolerance:
            raise ValidationFailed(
                f"The signature is older than {tolerance} seconds.", code="signature_expired"
            ) from exc
        raise ValidationFailed(
            "The Stripe-Signature does not match this endpoint's secret.",
            code="signature_invalid",
        ) from exc
    # stripe-python refuses only timestamps too far in the past. One dated in the future
    # (a signing clock far ahead, or a signature made to outlive the window) would stay
    # replayable until the tolerance catches up with it (issue 12): refused as well.
    timestamp = _signature_timestamp(signature)
    if timestamp is None:
        raise ValidationFailed(
            "The Stripe-Signature has no readable timestamp.", code="signature_invalid"
        )
    if timestamp > time.time() + tolerance:
        raise ValidationFailed(
            f"The signature is dated more than {tolerance} seconds in the future.",
            code="signature_in_future",
        )
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise ValidationFailed("The body is not JSON.", code="invalid_payload") from exc
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and event["id"].startswith("evt_")
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise ValidationFailed("The body is not a Stripe event.", code="invalid_payload")
    return event


# --- 3: store once ---------------------------------------------------------------------------


def _enqueue(event_pk: int) -> None:
    """Ring the processing doorbell; the broker being down is one log line, never an error.

    The stored ``StripeEvent`` is the truth (its own outbox row): an event whose
    doorbell is lost stays ``received`` and the minute re-drive
    (``stripe_events_requeue`` via ``outbox_redrive``) processes it. Raising here
    would run inside ``on_commit`` after the event is stored, and turn Stripe's
    delivery into a 500 it retries for nothing.
    """
    try:
        enqueue(PROCESS_TASK, event_pk)
    except Exception as exc:  # kombu OperationalError, redis ConnectionError, DNS ...
        logger.warning(
            "stripe event %s stored; processing not queued (%s), the re-drive will process it",
            event_pk,
            type(exc).__name__,
        )


# The doorbell of a burst (issue 15): one processing task per workspace is enough while one
# is queued and has not started reading; intake rings only when this flag was not set.
DRAIN_FLAG_SECONDS = 60


def _drain_flag(workspace_id: int) -> str:
    return f"webhooks:drain-queued:{workspace_id}"


def _ring(workspace_id: int, event_pk: int) -> None:
    """After the event's commit: queue a drain of its workspace unless one is already queued.

    A drain clears the flag *before* its first read of the waiting events
    (``stripe_events_drain``), so a flag found set means a drain that has not read yet
    and will see this committed event. One Redis ``SET NX`` instead of a Celery message per
    event. With the cache away (``add`` false and ``get`` empty) the doorbell rings as
    before; a queued drain that is lost leaves the flag for at most
    ``DRAIN_FLAG_SECONDS``, after which the minute re-drive takes what it left waiting.
    """
    key = _drain_flag(workspace_id)
    try:
        if cache.get(key) is not None:  # during a burst: one round trip
            return
        if not cache.add(key, event_pk, DRAIN_FLAG_SECONDS) and cache.get(key) is not None:
            return
    except Exception as exc:  # a cache backend that raises: ring, as without the flag
        logger.info("webhook drain flag unavailable (%s): doorbell rung", type(exc).__name__)
    _enqueue(event_pk)


def webhook_event_customer_id(obj: Obj) -> str:
    """The customer an event's object belongs to: its ``customer`` (an id, or an expanded
    customer's id), or its own id when the object is a customer — as the backfill of
    migration 0005 named it. Stored at intake for the panel's "superseded" probe."""
    customer = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer[:255] if isinstance(customer, str) else ""


def stripe_event_receive(*, workspace: Workspace, event: Obj) -> tuple[StripeEvent, bool]:
    """Store a verified event; ``(event, created)``. A redelivery is not stored again.

    Verify-and-insert only (issue 15): one autocommitted ``INSERT``, the unique
    (workspace, event id) constraint recognising a redelivery (then one ``SELECT``).
    Nothing is read from Stripe or the mirror here. Processing is enqueued when the
    insert commits: for a new event, and again for a redelivery of one that is not done
    yet (the task takes the event's row lock and skips an event already processed, so
    it never runs twice).
    """
    fields = {
        "workspace": workspace,
        "event_id": event["id"],
        "type": event["type"][:128],
        "api_version": str(event.get("api_version") or "")[:64],
        "livemode": bool(event.get("livemode")),
        "created": datetime.fromtimestamp(event["created"], tz=UTC),
        "payload": event,
        "customer_id": webhook_event_customer_id(event_object(event)),
    }
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint: the duplicate must not break the caller's
                stored = StripeEvent.objects.create(**fields)
        else:  # one autocommitted INSERT: no BEGIN / COMMIT round trips around it
            stored = StripeEvent.objects.create(**fields)
        transaction.on_commit(partial(_ring, workspace.pk, stored.pk))
    except IntegrityError:
        found = StripeEvent.objects.filter(workspace=workspace, event_id=event["id"]).first()
        if found is None:  # not the redelivery: something else broke the insert
            raise
        stored = found
        if stored.status not in DONE:
            transaction.on_commit(partial(_ring, workspace.pk, stored.pk))
        return stored, False
    return stored, True


# --- 4: process once -------------------------------------------------------------------------


def _mark(event_pk: int, status: str, *, error: str = "", attempt: bool = False) -> None:
    """Record an outcome outside the processing transaction (``attempt``: count the attempt
    too, when the one that failed was counted inside its rolled-back transaction)."""
    extra = {"attempts": F("attempts") + 1} if attempt else {}
    StripeEvent.objects.filter(pk=event_pk).exclude(status__in=DONE).update(
        status=status, error=error[:2000], processed_at=timezone.now(), **extra
    )


def stripe_event_process(*, event_pk: int) -> StripeEvent:
    """Apply one stored event: mirror + hooks + status, atomically — from the event's own
    payload when it settles the event (``services.webhook_payloads``), else from a re-read.

    Safe to call any number of times: an event already processed or ignored is
    returned untouched; the row lock taken in the final transaction makes two
    concurrent runs apply it once.
    """
    settled = _process_from_payload(event_pk)
    if settled is not None:
        return settled
    return _process_with_reread(event_pk)


def _process_from_payload(event_pk: int) -> StripeEvent | None:
    """The event settled by its own payload, in one transaction (one commit, no Stripe call);
    ``None`` when it needs a re-read (or has nothing to apply: the other path decides)."""
    try:
        with transaction.atomic():
            event = (
                StripeEvent.objects.select_for_update(of=("self",))
                .select_related("workspace")
                .get(pk=event_pk)
            )
            if event.status in DONE:
                return event
            if not _settle(event, event.workspace):
                return None
            event.save(update_fields=["status", "error", "processed_at", "attempts"])
            return event
    except Exception as exc:
        logger.warning("stripe event pk=%s failed: %s", event_pk, type(exc).__name__)
        _mark(
            event_pk, StripeEvent.Status.FAILED, error=f"{type(exc).__name__}: {exc}", attempt=True
        )
        raise


def _settle(event: StripeEvent, workspace: Workspace) -> bool:
    """Apply a locked event from its payload in the caller's transaction: mirror, hooks, and
    its status set on the instance (the caller writes it); ``False``, with nothing written,
    when the payload does not settle it (a re-read, or the path for events with no refresher).
    """
    if webhook_refresher_for(event.type) is None:
        return False
    payload = event.payload or {}
    obj = event_object(payload)
    if webhook_payload_kind(event.type, obj) is None:
        return False
    created = int(payload.get("created") or 0)
    decision = webhook_payload_decide(
        workspace=workspace, event_type=event.type, obj=obj, created=created
    )
    if not decision.decided:
        logger.info(
            "stripe event %s (%s): re-read (%s)", event.event_id, event.type, decision.reason
        )
        return False
    webhook_payload_apply(workspace=workspace, decision=decision, created=created)
    event.attempts += 1
    _run_hooks(workspace, event, payload, obj, decision.current, webhook_hooks_for(event.type))
    event.status = StripeEvent.Status.PROCESSED
    event.error = ""
    event.processed_at = timezone.now()
    return True


# --- 4b: a burst, in batches -----------------------------------------------------------------

# Events settled from their payloads in one transaction: one commit (and one snapshot mark
# per customer, one status UPDATE) for up to this many.
WEBHOOK_BATCH = 50


def stripe_events_process_batch(*, event_pks: Sequence[int]) -> int:
    """Process these events in arrival (pk) order, with exactly the effects of calling
    ``stripe_event_process`` on each in turn; how many this call processed.

    Consecutive events settled by their payloads share one transaction (up to
    ``WEBHOOK_BATCH``): the mirror writes and hooks of each, in order, then one ``UPDATE``
    marking them processed, one commit. An event that needs a re-read ends the batch: the
    batch commits, that event takes the one-by-one path (its Stripe call outside any
    transaction), and the next batch starts after it — so every event sees the mirror and
    hooks exactly as one-by-one processing would have left them. Events locked by another
    worker are skipped (it holds them; if it fails them, the re-drive retries them) and
    events already processed are left alone. If anything in a batch raises, the whole
    batch rolls back (nothing half-done, on-commit callbacks dropped) and its events are
    processed one by one, so the failing event is recorded ``failed`` and re-driven while
    the others commit. A failure is logged and recorded on its event, never raised.
    """
    pending = sorted(set(event_pks))
    processed = 0
    index = 0
    while index < len(pending):
        chunk = pending[index : index + WEBHOOK_BATCH]
        try:
            settled, handled = _settle_batch(chunk)
        except Exception as exc:
            logger.warning(
                "stripe events batch of %s failed (%s): processed one by one",
                len(chunk),
                type(exc).__name__,
            )
            processed += sum(_process_one(pk) for pk in chunk)
            index += len(chunk)
            continue
        processed += settled
        index += handled
        if handled < len(chunk):  # the event at ``handled`` needs the re-read path
            processed += _process_one(chunk[handled], reread=True)
            index += 1
    return processed


def _process_one(event_pk: int, *, reread: bool = False) -> int:
    """One event alone (``reread``: its payload did not settle it); 1 when processed here.
    A failure is already recorded on the event by the service: logged, not raised."""
    try:
        if reread:
            event = _process_with_reread(event_pk)
        else:
            event = stripe_event_process(event_pk=event_pk)
    except Exception as exc:
        logger.info("stripe event pk=%s: %s, re-driven later", event_pk, type(exc).__name__)
        return 0
    return 1 if event.status in DONE else 0


def _settle_batch(chunk: list[int]) -> tuple[int, int]:
    """One transaction: settle the leading events of ``chunk`` from their payloads;
    ``(settled, handled)`` — ``handled`` leading events need nothing more (settled, done
    already, or held by another worker); the one after them needs the re-read path."""
    with transaction.atomic():
        locked = {
            event.pk: event
            for event in StripeEvent.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(pk__in=chunk)
            .exclude(status__in=DONE)
        }
        workspaces = Workspace.objects.in_bulk({e.workspace_id for e in locked.values()})
        settled: list[StripeEvent] = []
        handled = len(chunk)
        for position, pk in enumerate(chunk):
            event = locked.get(pk)
            if event is None:
                continue
            event.workspace = workspaces[event.workspace_id]
            if not _settle(event, event.workspace):
                handled = position
                break
            settled.append(event)
        if settled:
            StripeEvent.objects.filter(pk__in=[event.pk for event in settled]).update(
                status=StripeEvent.Status.PROCESSED,
                error="",
                processed_at=timezone.now(),
                attempts=F("attempts") + 1,
            )
    return len(settled), handled


# One drain task reads at most this many events, then queues the next drain (a task that
# never ends would outlive the broker's visibility timeout during an endless inflow).
DRAIN_MAX = 5000


def stripe_events_drain(*, event_pk: int, limit: int = WEBHOOK_BATCH) -> int:
    """A worker's doorbell (``event_pk`` was stored): process it and every event of its
    workspace waiting (``received``) when the drain starts, in batches of ``limit``, in
    arrival order; how many were processed.

    The workspace's drain flag (``_ring``) is cleared before the first read, so an event
    stored after that read rings again; the events stored before it are all read here
    (pk cursor, moved to the last pk each page read: never past an event not read yet).
    The doorbell's event is processed even when it is ``failed`` (the re-drive rings for
    failed events too), in its place among the waiting ones (in the page whose pks reach
    it, else in the last one); a ``received`` one is read by the cursor in its turn.
    Events another worker holds are left to it.
    """
    found = StripeEvent.objects.filter(pk=event_pk).values_list("workspace_id", "status").first()
    if found is None:
        return 0
    workspace_id, status = found
    cache.delete(_drain_flag(workspace_id))  # before reading: later events ring again
    waiting_after = StripeEvent.objects.filter(
        workspace_id=workspace_id, status=StripeEvent.Status.RECEIVED
    ).order_by("pk")
    # A doorbell the waiting list does not hold (failed): placed in the page that reaches it.
    extra = event_pk if status not in DONE and status != StripeEvent.Status.RECEIVED else None
    cursor, read, processed = 0, 0, 0
    while read < DRAIN_MAX:
        pks = list(waiting_after.filter(pk__gt=cursor).values_list("pk", flat=True)[:limit])
        if not pks:
            break
        cursor = pks[-1]
        if extra in pks:
            extra = None
        elif extra is not None and (extra < cursor or len(pks) < limit):
            bisect.insort(pks, extra)
            extra = None
        read += len(pks)
        processed += stripe_events_process_batch(event_pks=pks)
    if extra is not None:  # nothing waiting reaches it: alone, after them
        processed += stripe_events_process_batch(event_pks=[extra])
    if read >= DRAIN_MAX:
        following = waiting_after.filter(pk__gt=cursor).values_list("pk", flat=True).first()
        if following is not None:
            _enqueue(following)
    return processed


def _process_with_reread(event_pk: int) -> StripeEvent:
    """Re-read the object from Stripe (outside any transaction), then apply it."""
    event = StripeEvent.objects.select_related("workspace").get(pk=event_pk)
    if event.status in DONE:
        return event
    refresher = webhook_refresher_for(event.type)
    hooks = webhook_hooks_for(event.type)
    if refresher is None and not hooks:
        _mark(event.pk, StripeEvent.Status.IGNORED)
        event.refresh_from_db()
        return event
    StripeEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    payload = event.payload or {}
    obj = event_object(payload)
    created = int(payload.get("created") or 0)
    try:
        # Taken before the first request is sent: a re-read answered late is as old as when
        # it started, so a newer re-read already stored wins over it (services/mirror.py).
        read_at = mirror_read_clock()
        refresh = refresher(get_provider(event.workspace), obj) if refresher else Refresh()
        with transaction.atomic():
            locked = StripeEvent.objects.select_for_update().get(pk=event.pk)
            if locked.status in DONE:
                return locked
            _apply(event.workspace, refresh, read_at=read_at, created=created)
            return _finish(event.workspace, locked, payload, obj, refresh.current, hooks)
    except Exception as exc:
        logger.warning(
            "stripe event %s (%s) for workspace %s failed: %s",
            event.event_id,
            event.type,
            event.workspace_id,
            type(exc).__name__,
        )
        _mark(event.pk, StripeEvent.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise


def _finish(
    workspace: Workspace,
    locked: StripeEvent,
    payload: Obj,
    obj: Obj,
    current: Obj | None,
    hooks: list[WebhookHook],
) -> StripeEvent:
    """Run the hooks (the mirror holds the event's state, or a newer one) and mark the event
    processed, in the caller's transaction."""
    _run_hooks(workspace, locked, payload, obj, current, hooks)
    locked.status = StripeEvent.Status.PROCESSED
    locked.error = ""
    locked.processed_at = timezone.now()
    locked.save(update_fields=["status", "error", "processed_at", "attempts"])
    return locked


def _run_hooks(
    workspace: Workspace,
    locked: StripeEvent,
    payload: Obj,
    obj: Obj,
    current: Obj | None,
    hooks: list[WebhookHook],
) -> None:
    webhook = WebhookEvent(
        workspace=workspace,
        stored=locked,
        event_id=locked.event_id,
        type=locked.type,
        created=int(payload.get("created") or 0),
        data_object=obj,
        previous_attributes=event_previous_attributes(payload),
        current=current,
    )
    for hook in hooks:
        hook(webhook)


def _apply(workspace: Workspace, refresh: Refresh, *, read_at: datetime, created: int) -> None:
    """Write what the event changes, each state ordered by when it was read: re-reads by
    their send time, payload states by the event's ``created`` (Stripe's own clock)."""
    for obj in refresh.upserts:
        mirror_upsert(workspace=workspace, obj=obj, read_at=read_at)
    for obj in refresh.payload_upserts:
        if created:
            mirror_upsert(workspace=workspace, obj=obj, source_updated=created)
        else:  # no event time: cannot be ordered (mirror_upsert never overwrites with it)
            mirror_upsert(workspace=workspace, obj=obj)
    for invoice_id in refresh.invoice_deletes:
        MirrorInvoiceLine.objects.filter(workspace=workspace, invoice_id=invoice_id).delete()
        MirrorInvoice.objects.filter(workspace=workspace, stripe_id=invoice_id).delete()


# An event still ``received`` this long after it arrived lost its doorbell (or its worker).
REQUEUE_RECEIVED_AFTER = timedelta(minutes=1)
REQUEUE_MAX_ATTEMPTS = 10
REQUEUE_BATCH = 500


def stripe_event_retry_delay(*, attempts: int) -> timedelta:
    """After a failed processing: 1 min, 2, 4 … ≤ 30 min."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 1800))


def stripe_events_requeue(
    *,
    now: datetime | None = None,
    older_than: timedelta = REQUEUE_RECEIVED_AFTER,
    max_attempts: int = REQUEUE_MAX_ATTEMPTS,
) -> int:
    """Enqueue again the events left behind: still ``received`` after ``older_than`` (their
    doorbell was lost, e.g. the broker was down at commit, or their worker died), or
    ``failed`` with attempts to spare once their backoff has passed. Run every minute by
    ``outbox_redrive``; processing stays exactly-once because of the row lock."""
    now = now or timezone.now()
    received = StripeEvent.objects.filter(
        status=StripeEvent.Status.RECEIVED,
        received_at__lte=now - older_than,
        attempts__lt=max_attempts,
    ).values_list("pk", "attempts", "processed_at")
    failed = StripeEvent.objects.filter(
        status=StripeEvent.Status.FAILED,
        attempts__lt=max_attempts,
        processed_at__lte=now - stripe_event_retry_delay(attempts=1),
    ).values_list("pk", "attempts", "processed_at")
    pending = [pk for pk, _, _ in received.order_by("received_at")[:REQUEUE_BATCH]]
    pending += [
        pk
        for pk, attempts, failed_at in failed.order_by("processed_at")[:REQUEUE_BATCH]
        if failed_at is None or failed_at <= now - stripe_event_retry_delay(attempts=attempts)
    ]
    for event_pk in pending:
        _enqueue(event_pk)
    return len(pending)
