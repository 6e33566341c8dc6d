"""Reads for the webhook pages and the API: endpoints and their delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from core import db
from core.errors import NotFoundError
from core.pagination import Page, window
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

LOG_PAGE_SIZE = 25


def endpoints(account_id: int) -> list[WebhookEndpoint]:
    """The account's endpoints, oldest first."""
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.account_id == account_id)
            .order_by(WebhookEndpoint.id)
        )
    )


@dataclass(frozen=True)
class LoggedDelivery:
    """One line of an endpoint's delivery log."""

    id: int
    event_id: str  # the webhook-id
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None

    @property
    def retryable(self) -> bool:
        return self.status in (DeliveryStatus.FAILED, DeliveryStatus.PENDING)


def logged(delivery: WebhookDelivery, event_id: str, event_type: str) -> LoggedDelivery:
    """A delivery as the log (and the API) shows it, with its event's id and type."""
    return LoggedDelivery(
        id=delivery.id,
        event_id=event_id,
        event_type=event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        last_attempt_at=delivery.last_attempt_at,
        next_attempt_at=delivery.next_attempt_at,
    )


def delivery_log(
    account_id: int, endpoint_id: int, page: int = 1, status: str | None = None
) -> Page[LoggedDelivery]:
    """An endpoint's deliveries, newest first, optionally of one status."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.account_id != account_id:
        raise NotFoundError("no such webhook endpoint")
    query = (
        select(WebhookDelivery, WebhookEvent.public_id, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    if status:
        query = query.where(WebhookDelivery.status == DeliveryStatus(status))
    total = int(db.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    page, pages, offset = window(total, page, LOG_PAGE_SIZE)
    rows = db.session.execute(
        query.order_by(WebhookDelivery.id.desc()).offset(offset).limit(LOG_PAGE_SIZE)
    ).all()
    items = [logged(delivery, public_id, event_type) for delivery, public_id, event_type in rows]
    return Page(items, page, pages, total)


def deliveries_query(account_id: int, endpoint_id: int, status: str | None = None) -> Select[Any]:
    """The endpoint's deliveries (for paging by the caller); NotFoundError for another
    account's endpoint."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.account_id != account_id:
        raise NotFoundError("no such webhook endpoint")
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        query = query.where(WebhookDelivery.status == DeliveryStatus(status))
    return query


def events_by_id(event_ids: list[int]) -> dict[int, WebhookEvent]:
    """The events of these ids (a page of deliveries names them)."""
    if not event_ids:
        return {}
    return {
        event.id: event
        for event in db.session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(event_ids)))
    }
