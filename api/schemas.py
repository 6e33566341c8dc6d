"""Types the API's models share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema


def _utc(value: datetime) -> str:
    return value.replace(tzinfo=UTC, microsecond=0).isoformat().replace("+00:00", "Z")


#: A stored (naive UTC) time, written as RFC 3339 in UTC: ``2026-12-02T21:00:00Z``.
Timestamp = Annotated[
    datetime,
    PlainSerializer(_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

#: An id the client names (in a body or a query): within the database's integer range.
Id = Annotated[int, Field(ge=0, le=2**31 - 1)]

#: A custom attribute's value: text, a number, true/false or null (subscribers.check_attributes).
AttributeValue = str | int | float | bool | None


class Strict(BaseModel):
    """An input model: unknown fields are refused (a typo is an error, not silently ignored)."""

    model_config = ConfigDict(extra="forbid")
