"""Emitting events: the outbox that other packages write to, in their own transaction.

:func:`emit` is the one entry point. It writes the event and one delivery row per enabled
endpoint of the account subscribed to the event's type, in the caller's transaction (no
commit), and enqueues each delivery after that transaction commits: a rolled-back change sends
nothing, a committed one is delivered even if the broker was down then (the reconciler finds
pending deliveries in the database).

Emitting is cheap when nobody listens: which types an account's endpoints subscribe to is kept
per process for ``WEBHOOKS_SUBSCRIPTION_CACHE_SECONDS`` (changes through this process apply at
once), so the send path asks :func:`subscribed` once per claim and writes nothing when the
answer is no.

Payloads follow Standard Webhooks: ``{"type", "timestamp", "data"}``; ``data`` holds ids, and an
address only where the event is about a message to, or a subscription of, that address.
Erasure scrubs those (``webhooks.personal_data``). ``contact.erased`` carries the contact's id
alone.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select

from core import db, queue
from core.db import utcnow
from core.settings import setting
from webhooks.models import (
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

_CACHE_KEY = "webhook_subscriptions"


def _cache() -> dict[int, tuple[float, frozenset[str]]]:
    cache: dict[int, tuple[float, frozenset[str]]] = current_app.extensions.setdefault(
        _CACHE_KEY, {}
    )
    return cache


def forget(account_id: int) -> None:
    """Drop this process's memory of the account's subscriptions (after an endpoint changes)."""
    _cache().pop(account_id, None)


def subscribed_types(account_id: int) -> frozenset[str]:
    """The event types some enabled endpoint of the account subscribes to (cached)."""
    cache = _cache()
    now = time.monotonic()
    found = cache.get(account_id)
    if found is not None and found[0] > now:
        return found[1]
    rows = db.session.scalars(
        select(WebhookEndpoint.event_types).where(
            WebhookEndpoint.account_id == account_id, WebhookEndpoint.enabled.is_(True)
        )
    )
    types = frozenset(t for row in rows for t in (row or []))
    cache[account_id] = (now + float(setting("WEBHOOKS_SUBSCRIPTION_CACHE_SECONDS")), types)
    return types


def subscribed(account_id: int, event_type: EventType) -> bool:
    """Whether emitting ``event_type`` for the account would deliver anywhere (cached)."""
    return event_type.value in subscribed_types(account_id)


def new_public_id() -> str:
    """A ``webhook-id``: ``msg_`` and 128 random bits (no full stop, as the spec asks)."""
    return "msg_" + secrets.token_urlsafe(16).replace(".", "")


def body_of(event_type: str, data: dict[str, Any], created: str) -> dict[str, Any]:
    return {"type": event_type, "timestamp": created, "data": data}


def _endpoint_ids(account_id: int, event_type: EventType) -> list[int]:
    return [
        endpoint.id
        for endpoint in db.session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.account_id == account_id, WebhookEndpoint.enabled.is_(True)
            )
        )
        if event_type.value in (endpoint.event_types or [])
    ]


def _write(
    account_id: int,
    event_type: EventType,
    items: Sequence[tuple[dict[str, Any], int | None]],
    endpoint_ids: Sequence[int],
) -> list[WebhookEvent]:
    """Events for ``items`` (data, contact id) and their deliveries: two flushes in all."""
    from webhooks import tasks

    if not endpoint_ids or not items:
        return []
    now = utcnow()
    stamp = now.isoformat(timespec="milliseconds") + "Z"
    written = [
        WebhookEvent(
            account_id=account_id,
            public_id=new_public_id(),
            type=event_type.value,
            payload=body_of(event_type.value, data, stamp),
            contact_id=contact_id,
            created_at=now,
        )
        for data, contact_id in items
    ]
    db.session.add_all(written)
    db.session.flush()
    deliveries = [
        WebhookDelivery(
            event_id=event.id,
            endpoint_id=endpoint_id,
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        for event in written
        for endpoint_id in endpoint_ids
    ]
    db.session.add_all(deliveries)
    db.session.flush()
    for delivery in deliveries:
        queue.enqueue_after_commit(tasks.deliver, delivery.id)
    return written


def emit(
    account_id: int,
    event_type: EventType,
    payload: dict[str, Any],
    *,
    contact_id: int | None = None,
) -> str | None:
    """Record ``event_type`` with ``payload`` (its ``data``) for every enabled endpoint of the
    account subscribed to it, in the caller's transaction (flushes, never commits); each
    delivery is enqueued once that transaction commits. ``contact_id`` names the contact the
    payload is about (erasure scrubs the payloads of that contact).

    Returns the event's ``webhook-id``, or None when no endpoint listens (nothing written).
    Stable signature: other packages call it.
    """
    if not subscribed(account_id, event_type):
        return None
    written = _write(
        account_id, event_type, [(payload, contact_id)], _endpoint_ids(account_id, event_type)
    )
    return written[0].public_id if written else None


def emit_many(
    account_id: int,
    event_type: EventType,
    items: Sequence[tuple[dict[str, Any], int | None]],
) -> int:
    """:func:`emit` for many events of one type (``items``: payload and contact id each), with
    one read of the endpoints and two flushes, for the send path's per-claim events. Returns
    how many events were written. No commit."""
    if not items or not subscribed(account_id, event_type):
        return 0
    return len(_write(account_id, event_type, items, _endpoint_ids(account_id, event_type)))


def emit_test(account_id: int, endpoint_id: int) -> str | None:
    """A ``webhook.test`` event to one endpoint of the account (whatever it subscribes to, and
    even when disabled: the member asked). No commit."""
    data = {"endpoint_id": endpoint_id, "message": "A test event from Envoy."}
    written = _write(account_id, EventType.TEST, [(data, None)], [endpoint_id])
    return written[0].public_id if written else None
