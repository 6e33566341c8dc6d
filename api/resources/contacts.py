"""Contacts: create, upsert by address, read, rectify, search, erase (the privacy services)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.paging import DEFAULT_LIMIT, MAX_LIMIT, Sort, keyset_page
from api.schemas import AttributeValue, Strict, Timestamp
from api.spec import check_if_match, operation
from api.v1 import v1
from core.auth import api_caller
from core.permissions import Permission
from privacy import services as privacy
from subscribers import queries
from subscribers import services as subscribers
from subscribers.models import Contact

TAGS = ("contacts",)


class ContactCreate(Strict):
    email: str = Field(min_length=1, max_length=320, description="the address (normalised)")
    name: str = Field("", max_length=200)
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="custom fields for personalisation"
    )


class ContactUpsert(Strict):
    email: str = Field(min_length=1, max_length=320)
    name: str | None = Field(None, max_length=200, description="replaces the name when given")
    attributes: dict[str, AttributeValue] | None = Field(
        None, description="replace the attributes when given"
    )


class ContactUpdate(Strict):
    name: str | None = Field(None, max_length=200)
    attributes: dict[str, AttributeValue] | None = None


class ContactSubscription(BaseModel):
    list_id: int
    list_name: str
    status: str
    confirmed_at: Timestamp | None
    unsubscribed_at: Timestamp | None


class ContactOut(BaseModel):
    id: int
    email: str
    name: str
    attributes: dict[str, AttributeValue]
    source: str
    created_at: Timestamp
    updated_at: Timestamp
    restricted: bool = Field(description="processing restricted (GDPR art. 18): no mail")
    objected: bool = Field(description="objected to direct marketing: no mail")
    consent_withdrawn: bool
    lists: list[ContactSubscription]

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        return cls(
            id=contact.id,
            email=contact.email,
            name=contact.name,
            attributes=dict(contact.attributes or {}),
            source=contact.source,
            created_at=contact.created_at,
            updated_at=contact.updated_at,
            restricted=contact.restricted_at is not None,
            objected=contact.objected_at is not None,
            consent_withdrawn=contact.consent_withdrawn_at is not None,
            lists=[
                ContactSubscription(
                    list_id=row.list_id,
                    list_name=row.list_name,
                    status=row.status,
                    confirmed_at=row.confirmed_at,
                    unsubscribed_at=row.unsubscribed_at,
                )
                for row in queries.contact_lists(contact.account_id, contact.id)
            ],
        )


class ContactUpserted(ContactOut):
    created: bool = Field(description="true when the address was new to the account")


class ContactSummary(BaseModel):
    id: int
    email: str
    name: str
    created_at: Timestamp


class ContactPage(BaseModel):
    items: list[ContactSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: end")


class ContactQuery(BaseModel):
    q: str = Field("", max_length=200, description="part of the address or name")
    status: Literal["", "subscribed", "unconfirmed", "unsubscribed"] = ""
    list_id: int | None = Field(None, ge=0, le=2**31 - 1)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=500)
    sort: Literal["created", "-created", "email", "-email"] = "-created"


SORTS = {
    "created": Sort(Contact.id),
    "email": Sort(Contact.email),
}


def _key(contact: Contact, sort: str) -> tuple[Any, int]:
    return (contact.email if sort.lstrip("-") == "email" else contact.id), contact.id


@v1.get("/contacts")
@operation(Permission.MANAGE_CONTACTS, ContactPage, tags=TAGS)
def list_contacts(query: ContactQuery) -> ContactPage:
    """Search the account's contacts.

    Filters combine; pages follow ``next_cursor``. Sorted newest first unless ``sort`` says
    otherwise."""
    filters = queries.ContactFilter(q=query.q, status=query.status, list_id=query.list_id)
    page = keyset_page(
        queries.contact_search(api_caller().account_id, filters),
        Contact.id,
        SORTS,
        query.sort,
        query.limit,
        query.cursor,
        {"q": query.q, "status": query.status, "list_id": query.list_id},
        lambda contact: _key(contact, query.sort),
    )
    return ContactPage(
        items=[
            ContactSummary(id=c.id, email=c.email, name=c.name, created_at=c.created_at)
            for c in page.items
        ],
        next_cursor=page.next_cursor,
    )


@v1.post("/contacts")
@operation(Permission.MANAGE_CONTACTS, ContactOut, status=201, creates=True, tags=TAGS)
def create_contact(json: ContactCreate) -> tuple[ContactOut, int]:
    """Add a contact (on no list yet).

    Refused (422) for an address already in the account, or suppressed or blocked."""
    contact, _created = subscribers.upsert_contact(
        api_caller().account_id, json.email, json.name, json.attributes, must_be_new=True
    )
    return ContactOut.of(contact), 201


@v1.put("/contacts")
@operation(Permission.MANAGE_CONTACTS, ContactUpserted, tags=TAGS)
def upsert_contact(json: ContactUpsert) -> ContactUpserted:
    """Create or update a contact by address.

    A new address is added (unless suppressed); a known one gets the given name and
    attributes. Safe to repeat."""
    contact, created = subscribers.upsert_contact(
        api_caller().account_id, json.email, json.name, json.attributes
    )
    return ContactUpserted(**ContactOut.of(contact).model_dump(), created=created)


@v1.get("/contacts/<int:contact_id>")
@operation(Permission.MANAGE_CONTACTS, ContactOut, etag=True, tags=TAGS)
def get_contact(contact_id: int) -> ContactOut:
    """Read a contact, with its lists and privacy state."""
    return ContactOut.of(subscribers.get_contact(api_caller().account_id, contact_id))


@v1.patch("/contacts/<int:contact_id>")
@operation(Permission.MANAGE_CONTACTS, ContactOut, etag=True, tags=TAGS)
def update_contact(contact_id: int, json: ContactUpdate) -> ContactOut:
    """Rectify a contact's name or attributes (fields left out stay)."""
    account_id = api_caller().account_id
    contact = subscribers.get_contact(account_id, contact_id)
    check_if_match(ContactOut.of(contact))
    updated = subscribers.update_contact(
        account_id,
        contact_id,
        contact.name if json.name is None else json.name,
        dict(contact.attributes or {}) if json.attributes is None else json.attributes,
    )
    return ContactOut.of(updated)


@v1.delete("/contacts/<int:contact_id>")
@operation(Permission.MANAGE_PRIVACY, None, status=204, etag=True, tags=TAGS)
def erase_contact(contact_id: int) -> tuple[str, int]:
    """Erase a contact (GDPR art. 17), as the contact's privacy page does.

    Its data goes everywhere it is kept; the address stays suppressed for this account as a
    keyed hash, so it is not added again by mistake."""
    caller = api_caller()
    check_if_match(ContactOut.of(subscribers.get_contact(caller.account_id, contact_id)))
    privacy.erase_contact(caller.account_id, contact_id, caller.created_by or 0)
    return "", 204
