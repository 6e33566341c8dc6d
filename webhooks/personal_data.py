"""The personal data webhooks keep: event payloads about a contact (message and subscription
events carry the address), found by the event's ``contact_id`` (privacy/registry.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, select, update

from core import db
from core.db import iso
from core.settings import setting
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent

if TYPE_CHECKING:
    from privacy.registry import Person, Records

#: Payload keys that name a person; erasure removes them.
NAMING_KEYS = ("email", "name")


def _events(person: Person) -> list[WebhookEvent]:
    if not person.contact_ids:
        return []
    return list(
        db.session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.contact_id.in_(person.contact_ids))
            .order_by(WebhookEvent.id)
        )
    )


def report_events(person: Person) -> Records:
    """The webhook events about each of the person's contacts: type, time, what was sent."""
    found: Records = {}
    for event in _events(person):
        data = dict((event.payload or {}).get("data") or {})
        found.setdefault(event.contact_id, []).append(
            {"event": event.type, "created_at": iso(event.created_at), **_flat(data)}
        )
    return found


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, str | int | float | bool) or v is None}


def scrub(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without what names the person (``data.email``, ``data.name``)."""
    data = {k: v for k, v in dict(payload.get("data") or {}).items() if k not in NAMING_KEYS}
    data["erased"] = True
    return {**payload, "data": data}


def erase_events(person: Person) -> None:
    """Scrub every payload about the person's contacts (deliveries still due send the scrubbed
    payload: the receiver learns the event, not who). No commit."""
    for event in _events(person):
        event.payload = scrub(event.payload or {})
    db.session.flush()


def restrict_events(person: Person, flag: str) -> None:
    """A restricted, objecting or withdrawn contact's pending deliveries are not sent: they end
    as failed, with the reason. No commit."""
    ids = [event.id for event in _events(person)]
    if not ids:
        return
    db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.event_id.in_(ids),
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            last_error="not sent: the contact's data may no longer be processed",
        )
    )
    db.session.flush()


def apply_retention(now: datetime) -> int:
    """Delete events older than ``WEBHOOKS_EVENT_RETENTION_DAYS`` whose deliveries have all
    ended (succeeded or failed). Commits; safe to run twice."""
    before = now - timedelta(days=int(setting("WEBHOOKS_EVENT_RETENTION_DAYS")))
    unfinished = exists().where(
        WebhookDelivery.event_id == WebhookEvent.id,
        WebhookDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
    )
    result = db.session.execute(
        delete(WebhookEvent).where(WebhookEvent.created_at < before, ~unfinished)
    )
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
