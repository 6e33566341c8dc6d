"""Webhook endpoints: create, read, change, delete, rotate the signing secret, send a test
event, read an endpoint's deliveries and retry one (webhooks/ holds every rule: the URL check
against private addresses, the event types, the account's scope)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.paging import DEFAULT_LIMIT, MAX_LIMIT, Sort, keyset_page
from api.schemas import Strict, Timestamp
from api.spec import check_if_match, operation
from api.v1 import v1
from core.auth import api_caller
from core.permissions import Permission
from webhooks import endpoints, queries
from webhooks.models import SUBSCRIBABLE, WebhookDelivery, WebhookEndpoint

TAGS = ("webhooks",)

#: An event type (the service refuses any other with 422, naming the field).
EventName = Annotated[
    str, Field(max_length=40, json_schema_extra={"enum": [t.value for t in SUBSCRIBABLE]})
]
StatusName = Literal["", "pending", "sending", "succeeded", "failed"]


class EndpointCreate(Strict):
    url: str = Field(
        min_length=1, max_length=2000, description="http(s) URL; public addresses only"
    )
    event_types: list[EventName] = Field(min_length=1, max_length=len(SUBSCRIBABLE))
    description: str = Field("", max_length=200)


class EndpointUpdate(Strict):
    url: str | None = Field(None, min_length=1, max_length=2000)
    event_types: list[EventName] | None = Field(None, min_length=1, max_length=len(SUBSCRIBABLE))
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str = Field(description="why it is disabled; empty when enabled")
    consecutive_failures: int
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            event_types=list(endpoint.event_types or []),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            consecutive_failures=endpoint.consecutive_failures,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class EndpointCreated(EndpointOut):
    secret: str = Field(description="the signing secret (whsec_...): shown in this answer")


class EndpointPage(BaseModel):
    items: list[EndpointOut]


class SecretOut(BaseModel):
    secret: str = Field(
        description="the new signing secret; the previous ones keep signing for the grace period"
    )


class TestSent(BaseModel):
    event_id: str = Field(description="the webhook-id of the test event")


class DeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="the webhook-id header (the same on every retry)")
    event_type: str
    status: Literal["pending", "sending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str
    created_at: Timestamp
    last_attempt_at: Timestamp | None
    next_attempt_at: Timestamp | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: end")


class DeliveryQuery(BaseModel):
    status: StatusName = ""
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=500)


class RetryOut(BaseModel):
    id: int
    status: Literal["pending"]


@v1.get("/webhooks/endpoints")
@operation(Permission.MANAGE_SENDING, EndpointPage, tags=TAGS)
def list_webhook_endpoints() -> EndpointPage:
    """The account's webhook endpoints, oldest first."""
    found = queries.endpoints(api_caller().account_id)
    return EndpointPage(items=[EndpointOut.of(e) for e in found])


@v1.post("/webhooks/endpoints")
@operation(Permission.MANAGE_SENDING, EndpointCreated, status=201, creates=True, tags=TAGS)
def create_webhook_endpoint(json: EndpointCreate) -> tuple[EndpointCreated, int]:
    """Add an endpoint subscribed to ``event_types``, with a new signing secret.

    Refused (422) for a URL that is malformed, does not resolve, or points to a loopback,
    private, link-local, multicast or reserved address."""
    caller = api_caller()
    created = endpoints.create_endpoint(
        caller.account_id, caller.created_by, json.url, json.event_types, json.description
    )
    out = EndpointOut.of(created.endpoint).model_dump()
    return EndpointCreated(**out, secret=created.secret), 201


@v1.get("/webhooks/endpoints/<int:endpoint_id>")
@operation(Permission.MANAGE_SENDING, EndpointOut, etag=True, tags=TAGS)
def get_webhook_endpoint(endpoint_id: int) -> EndpointOut:
    """Read an endpoint."""
    return EndpointOut.of(endpoints.get_endpoint(api_caller().account_id, endpoint_id))


