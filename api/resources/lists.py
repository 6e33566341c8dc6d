"""Lists and subscriptions: create and read lists, subscribe (directly or by double opt-in),
unsubscribe."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.resources.contacts import ContactOut
from api.schemas import AttributeValue, Strict, Timestamp
from api.spec import operation
from api.v1 import v1
from core.auth import api_caller
from core.errors import NotFoundError
from core.permissions import Permission
from subscribers import queries
from subscribers import services as subscribers

TAGS = ("lists",)


class ListCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)


class ListOut(BaseModel):
    id: int
    name: str
    description: str
    created_at: Timestamp
    signup_form: bool = Field(description="the public sign-up form is on")
    subscribed: int
    unsubscribed: int


class ListPage(BaseModel):
    items: list[ListOut]


class SubscribeIn(Strict):
    email: str = Field(min_length=1, max_length=320)
    name: str = Field("", max_length=200)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    double_opt_in: bool = Field(
        False,
        description="true: email the person a confirmation link and subscribe them only when "
        "they use it (the contact stays unconfirmed); false: subscribe at once (you hold "
        "their consent)",
    )


class SubscribeOut(BaseModel):
    status: Literal["subscribed", "confirmation-sent"]
    contact: ContactOut | None = Field(
        description="the contact (null for double opt-in: the answer reveals nothing about "
        "who is already on the list)"
    )


def _list_out(summary: queries.ListSummary) -> ListOut:
    return ListOut(
        id=summary.id,
        name=summary.name,
        description=summary.description,
        created_at=summary.created_at or datetime.min,
        signup_form=summary.signup_enabled,
        subscribed=summary.subscribed,
        unsubscribed=summary.unsubscribed,
    )


def _one_list(account_id: int, list_id: int) -> ListOut:
    found = queries.list_summaries(account_id, list_id)
    if not found:
        raise NotFoundError("list")
    return _list_out(found[0])


@v1.get("/lists")
@operation(Permission.MANAGE_CONTACTS, ListPage, tags=TAGS)
def list_lists() -> ListPage:
    """The account's lists with their subscriber counts, newest first."""
    return ListPage(items=[_list_out(s) for s in queries.list_summaries(api_caller().account_id)])


@v1.post("/lists")
@operation(Permission.MANAGE_CONTACTS, ListOut, status=201, creates=True, tags=TAGS)
def create_list(json: ListCreate) -> tuple[ListOut, int]:
    """Create a list."""
    account_id = api_caller().account_id
    made = subscribers.create_list(account_id, json.name, json.description)
    return _one_list(account_id, made.id), 201


@v1.get("/lists/<int:list_id>")
@operation(Permission.MANAGE_CONTACTS, ListOut, etag=True, tags=TAGS)
def get_list(list_id: int) -> ListOut:
    """Read a list with its counts."""
    return _one_list(api_caller().account_id, list_id)


@v1.post("/lists/<int:list_id>/subscriptions")
@operation(Permission.MANAGE_CONTACTS, SubscribeOut, status=201, creates=True, tags=TAGS)
def subscribe(list_id: int, json: SubscribeIn) -> tuple[SubscribeOut, int]:
    """Subscribe an address to a list, at once or by double opt-in.

    At once: the contact is created when new and subscribed, with a consent record; refused
    (422) for a suppressed address or one that unsubscribed from this list (only they can
    subscribe again). Double opt-in: the confirmation email of the list's sign-up form."""
    account_id = api_caller().account_id
    if json.double_opt_in:
        subscribers.request_opt_in(account_id, list_id, json.email, json.name)
        return SubscribeOut(status="confirmation-sent", contact=None), 201
    contact = subscribers.add_contact_to_list(
        account_id, list_id, json.email, json.name, json.attributes, source="api"
    )
    return SubscribeOut(status="subscribed", contact=ContactOut.of(contact)), 201


@v1.delete("/lists/<int:list_id>/subscriptions/<int:contact_id>")
@operation(Permission.MANAGE_CONTACTS, None, status=204, tags=TAGS)
def unsubscribe(list_id: int, contact_id: int) -> tuple[str, int]:
    """Unsubscribe a contact from a list (recorded as a consent change). Idempotent."""
    account_id = api_caller().account_id
    subscribers.get_list(account_id, list_id)
    subscribers.get_contact(account_id, contact_id)
    subscribers.unsubscribe_contact(account_id, contact_id, list_id, "api")
    return "", 204
