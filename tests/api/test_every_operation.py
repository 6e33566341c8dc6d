"""Properties every API operation must have, driven by the OpenAPI document (a new operation is
covered without a change here): no answer without a key, each scope opens exactly its
operations, and a key of one account never reaches another account's data."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import select

from api.spec import build_spec
from campaigns import template_library
from campaigns.transactional import send_transactional
from core import db as core_db
from core.permissions import ALL, Permission
from privacy import queries as privacy_queries
from privacy import services as privacy
from subscribers import services as subscribers
from tests.api.conftest import api, make_key
from tests.factories import Tenant, make_campaign, make_list_with_contacts, make_tenant
from webhooks import endpoints as webhook_endpoints
from webhooks.models import WebhookDelivery

#: What account A holds, which account B's key tries to reach.
A_ADDRESS = "a-secret@example.org"
A_LIST = "A's secret list"
A_CAMPAIGN = "A's secret campaign"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    scope: Permission
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def operations(app: Flask) -> list[Operation]:
    spec = build_spec(app)
    found = []
    for path, methods in spec["paths"].items():
        for method, item in methods.items():
            found.append(Operation(method, path, Permission(item["x-scope"]), item))
    assert len(found) >= 10, found
    return found


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


def example(spec: dict[str, Any], schema: dict[str, Any], name: str = "") -> Any:
    """The smallest valid value of ``schema`` (required fields only): the request reaches the
    operation itself, past validation."""
    schema = _resolve(spec, schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example(spec, schema["anyOf"][0], name)
    kind = schema.get("type")
    if kind == "object":
        return {
            field: example(spec, schema["properties"][field], field)
            for field in schema.get("required", [])
        }
    if kind == "string":
        if "email" in name:
            return "isolation@example.net"
        if schema.get("format") == "date-time":
            return "2030-01-01T10:00:00Z"
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return None


def body_of(spec: dict[str, Any], operation: Operation) -> Any:
    content = operation.spec.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return example(spec, content["application/json"]["schema"])


@dataclass
class Seeded:
    tenant: Tenant
    ids: dict[str, int]


def seed_account_a(app: Flask) -> Seeded:
    with app.app_context():
        tenant = make_tenant("owner@a.example", "A")
        list_id = make_list_with_contacts(tenant, [], A_LIST)
        contact = subscribers.add_contact_to_list(tenant.account_id, list_id, A_ADDRESS)
        campaign_id = make_campaign(tenant, list_id, subject=A_CAMPAIGN)
        template = template_library.save_template(
            tenant.account_id, template_id=None, name=A_CAMPAIGN, subject="Hi", html_body="<p>"
        )
        segment = subscribers.save_segment(
            tenant.account_id,
            None,
            A_LIST,
            "all",
            [{"field": "email", "op": "contains", "value": "a"}],
        )
        upload = subscribers.create_import(
            tenant.account_id, list_id, io.BytesIO(b"email\nx@example.org\n"), "a.csv", False
        )
        other = subscribers.add_contact_to_list(tenant.account_id, list_id, "other@example.org")
        privacy.restrict_contact(tenant.account_id, other.id, tenant.user_id)
        request_id = privacy_queries.requests_for_account(tenant.account_id)[0].request_account_id
        message_id = send_transactional(
            tenant.account_id,
            A_ADDRESS,
            from_email="orders@a.example",
            subject="S",
            html="<p>x</p>",
        )
        ids = {
            "import_id": upload.id,
            "request_id": request_id,
            "contact_id": contact.id,
            "list_id": list_id,
            "campaign_id": campaign_id,
            "template_id": template.id,
            "segment_id": segment.id,
            "message_id": message_id,
        }
        # A webhook endpoint (a public address: no lookup, never reached here) with a delivery.
        hook = webhook_endpoints.create_endpoint(
            tenant.account_id, None, "https://93.184.216.34/a-hooks", ["message.sent"]
        )
        webhook_endpoints.send_test_event(tenant.account_id, hook.endpoint.id)
        ids["endpoint_id"] = hook.endpoint.id
        ids["delivery_id"] = core_db.session.scalars(select(WebhookDelivery.id)).one()
        return Seeded(tenant, ids)


#: How to find account A's id for each path parameter; a new parameter fails by name below.
ISOLATION_IDS: dict[str, Callable[[Seeded], int]] = {
    "contact_id": lambda seeded: seeded.ids["contact_id"],
    "list_id": lambda seeded: seeded.ids["list_id"],
    "campaign_id": lambda seeded: seeded.ids["campaign_id"],
    "template_id": lambda seeded: seeded.ids["template_id"],
    "segment_id": lambda seeded: seeded.ids["segment_id"],
    "import_id": lambda seeded: seeded.ids["import_id"],
    "request_id": lambda seeded: seeded.ids["request_id"],
    "message_id": lambda seeded: seeded.ids["message_id"],
    "endpoint_id": lambda seeded: seeded.ids["endpoint_id"],
    "delivery_id": lambda seeded: seeded.ids["delivery_id"],
}


def _path(operation: Operation, values: dict[str, int]) -> str:
    path = operation.path
    for name in operation.params:
        path = path.replace(f"{{{name}}}", str(values[name]))
    return path


def test_every_operation_refuses_requests_without_a_live_key(app: Flask) -> None:
    spec = build_spec(app)
    client = api(app, None)
    wrong = []
    for operation in operations(app):
        path = _path(operation, dict.fromkeys(operation.params, 1))
        response = client.request(operation.method.upper(), path, json=body_of(spec, operation))
        if response.status_code != 401 or response.mimetype != "application/problem+json":
            wrong.append(f"{operation.name}: {response.status_code}")
    assert not wrong, wrong


def test_each_scope_opens_exactly_its_operations(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    spec = build_spec(app)
    problems = []
    for operation in operations(app):
        path = _path(operation, dict.fromkeys(operation.params, 987654))
        body = body_of(spec, operation)
        without = api(app, make_key(app, tenant, ALL - {operation.scope}, "without"))
        refused = without.request(operation.method.upper(), path, json=body)
        if refused.status_code != 403:
            problems.append(f"{operation.name} without {operation.scope}: {refused.status_code}")
        only = api(app, make_key(app, tenant, {operation.scope}, "only"))
        admitted = only.request(operation.method.upper(), path, json=body)
        if admitted.status_code in (401, 403) or admitted.status_code >= 500:
            problems.append(f"{operation.name} with {operation.scope}: {admitted.status_code}")
    assert not problems, "\n".join(problems)


def test_a_key_of_another_account_never_reaches_its_data(app: Flask) -> None:
    """Account B's key (every scope) on A's ids: 404 for every operation naming an id (with a
    valid body, so the refusal is the account's, not the input's); lists and searches of B
    never show A's rows; A's data is unchanged afterwards."""
    seeded = seed_account_a(app)
    a_client = api(app, make_key(app, seeded.tenant))
    before = {
        name: a_client.get(f"/api/v1/{name}s/{seeded.ids[f'{name}_id']}").get_data()
        for name in ("contact", "list", "campaign", "template", "segment")
    }
    with app.app_context():
        b_tenant = make_tenant("owner@b.example", "B")
    b_client = api(app, make_key(app, b_tenant))
    spec = build_spec(app)
    unknown = sorted(
        {p for operation in operations(app) for p in operation.params} - set(ISOLATION_IDS)
    )
    assert not unknown, f"add A's id for {unknown} to ISOLATION_IDS"
    leaks = []
    for operation in operations(app):
        values = {name: ISOLATION_IDS[name](seeded) for name in operation.params}
        response = b_client.request(
            operation.method.upper(), _path(operation, values), json=body_of(spec, operation)
        )
        text = response.get_data(as_text=True)
        if operation.params and response.status_code != 404:
            leaks.append(f"{operation.name}: {response.status_code} {text[:200]}")
        if A_ADDRESS in text or A_LIST in text or A_CAMPAIGN in text:
            leaks.append(f"{operation.name}: shows A's data")
    assert not leaks, "\n".join(leaks)
    after = {
        name: a_client.get(f"/api/v1/{name}s/{seeded.ids[f'{name}_id']}").get_data()
        for name in ("contact", "list", "campaign", "template", "segment")
    }
    assert after == before
