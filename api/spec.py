"""How an API operation is declared, and the OpenAPI 3.1 document generated from the code.

A resource module adds an operation with one decorator below the route::

    @v1.get("/contacts/<int:contact_id>")
    @operation(Permission.MANAGE_CONTACTS, ContactOut, etag=True, tags=("contacts",))
    def get_contact(contact_id: int) -> ContactOut:
        "Read a contact."  # the first line is the summary in the reference
        ...

:func:`operation` stacks, outermost first:

1. ``core.auth.require_scope(permission)``: the key (never a cookie) and its scope; this is the
   access declaration tests/test_permissions.py and the isolation tests read (401/403);
2. the rate limit per key (429 with ``Retry-After``);
3. checks every route shares: ids in the path within the database's integer range (404
   otherwise), a JSON body for operations that take one (415);
4. ``Idempotency-Key`` when ``creates=True`` (api/idempotency.py);
5. spectree's validation of the query (a ``query: Model`` parameter), the JSON body
   (``json: Model``) and the response (``response``; a mismatch is our bug, a 500), which
   also feeds the document.

Errors are raised, never returned: ``core.problems.Problem`` or a service's
``ValidationError`` / ``NotFoundError`` / ``PermissionDeniedError``; the app factory answers
them as RFC 9457 problem details, and the document says so for every operation.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import threading
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, request
from limits import RateLimitItemPerMinute
from pydantic import BaseModel
from spectree import Response as SpecResponse
from spectree import SpecTree

from api import idempotency
from core.auth import api_caller, require_scope
from core.limiting import moving_window
from core.permissions import Permission
from core.problems import MEDIA_TYPE, FieldError, Problem

#: The largest id a path may name (PostgreSQL ``integer``); larger ones are simply not found.
MAX_ID = 2**31 - 1
RATE_PURPOSE = "api-rate"


class ProblemFieldError(BaseModel):
    field: str
    message: str


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, as every error of the API answers."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemFieldError] | None = None


def _validation_problem(
    _req: Any, _resp: Any, error: Exception | None, _instance: Any, adapter: Any
) -> None:
    """spectree's hook: a request that fails validation is a 422 problem with field errors."""
    if error is None:
        return
    fields = []
    for item in adapter.validation_errors(error):
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "__root__")
        fields.append(FieldError(location or "body", str(item.get("msg", "invalid"))))
    raise Problem(422, "The request has invalid fields.", "validation-error", fields)


spec_tree = SpecTree(
    "flask",
    mode="strict",
    path="api/v1/_spectree",  # nothing is served there: the document is served by api.views
    title="Envoy API",
    version="v1",
    validation_error_status=422,
    validation_error_model=ProblemDocument,
    before=_validation_problem,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
)


@dataclass(frozen=True)
class OperationInfo:
    """What the document needs beyond spectree's part (read by :func:`build_spec`)."""

    permission: Permission
    creates: bool
    etag: bool
    takes_json: bool
    #: Media type of a raw request body (an upload) or of a non-JSON answer, for the document.
    consumes: str | None = None
    produces: str | None = None
    #: When the operation itself may answer 409: what the conflict is, for the document.
    conflict: str | None = None


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body.rstrip(b"\n")).hexdigest()[:32] + '"'


def etag_of(model: BaseModel) -> str:
    """The ETag of a resource: a digest of the JSON its GET answers with."""
    return _etag(spec_tree.model_adapter.dump_json(model))


def check_if_match(current: BaseModel) -> None:
    """For PATCH/PUT/DELETE: when the request sends ``If-Match``, it must name the resource's
    current ETag (or ``*``); otherwise 412, and nothing is changed."""
    sent = request.headers.get("If-Match")
    if sent is None:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in sent.split(",")}
    if "*" not in wanted and etag_of(current) not in wanted:
        raise Problem(
            412,
            "The resource changed since you read it (If-Match does not match its ETag). "
            "Read it again and repeat the change.",
            "precondition-failed",
        )


def _rate_limit(key_id: int) -> None:
    limit = RateLimitItemPerMinute(int(current_app.config["API_RATE_LIMIT_PER_MINUTE"]))
    limiter = moving_window(RATE_PURPOSE)
    if not limiter.hit(limit, str(key_id)):
        reset, _remaining = limiter.get_window_stats(limit, str(key_id))
        retry = max(1, math.ceil(reset - time.time()))
        raise Problem(
            429,
            f"This key made more than {limit.amount} requests in a minute; retry after {retry} s.",
            "rate-limited",
            headers={"Retry-After": str(retry)},
        )


