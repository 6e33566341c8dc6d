"""RFC 9457 problem details: how every error of the API (``/api/``) answers.

A problem is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and,
for invalid input, ``errors: [{field, message}]``. The app factory's error handlers answer a
request under :data:`API_PREFIX` with one of these instead of an HTML page, for every status
(404 for an unknown path, 405, 413, 429, 500 and 503 included), so a client never has to parse
HTML. Framework-level: no domain rules here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from flask import Response, json, request

#: Paths whose errors are problem details.
API_PREFIX = "/api/"
MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass
class Problem(Exception):
    """Raise in an API view (or service wrapper) to answer with a problem document."""

    status: int
    detail: str
    slug: str = ""  # a specific problem type (``validation-error``); empty: about:blank
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.detail}"


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def title_of(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    detail: str,
    slug: str = "",
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The problem document for ``status`` (``type`` is ``about:blank`` unless ``slug``)."""
    body: dict[str, Any] = {
        "type": f"urn:envoy:problem:{slug}" if slug else "about:blank",
        "title": title_of(status),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    response = Response(json.dumps(body) + "\n", status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_problem(problem: Problem) -> Response:
    return problem_response(
        problem.status,
        problem.detail,
        problem.slug,
        problem.errors if problem.errors or problem.slug == "validation-error" else None,
        problem.headers,
    )
