"""Where the sandbox's state and events go: two ports the services layer plugs in.

The sandbox *is* a billing system: what it simulates is stored as Stripe-shaped
objects, and what Stripe would announce by webhook it announces as Stripe-shaped
events. Providers sit below services and import neither services nor selectors,
so the sandbox does not know who stores its objects or handles its events: the
services layer registers both at start-up (``services.webhooks`` registers the
mirror's writer and the webhook intake), and the sandbox calls them here.

* ``store`` — write one object as the simulation's current state (the mirror, where
  the panel reads it like a Stripe workspace's);
* ``deliver`` — hand one event (``{"id", "object": "event", "type", "created",
  "data": {"object", "previous_attributes"}}``) to the same intake and hooks as a
  Stripe delivery, so a sandbox failed charge is recorded exactly as a Stripe one.

Both run inside the sandbox write's transaction: the state, the events' effects and
the idempotency record commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from . import objects

if TYPE_CHECKING:
    from ...models import Workspace

Obj = dict[str, Any]
StoreObject = Callable[["Workspace", Obj], None]
DeliverEvent = Callable[["Workspace", Obj], None]

_ports: dict[str, StoreObject] = {}


def sandbox_ports_register(*, store: StoreObject, deliver: DeliverEvent) -> None:
    """Plug in the object writer and the event intake (idempotent: the last one wins)."""
    _ports["store"] = store
    _ports["deliver"] = deliver


def _port(name: str) -> StoreObject:
    port = _ports.get(name)
    if port is None:
        raise ImproperlyConfigured(
            f"The sandbox's {name!r} port is not registered: services.webhooks registers it "
            "when the app starts (BillingAppConfig.ready)."
        )
    return port


def store_object(workspace: Workspace, obj: Obj) -> None:
    _port("store")(workspace, obj)


def event(*, workspace: Workspace, event_type: str, obj: Obj, at: datetime, seq: str) -> Obj:
    """A Stripe-shaped event about ``obj`` (its state now), with a deterministic id."""
    return {
        "id": objects.digest_id("evt", workspace.slug, event_type, obj["id"], seq),
        "object": "event",
        "api_version": None,
        "created": objects.unix(at),
        "data": {"object": obj, "previous_attributes": {}},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def deliver_event(
    *, workspace: Workspace, event_type: str, obj: Obj, at: datetime, seq: str
) -> None:
    """Announce ``event_type`` about ``obj`` as Stripe would, to the registered intake."""
    _port("deliver")(
        workspace, event(workspace=workspace, event_type=event_type, obj=obj, at=at, seq=seq)
    )


__all__ = ["deliver_event", "event", "sandbox_ports_register", "store_object"]
