"""The panel's context read path: the Redis accelerator, the snapshot, and a build when needed.

``customer_context_answer`` serves ``GET /customers/<id>/context/``:

1. the Redis accelerator (``context_cache``): an entry stored under the customer's and
   workspace's current versions, whose time horizon has not passed, is the snapshot as
   it was read — then one query asks whether a webhook event about the customer is
   stored but not applied (the ``stale`` flag);
2. else the snapshot (``snapshots.snapshot_read``): one indexed query for the row, the
   workspace's generation and that same event flag. Current (built from the latest
   write, under the workspace's generation, before its horizon) → served as stored;
3. else — never built, a write not rebuilt yet, a new generation, a passed horizon —
   built now from the mirror and stored (``snapshots.snapshot_build``): the panel
   always tells the truth; a customer the mirror does not hold yet is fetched first,
   outside any transaction (``refresh.customer_mirror_lookup``: 404 / 503 as before),
   then stored and built in one transaction (``refresh.customer_mirror_ensure``).

The per-request fields are computed on every request, never stored: ``stale`` and
``refreshing`` by ``refresh.customer_freshness`` (the rule ``customer_mirror_ensure``
applies: older than ``MIRROR_STALE_AFTER_SECONDS`` or superseded; a refresh queued
once per customer), ``provider_status`` from the provider's recorded health, ``now``
the billing clock. While the provider is recorded down the answer carries an outage
alert, so it is built from the mirror for that request (as before issue 15) and not stored.

Stored data is served as stored, as text: the context was converted to the API's JSON
shape and rendered when the snapshot was built, and the answer is the request's own
fields rendered and spliced in front of the stored body (``_answer``) — the stored text
is never decoded and re-encoded, so a customer's long lists cost a copy, not a parse.

A read that serves a stored snapshot also moves its ``opened_at`` when it is more than
an hour old (``snapshots.snapshot_opened``: at most one write an hour per customer), for
the time-driven re-drive; a build for a read stores it with the build.

Language (issue 16): the answer is in the request's language (the agent's, activated
from the session token): its snapshot row (``locales.snapshot_locale``; "" for
``settings.LANGUAGE_CODE``) and its own Redis entry. A current language row is read
in one query like the default one (it carries the default row's version); a stale or
missing one is built in that language, as above.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..clock import billing_now
from ..locales import snapshot_locale
from ..models import Workspace
from ..selectors.context import customer_context
from ..selectors.mirror_freshness import customer_events_newer
from .context_cache import customer_context_cached
from .refresh import (
    customer_freshness,
    customer_mirror_ensure,
    customer_mirror_lookup,
    provider_health_status,
)
from .snapshots import (
    StoredSnapshot,
    context_serialize,
    json_render,
    snapshot_build,
    snapshot_opened,
    snapshot_read,
)


def _answer(
    body: str,
    *,
    stale: bool,
    refreshing: bool,
    provider_status: str,
    now: datetime,
) -> bytes:
    """The stored body (a JSON object's text) with the request's own fields in front of its
    keys: ``{"stale":…,"refreshing":…,"provider_status":…,"now":…,`` + the body after its
    ``{``. The same keys and values as the serializer's answer; the body is not parsed."""
    head = json_render(
        {
            "stale": stale,
            "refreshing": refreshing,
            "provider_status": provider_status,
            "now": now.isoformat(),
        }
    )
    return head[:-1] + b"," + body[1:].encode()


def _outage_answer(*, workspace: Workspace, customer_id: str) -> bytes:
    """The provider is recorded down: the context with its outage alert, built for this request."""
    state = customer_mirror_ensure(workspace=workspace, customer_id=customer_id)
    return json_render(
        context_serialize(
            customer_context(
                workspace=workspace,
                customer=state.customer,
                stale=state.stale,
                refreshing=state.refreshing,
                provider_status=state.provider_status,
            )
        )
    )


def customer_context_answer(*, workspace: Workspace, customer_id: str) -> bytes:
    """The panel's whole context for ``customer_id`` (``docs/api.md``) as the API answers
    it: JSON, UTF-8 (the body of a 200).

    Raises ``NotFound`` (404) for a customer neither the mirror nor the workspace's
    provider knows, ``ProviderUnavailable`` (503) when it must be fetched and cannot be.
    """
    provider_status = provider_health_status(workspace_id=workspace.pk)
    if provider_status != "ok":
        return _outage_answer(workspace=workspace, customer_id=customer_id)
    now = billing_now(workspace)
    real_now = timezone.now()
    locale = snapshot_locale()  # the request's language: the agent's
    read: dict[str, Any] = {}

    def load() -> dict[str, Any]:
        stored = snapshot_read(workspace=workspace, customer_id=customer_id, locale=locale)
        if stored is not None and stored.current(now=now, real_now=real_now):
            read["superseded"] = stored.superseded
            snapshot_opened(
                workspace_id=workspace.pk,
                customer_id=customer_id,
                opened_at=stored.opened_at,
                real_now=real_now,
                locale=locale,
            )
        else:
            # The version is the one read above, before the mirror is: a write committing
            # during the build leaves the stored snapshot behind it, never ahead.
            versions = None
            if stored is not None and stored.body is not None:
                versions = (stored.wanted_version, stored.generation)
            # A customer the mirror does not hold yet is fetched here, before any
            # transaction: no connection waits idle in one for the provider's answer.
            looked_up = customer_mirror_lookup(workspace=workspace, customer_id=customer_id)
            # Never built (a customer seen for the first time: stored now): one
            # transaction for the store and the build — one commit, and the doorbell the
            # store queued finds the snapshot built in it and stays silent (no second
            # build of the same state by a worker while the agent waits).
            with transaction.atomic() if versions is None else nullcontext():
                state = customer_mirror_ensure(
                    workspace=workspace, customer_id=customer_id, looked_up=looked_up
                )
                stored = snapshot_build(
                    workspace=workspace,
                    customer_id=customer_id,
                    customer=state.customer,
                    versions=versions,
                    now=now,
                    real_now=real_now,
                    opened=True,
                    locale=locale,
                )
            read["flags"] = (state.stale, state.refreshing)
        return stored.cache_payload()

    payload, _ = customer_context_cached(
        workspace_id=workspace.pk,
        customer_id=customer_id,
        locale=locale,
        build=load,
        # An entry cached before the snapshot became text (no "body") is a miss, not a 500.
        fresh=lambda p: (
            "body" in p and StoredSnapshot.from_cache(p).time_valid(now=now, real_now=real_now)
        ),
    )
    snapshot = StoredSnapshot.from_cache(payload)
    if "flags" in read:
        stale, refreshing = read["flags"]
    else:
        stale, refreshing = customer_freshness(
            workspace=workspace,
            customer_id=customer_id,
            as_of=snapshot.as_of,
            deleted=snapshot.deleted,
            superseded=read["superseded"]
            if "superseded" in read
            else lambda: customer_events_newer(
                workspace_id=workspace.pk, customer_id=customer_id, as_of=snapshot.as_of
            ),
        )
    assert snapshot.body is not None  # built above for a mirrored customer
    return _answer(
        snapshot.body,
        stale=stale,
        refreshing=refreshing,
        provider_status=provider_status,
        now=now,
    )


__all__ = ["customer_context_answer"]
