"""Managing an account's endpoints: create, change, enable, delete, rotate the secret, send a
test event, retry a delivery. Every write is scoped to the account (another account's id is
NotFoundError), recorded in the security log (an endpoint receives contacts' data) and
commits; the process's subscription cache is forgotten at once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from accounts.audit import record_security_event
from accounts.models import SecurityEventKind
from core import db, queue
from core.db import utcnow
from core.errors import NotFoundError, ValidationError
from core.settings import setting
from webhooks import events, signing, targets
from webhooks.models import (
    SUBSCRIBABLE,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSecret,
)

MAX_ENDPOINTS = 20


def get_endpoint(account_id: int, endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.account_id != account_id:
        raise NotFoundError("no such webhook endpoint")
    return endpoint


def _event_types(chosen: Iterable[str]) -> list[str]:
    known = {t.value for t in SUBSCRIBABLE}
    picked = sorted(set(chosen))
    unknown = [t for t in picked if t not in known]
    if unknown:
        raise ValidationError(f"Unknown event type: {', '.join(unknown)}.", field="event_types")
    if not picked:
        raise ValidationError("Choose at least one event type.", field="event_types")
    return picked


def _url(url: str) -> str:
    if len(url.strip()) > 2000:
        raise ValidationError("The URL is too long (2000 characters at most).", field="url")
    try:
        return targets.check_url(url)
    except targets.TargetRefused as exc:
        raise ValidationError(str(exc), field="url") from exc


def _audit(account_id: int, user_id: int | None, endpoint_id: int, change: str) -> None:
    record_security_event(
        account_id,
        user_id,
        SecurityEventKind.SETTINGS_CHANGED,
        {"webhook_endpoint": endpoint_id, "change": change},
    )


@dataclass(frozen=True)
class Created:
    endpoint: WebhookEndpoint
    secret: str  # shown once after creation (also on the endpoint's page to its managers)


def create_endpoint(
    account_id: int,
    user_id: int | None,
    url: str,
    event_types: Iterable[str],
    description: str = "",
) -> Created:
    """Create an enabled endpoint with a new signing secret. Checks the URL (resolves it: no
    private address unless the operator allows it). Commits."""
    checked = _url(url)
    types = _event_types(event_types)
    count = db.session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.account_id == account_id)
    )
    if (count or 0) >= MAX_ENDPOINTS:
        raise ValidationError(f"An account can have {MAX_ENDPOINTS} endpoints at most.")
    endpoint = WebhookEndpoint(
        account_id=account_id,
        url=checked,
        description=description.strip()[:200],
        event_types=types,
        enabled=True,
    )
    db.session.add(endpoint)
    db.session.flush()
    secret = signing.new_secret()
    db.session.add(WebhookSecret(endpoint_id=endpoint.id, secret=secret))
    _audit(account_id, user_id, endpoint.id, "created")
    db.session.commit()
    events.forget(account_id)
    return Created(endpoint, secret)


def update_endpoint(
    account_id: int,
    user_id: int | None,
    endpoint_id: int,
    *,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given. Enabling clears the failure count and the reason. Commits."""
    endpoint = get_endpoint(account_id, endpoint_id)
    if url is not None and url.strip() != endpoint.url:
        endpoint.url = _url(url)
    if event_types is not None:
        endpoint.event_types = _event_types(event_types)
    if description is not None:
        endpoint.description = description.strip()[:200]
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.disabled_reason = "" if enabled else "Disabled by a member."
        if enabled:
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
    _audit(account_id, user_id, endpoint.id, "changed")
    db.session.commit()
    events.forget(account_id)
    return endpoint


def delete_endpoint(account_id: int, user_id: int | None, endpoint_id: int) -> None:
    """Delete the endpoint, its secrets and deliveries. Commits."""
    endpoint = get_endpoint(account_id, endpoint_id)
    _audit(account_id, user_id, endpoint.id, "deleted")
    db.session.delete(endpoint)
    db.session.commit()
    events.forget(account_id)


def current_secret(account_id: int, endpoint_id: int) -> str:
    """The newest signing secret of the endpoint (what a receiver should configure)."""
    get_endpoint(account_id, endpoint_id)
    secret = db.session.scalar(
        select(WebhookSecret.secret)
        .where(WebhookSecret.endpoint_id == endpoint_id)
        .order_by(WebhookSecret.id.desc())
        .limit(1)
    )
    return secret or ""


def rotate_secret(account_id: int, user_id: int | None, endpoint_id: int) -> str:
    """Add a new signing secret; the ones before keep signing next to it for
    ``WEBHOOKS_SECRET_GRACE_HOURS`` (an earlier expiry is kept), then stop. Returns the new
    secret. Commits."""
    get_endpoint(account_id, endpoint_id)
    now = utcnow()
    expires = now + timedelta(hours=int(setting("WEBHOOKS_SECRET_GRACE_HOURS")))
    db.session.execute(
        update(WebhookSecret)
        .where(WebhookSecret.endpoint_id == endpoint_id, WebhookSecret.expires_at.is_(None))
        .values(expires_at=expires)
    )
    # Secrets that expired already are of no use; drop them.
    db.session.execute(
        delete(WebhookSecret).where(
            WebhookSecret.endpoint_id == endpoint_id, WebhookSecret.expires_at <= now
        )
    )
    secret = signing.new_secret()
    db.session.add(WebhookSecret(endpoint_id=endpoint_id, secret=secret, created_at=now))
    _audit(account_id, user_id, endpoint_id, "secret-rotated")
    db.session.commit()
    return secret


def send_test_event(account_id: int, endpoint_id: int) -> str:
    """Queue a ``webhook.test`` event to the endpoint; returns its ``webhook-id``. Commits."""
    get_endpoint(account_id, endpoint_id)
    public_id = events.emit_test(account_id, endpoint_id) or ""
    db.session.commit()
    return public_id


def retry_delivery(account_id: int, delivery_id: int) -> WebhookDelivery:
    """Make a failed (or waiting) delivery due now, with a fresh retry schedule. Commits.
    A delivery being attempted right now is left alone (ValidationError)."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFoundError("no such delivery")
    get_endpoint(account_id, delivery.endpoint_id)
    if delivery.status == DeliveryStatus.SENDING:
        raise ValidationError("This delivery is being attempted right now.")
    if delivery.status == DeliveryStatus.SUCCEEDED:
        raise ValidationError("This delivery succeeded already.")
    from webhooks import tasks

    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.finished_at = None
    db.session.flush()
    queue.enqueue_after_commit(tasks.deliver, delivery.id)
    db.session.commit()
    return delivery