def _check_ids(kwargs: dict[str, Any]) -> None:
    for value in kwargs.values():
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise Problem(404, "No such resource in this account.")


def _check_query() -> None:
    if any("\x00" in value for value in request.args.values()):
        raise Problem(
            422,
            "The query holds a NUL character, which no parameter accepts.",
            "validation-error",
            [FieldError("query", "NUL character")],
        )


def _check_json_body() -> None:
    if request.method in ("GET", "HEAD", "DELETE"):
        return
    if not request.is_json:
        raise Problem(
            415, "Send the body as JSON with “Content-Type: application/json”.", "not-json"
        )
    body = request.get_json(silent=True)
    if body is None:
        raise Problem(
            422,
            "The body is not valid JSON.",
            "validation-error",
            [FieldError("body", "not valid JSON")],
        )
    text = json.dumps(body, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Problem(
            422,
            "The body holds text that is not valid Unicode (a lone surrogate).",
            "validation-error",
            [FieldError("body", "invalid Unicode")],
        ) from None
    if "\x00" in text or "\\u0000" in text:
        raise Problem(
            422,
            "The body holds a NUL character, which no field accepts.",
            "validation-error",
            [FieldError("body", "NUL character")],
        )


def _idempotent(view: Callable[..., Response], *args: Any, **kwargs: Any) -> Response:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return view(*args, **kwargs)
    account_id = api_caller().account_id
    fingerprint = idempotency.request_hash(request.method, request.path, request.get_data())
    stored = idempotency.begin(account_id, key, fingerprint)
    if stored is not None:
        replay = Response(stored.body, status=stored.status, headers=stored.headers)
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = view(*args, **kwargs)
    except BaseException:
        idempotency.abandon(account_id, key)
        raise
    if 200 <= response.status_code < 300:
        kept = {
            name: value
            for name, value in response.headers.items()
            if name in ("Content-Type", "Location", "ETag")
        }
        idempotency.finish(
            account_id, key, response.status_code, response.get_data(as_text=True), kept
        )
    else:
        idempotency.abandon(account_id, key)
    return response


def operation(
    permission: Permission,
    response: type[BaseModel] | None,
    *,
    status: int = 200,
    creates: bool = False,
    etag: bool = False,
    tags: Sequence[str] = (),
    consumes: str | None = None,
    produces: str | None = None,
    conflict: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Declare an API operation (see the module docstring): ``permission`` is the scope it
    needs, ``response`` the model of a successful answer with ``status`` (None for 204),
    ``creates`` turns on ``Idempotency-Key``, ``etag`` sets an ETag on the answer (single
    resources; the view calls :func:`check_if_match` before a change). ``consumes``: the
    media type of a raw body the view reads itself (an upload); ``produces``: the media type
    of an answer that is not JSON (a download); ``conflict``: when the operation itself can
    answer 409, what that means (the document lists it)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        hints = typing.get_type_hints(view)
        takes_json = "json" in hints
        validated = spec_tree.validate(
            resp=SpecResponse(**{f"HTTP_{status}": response}),
            tags=tuple(tags),
            operation_id=view.__name__,
        )(view)

        def answer(*args: Any, **kwargs: Any) -> Response:
            result = validated(*args, **kwargs)
            made = current_app.make_response(result)
            if made.is_json:
                body = made.get_data()
                if etag and made.status_code == 200:
                    made.headers["ETag"] = _etag(body)
                made.set_data(body.rstrip(b"\n") + b"\n")  # a terminal prompt on its own line
            return made

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Response:
            _rate_limit(api_caller().key_id)
            _check_ids(kwargs)
            _check_query()
            if takes_json:
                _check_json_body()
            if creates:
                return _idempotent(answer, *args, **kwargs)
            return answer(*args, **kwargs)

        guarded.__wrapped__ = validated  # spectree finds its metadata through __wrapped__
        declared = require_scope(permission)(guarded)
        declared.api_operation = OperationInfo(  # type: ignore[attr-defined]
            permission, creates, etag, takes_json, consumes, produces, conflict
        )
        return declared

    return decorate


# --- the document ------------------------------------------------------------------------

_GENERATING = threading.Lock()
_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDocument"}
_ERRORS = {
    "401": "No live API key (missing, unknown or revoked; cookies are not accepted).",
    "403": "The key lacks the scope this operation needs.",
    "404": "No such resource in this account.",
    "422": "Invalid input: ``errors`` names each field.",
    "429": "Too many requests for this key: wait ``Retry-After`` seconds.",
}


def _problem(description: str, retry_after: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": _PROBLEM_REF}},
    }
    if retry_after:
        found["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}
        }
    return found


def _operations(app: Flask) -> dict[tuple[str, str], OperationInfo]:
    """(spec path, method) -> what :func:`operation` recorded, from the url_map."""
    found = {}
    for rule in app.url_map.iter_rules():
        info = getattr(app.view_functions[rule.endpoint], "api_operation", None)
        if not isinstance(info, OperationInfo):
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<int:{argument}>", f"{{{argument}}}")
            path = path.replace(f"<{argument}>", f"{{{argument}}}")
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found[(path, method.lower())] = info
    return found


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s API (made once per app)."""
    cached = app.extensions.get("api.spec")
    if cached is not None:
        return typing.cast(dict[str, Any], cached)
    with _GENERATING, app.app_context():
        # spectree lifts nested models out of its stored schemas as it generates (it deletes
        # their $defs): generate from a copy, so the next app's document gets them too.
        kept = copy.deepcopy(spec_tree.models)
        try:
            spec = spec_tree._generate_spec()
        finally:
            spec_tree.models = kept
    spec["info"] = {
        "title": "Envoy API",
        "version": "v1",
        "description": "Lists, contacts, campaigns and the rest of an Envoy account, "
        "for code. Authenticate with an API key from Settings > API keys as "
        "`Authorization: Bearer <key>`. Errors are RFC 9457 problem details. "
        "Guide: docs/api.md.",
    }
    components = spec.setdefault("components", {})
    components["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "An Envoy API key"}
    }
    # spectree lists ProblemDocument (the validation error model of every operation).
    spec["security"] = [{"apiKey": []}]
    operations = _operations(app)
    for path, methods in spec["paths"].items():
        for method, item in methods.items():
            info = operations.get((path, method))
            if info is None:
                continue
            _document_operation(item, info, method)
    spec["paths"] = dict(sorted(spec["paths"].items()))
    app.extensions["api.spec"] = spec
    return spec


def _document_operation(item: dict[str, Any], info: OperationInfo, method: str) -> None:
    item["description"] = (
        (item.get("description") or "")
        + f"\n\nNeeds the scope `{info.permission.value}` ({info.permission.label})."
    ).strip()
    item["x-scope"] = info.permission.value
    responses = item.setdefault("responses", {})
    for code, text in _ERRORS.items():
        responses[code] = _problem(text, retry_after=code == "429")
    responses["503"] = _problem("The database is briefly unavailable.", retry_after=True)
    for param in item.get("parameters", []):
        schema = param.get("schema", {})
        if param.get("in") == "path" and schema.get("type") == "integer":
            param["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
        elif param.get("in") == "query" and "anyOf" in schema:
            # An optional query parameter is absent, never null: keep the non-null form.
            kept = [option for option in schema["anyOf"] if option.get("type") != "null"]
            if len(kept) == 1:
                merged = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
                param["schema"] = {**merged, **kept[0]}
    parameters = item.setdefault("parameters", [])
    if info.takes_json:
        responses["415"] = _problem("The body is not JSON.")
    if info.consumes:
        item["requestBody"] = {
            "required": True,
            "content": {info.consumes: {"schema": {"type": "string"}}},
        }
    if info.produces:
        responses["200"] = {
            "description": "OK",
            "content": {info.produces: {"schema": {"type": "string"}}},
        }
    if info.creates:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Retries with the same key and body get the first answer "
                "(kept 24 h) and create nothing; the same key with another body is a 422.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
        responses["409"] = _problem(
            "A request with this Idempotency-Key is still being answered.", retry_after=True
        )
    if info.conflict:
        in_progress = "Or: a request with this Idempotency-Key is still being answered."
        text = f"{info.conflict} {in_progress}" if info.creates else info.conflict
        responses["409"] = _problem(text, retry_after=info.creates)
    if info.etag and "200" in responses:
        responses["200"].setdefault("headers", {})["ETag"] = {
            "schema": {"type": "string"},
            "description": "send it back as If-Match to change the resource safely",
        }
    if info.etag and method in ("patch", "put", "delete"):
        parameters.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": "The ETag you read; a change to a resource that changed since "
                "answers 412.",
                "schema": {"type": "string"},
            }
        )
        responses["412"] = _problem("If-Match does not match the resource's current ETag.")
    if not parameters:
        item.pop("parameters")