@v1.patch("/webhooks/endpoints/<int:endpoint_id>")
@operation(Permission.MANAGE_SENDING, EndpointOut, etag=True, tags=TAGS)
def update_webhook_endpoint(endpoint_id: int, json: EndpointUpdate) -> EndpointOut:
    """Change an endpoint (fields left out stay). Enabling it again clears its failures."""
    caller = api_caller()
    check_if_match(EndpointOut.of(endpoints.get_endpoint(caller.account_id, endpoint_id)))
    updated = endpoints.update_endpoint(
        caller.account_id,
        caller.created_by,
        endpoint_id,
        url=json.url,
        event_types=json.event_types,
        description=json.description,
        enabled=json.enabled,
    )
    return EndpointOut.of(updated)


@v1.delete("/webhooks/endpoints/<int:endpoint_id>")
@operation(Permission.MANAGE_SENDING, None, status=204, etag=True, tags=TAGS)
def delete_webhook_endpoint(endpoint_id: int) -> tuple[str, int]:
    """Delete an endpoint with its deliveries (those waiting are not sent)."""
    caller = api_caller()
    check_if_match(EndpointOut.of(endpoints.get_endpoint(caller.account_id, endpoint_id)))
    endpoints.delete_endpoint(caller.account_id, caller.created_by, endpoint_id)
    return "", 204


@v1.post("/webhooks/endpoints/<int:endpoint_id>/rotate-secret")
@operation(Permission.MANAGE_SENDING, SecretOut, tags=TAGS)
def rotate_webhook_secret(endpoint_id: int) -> SecretOut:
    """A new signing secret; deliveries carry signatures of the old and the new one until the
    old one expires (WEBHOOKS_SECRET_GRACE_HOURS)."""
    caller = api_caller()
    secret = endpoints.rotate_secret(caller.account_id, caller.created_by, endpoint_id)
    return SecretOut(secret=secret)


@v1.post("/webhooks/endpoints/<int:endpoint_id>/test")
@operation(Permission.MANAGE_SENDING, TestSent, status=202, tags=TAGS)
def send_webhook_test(endpoint_id: int) -> tuple[TestSent, int]:
    """Queue a ``webhook.test`` event to this endpoint (even a disabled one)."""
    public_id = endpoints.send_test_event(api_caller().account_id, endpoint_id)
    return TestSent(event_id=public_id), 202


def _delivery_out(delivery: WebhookDelivery, event_id: str, event_type: str) -> DeliveryOut:
    shown = dataclasses.asdict(queries.logged(delivery, event_id, event_type))
    return DeliveryOut(**{**shown, "status": delivery.status.value})


@v1.get("/webhooks/endpoints/<int:endpoint_id>/deliveries")
@operation(Permission.MANAGE_SENDING, DeliveryPage, tags=TAGS)
def list_webhook_deliveries(endpoint_id: int, query: DeliveryQuery) -> DeliveryPage:
    """An endpoint's deliveries, newest first, optionally of one status; pages follow
    ``next_cursor``."""
    page = keyset_page(
        queries.deliveries_query(api_caller().account_id, endpoint_id, query.status or None),
        WebhookDelivery.id,
        {"created": Sort(WebhookDelivery.id)},
        "-created",
        query.limit,
        query.cursor,
        {"endpoint": endpoint_id, "status": query.status},
        lambda delivery: (delivery.id, delivery.id),
    )
    events = queries.events_by_id([d.event_id for d in page.items])
    return DeliveryPage(
        items=[
            _delivery_out(d, events[d.event_id].public_id, events[d.event_id].type)
            for d in page.items
        ],
        next_cursor=page.next_cursor,
    )


@v1.post("/webhooks/deliveries/<int:delivery_id>/retry")
@operation(Permission.MANAGE_SENDING, RetryOut, status=202, tags=TAGS)
def retry_webhook_delivery(delivery_id: int) -> tuple[RetryOut, int]:
    """Attempt a failed (or waiting) delivery again now, with a fresh retry schedule.
    Refused (422) while it is being attempted or once it succeeded."""
    delivery = endpoints.retry_delivery(api_caller().account_id, delivery_id)
    return RetryOut(id=delivery.id, status="pending"), 202
