"""The account's data-subject requests (privacy.queries / privacy.services, as the Data
requests page): list, read, and apply a proposed rectification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.schemas import Timestamp
from api.spec import operation
from api.v1 import v1
from core.auth import api_caller
from core.errors import NotFoundError
from core.permissions import Permission
from privacy import queries
from privacy import services as privacy

TAGS = ("data requests",)


class DataRequestOut(BaseModel):
    id: int
    kind: str
    kind_label: str
    status: str
    by: str
    created_at: Timestamp
    fulfilled_at: Timestamp | None
    contact_id: int | None
    proposed: dict[str, Any] | None
    applied_at: Timestamp | None

    @classmethod
    def of(cls, row: queries.AccountRequestRow) -> DataRequestOut:
        return cls(
            id=row.request_account_id,
            kind=row.kind,
            kind_label=row.kind_label,
            status=row.status,
            by=row.actor,
            created_at=row.created_at,
            fulfilled_at=row.fulfilled_at,
            contact_id=row.contact_id,
            proposed=row.proposed,
            applied_at=row.applied_at,
        )


class DataRequestPage(BaseModel):
    items: list[DataRequestOut]


def _one(request_id: int) -> DataRequestOut:
    for row in queries.requests_for_account(api_caller().account_id, limit=10_000):
        if row.request_account_id == request_id:
            return DataRequestOut.of(row)
    raise NotFoundError("data request")


@v1.get("/data-requests")
@operation(Permission.HANDLE_DATA_REQUESTS, DataRequestPage, tags=TAGS)
def list_data_requests() -> DataRequestPage:
    """The data requests that concerned this account, newest first (the 200 latest)."""
    rows = queries.requests_for_account(api_caller().account_id)
    return DataRequestPage(items=[DataRequestOut.of(row) for row in rows])


@v1.get("/data-requests/<int:request_id>")
@operation(Permission.HANDLE_DATA_REQUESTS, DataRequestOut, tags=TAGS)
def get_data_request(request_id: int) -> DataRequestOut:
    """Read one data request of the account."""
    return _one(request_id)


@v1.post("/data-requests/<int:request_id>/apply")
@operation(Permission.HANDLE_DATA_REQUESTS, DataRequestOut, tags=TAGS)
def apply_rectification(request_id: int) -> DataRequestOut:
    """Apply the correction a person asked for to the account's contact (recorded)."""
    caller = api_caller()
    _one(request_id)
    privacy.apply_rectification(caller.account_id, request_id, caller.created_by or 0)
    return _one(request_id)
