"""CSV imports (subscribers.services, as the Imports pages): upload a file, start it with a
column mapping, follow its status, download its per-row error report."""

from __future__ import annotations

import io
from typing import Literal

from flask import Response, request
from pydantic import BaseModel, Field

from api.schemas import Id, Strict, Timestamp
from api.spec import operation
from api.v1 import v1
from core.auth import api_caller
from core.permissions import Permission
from subscribers import services as subscribers
from subscribers.models import ImportJob

TAGS = ("imports",)
Target = Literal["email", "name", "first_name", "last_name", "attribute", "ignore"]


class ImportOut(BaseModel):
    id: int
    list_id: int | None
    status: str
    filename: str
    columns: list[str]
    mapping: dict[str, str] = Field(description="column index -> target (guessed until started)")
    percent: int
    rows: int
    created: int
    updated: int
    unchanged: int
    errors: int
    error: str
    created_at: Timestamp
    finished_at: Timestamp | None

    @classmethod
    def of(cls, job: ImportJob) -> ImportOut:
        done = job.status == "done"
        share = job.processed_bytes / job.total_bytes if job.total_bytes else 0
        return cls(
            id=job.id,
            list_id=job.list_id,
            status=str(job.status),
            filename=job.filename,
            columns=list(job.columns),
            mapping=dict(job.mapping),
            percent=100 if done else int(100 * share),
            rows=job.rows_read,
            created=job.created_count,
            updated=job.updated_count,
            unchanged=job.skipped_count,
            errors=job.error_count,
            error=job.error,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


class UploadQuery(BaseModel):
    list_id: Id
    filename: str = Field("upload.csv", min_length=1, max_length=255)


class StartIn(Strict):
    mapping: dict[str, Target] = Field(
        description="column index (as text) -> target; exactly one email column"
    )
    update_existing: bool = False


@v1.post("/imports")
@operation(
    Permission.MANAGE_CONTACTS,
    ImportOut,
    status=201,
    creates=True,
    tags=TAGS,
    consumes="text/csv",
)
def upload_import(query: UploadQuery) -> tuple[ImportOut, int]:
    """Upload a CSV (the request body, ``Content-Type: text/csv``) into a list.

    Its encoding and separator are detected and its header read; the import waits for its
    column mapping (``POST /imports/{id}/start``). Files over the size limit, empty or
    without a header are refused (422)."""
    job = subscribers.create_import(
        api_caller().account_id,
        query.list_id,
        io.BytesIO(request.get_data()),
        query.filename,
        update_existing=False,
    )
    return ImportOut.of(job), 201


@v1.post("/imports/<int:import_id>/start")
@operation(Permission.MANAGE_CONTACTS, ImportOut, tags=TAGS)
def start_import(import_id: int, json: StartIn) -> ImportOut:
    """Start the import with its column mapping (it runs in a worker)."""
    job = subscribers.start_import(
        api_caller().account_id, import_id, dict(json.mapping), json.update_existing
    )
    return ImportOut.of(job)


@v1.get("/imports/<int:import_id>")
@operation(Permission.MANAGE_CONTACTS, ImportOut, tags=TAGS)
def get_import(import_id: int) -> ImportOut:
    """Where the import stands: progress, counts, and why it failed."""
    return ImportOut.of(subscribers.get_import(api_caller().account_id, import_id))


@v1.get("/imports/<int:import_id>/errors")
@operation(Permission.MANAGE_CONTACTS, None, tags=TAGS, produces="text/csv")
def import_errors(import_id: int) -> Response:
    """The finished import's rows that were refused, with the reason (CSV)."""
    path = subscribers.import_report_path(api_caller().account_id, import_id)
    # Read whole: spectree reads the answer's body (one row per refused line, kept small).
    answer = Response(path.read_bytes(), mimetype="text/csv")
    answer.headers["Content-Disposition"] = f'attachment; filename="import-{import_id}-errors.csv"'
    answer.headers["Cache-Control"] = "no-store"
    return answer
