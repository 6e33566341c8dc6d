"""Segments (read, count) and suppression (add, check) of the account."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import Strict, Timestamp
from api.spec import operation
from api.v1 import v1
from core.auth import api_caller
from core.permissions import Permission
from subscribers import queries, suppression
from subscribers import services as subscribers
from subscribers.normalise import normalise_email


class SegmentOut(BaseModel):
    id: int
    name: str
    match: str = Field(description="all: every rule must hold; any: one is enough")
    rules: list[dict[str, Any]]
    created_at: Timestamp
    updated_at: Timestamp


class SegmentPage(BaseModel):
    items: list[SegmentOut]


class SegmentCount(BaseModel):
    contacts: int = Field(description="matching contacts that may be processed")
    kept_out: int = Field(
        description="matching contacts kept out by a restriction, objection or withdrawal"
    )


def _segment_out(segment: Any) -> SegmentOut:
    return SegmentOut(
        id=segment.id,
        name=segment.name,
        match=segment.match,
        rules=list(segment.rules or []),
        created_at=segment.created_at,
        updated_at=segment.updated_at,
    )


@v1.get("/segments")
@operation(Permission.MANAGE_CONTACTS, SegmentPage, tags=("segments",))
def list_segments() -> SegmentPage:
    """The account's segments, by name."""
    return SegmentPage(items=[_segment_out(s) for s in queries.segments(api_caller().account_id)])


@v1.get("/segments/<int:segment_id>")
@operation(Permission.MANAGE_CONTACTS, SegmentOut, etag=True, tags=("segments",))
def get_segment(segment_id: int) -> SegmentOut:
    """Read a segment and its rules."""
    return _segment_out(subscribers.get_segment(api_caller().account_id, segment_id))


@v1.get("/segments/<int:segment_id>/count")
@operation(Permission.MANAGE_CONTACTS, SegmentCount, tags=("segments",))
def count_segment(segment_id: int) -> SegmentCount:
    """How many contacts match the segment now, as the segment page counts them."""
    account_id = api_caller().account_id
    segment = subscribers.get_segment(account_id, segment_id)
    total, _sample, kept_out = queries.segment_preview(account_id, segment, sample=0)
    return SegmentCount(contacts=total, kept_out=kept_out)


class SuppressIn(Strict):
    email: str = Field(min_length=1, max_length=320)


class SuppressionOut(BaseModel):
    suppressed: bool
    scope: Literal["account", "platform"] | None = Field(
        description="account: your account's suppression list; platform: the platform does "
        "not mail this address for any account (no detail is given)"
    )
    reason: str | None = Field(description="why, for your account's own suppressions")


def _check(account_id: int, email: str) -> SuppressionOut:
    scope, reason = suppression.suppression_scope(account_id, normalise_email(email))
    return SuppressionOut(suppressed=scope is not None, scope=scope, reason=reason)  # type: ignore[arg-type]


@v1.post("/suppressions")
@operation(Permission.MANAGE_CONTACTS, SuppressionOut, tags=("suppression",))
def add_suppression(json: SuppressIn) -> SuppressionOut:
    """Never mail this address from this account (stored as a keyed hash). Idempotent."""
    account_id = api_caller().account_id
    subscribers.suppress_address(account_id, json.email)
    return _check(account_id, json.email)


@v1.post("/suppressions/check")
@operation(Permission.MANAGE_CONTACTS, SuppressionOut, tags=("suppression",))
def check_suppression(json: SuppressIn) -> SuppressionOut:
    """Whether this account may mail an address (the address travels in the body, never the
    URL). Another account's suppressions are never revealed."""
    return _check(api_caller().account_id, json.email)
