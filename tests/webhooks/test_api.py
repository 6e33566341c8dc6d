"""Webhook endpoints through the API (/api/v1/webhooks/...): create (private targets refused
with field errors), read, change with If-Match, rotate the secret, send a test event that
arrives signed, list deliveries, retry one, delete; the scope is "sending:manage"."""

from __future__ import annotations

from typing import Any

from flask import Flask

from core.permissions import Permission
from tests.api.conftest import api, make_key
from tests.conftest import drain
from tests.factories import make_tenant
from tests.webhooks.receiver import Receiver, verifies

BASE = "/api/v1/webhooks"


def test_endpoint_lifecycle_through_the_api(app_factory: Any, receiver: Receiver) -> None:
    app: Flask = app_factory(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant, [Permission.MANAGE_SENDING]))

    refused = client.post(
        f"{BASE}/endpoints", json={"url": receiver.url, "event_types": ["message.sent"]}
    )
    assert refused.status_code == 422
    problem = refused.get_json()
    assert problem["errors"][0]["field"] == "url" and "loopback" in problem["errors"][0]["message"]
    unknown = client.post(
        f"{BASE}/endpoints", json={"url": "https://93.184.216.34/", "event_types": ["nope"]}
    )
    assert unknown.status_code == 422

    app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = True
    made = client.post(
        f"{BASE}/endpoints",
        json={"url": receiver.url, "event_types": ["message.sent"], "description": "CRM"},
        headers={"Idempotency-Key": "hook-1"},
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    created = made.get_json()
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    again = client.post(
        f"{BASE}/endpoints",
        json={"url": receiver.url, "event_types": ["message.sent"], "description": "CRM"},
        headers={"Idempotency-Key": "hook-1"},
    )
    assert again.get_json()["id"] == created["id"]  # one endpoint for a retried POST
    listed = client.get(f"{BASE}/endpoints").get_json()["items"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]

    path = f"{BASE}/endpoints/{created['id']}"
    read = client.get(path)
    stale = client.patch(path, json={"enabled": False}, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    changed = client.patch(
        path,
        json={"event_types": ["message.sent", "contact.erased"]},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert changed.status_code == 200
    assert changed.get_json()["event_types"] == ["contact.erased", "message.sent"]

    rotated = client.post(f"{path}/rotate-secret").get_json()["secret"]
    assert rotated != created["secret"]
    sent = client.post(f"{path}/test")
    assert sent.status_code == 202
    drain(app)
    [request] = receiver.requests
    assert request.headers["webhook-id"] == sent.get_json()["event_id"]
    assert verifies(created["secret"], request) and verifies(rotated, request)

    receiver.default = 500
    client.post(f"{path}/test")
    drain(app)
    deliveries = client.get(f"{path}/deliveries").get_json()["items"]
    assert [d["status"] for d in deliveries] == ["pending", "succeeded"]
    assert deliveries[0]["last_status_code"] == 500
    only_ok = client.get(f"{path}/deliveries?status=succeeded").get_json()["items"]
    assert [d["event_type"] for d in only_ok] == ["webhook.test"]
    receiver.default = 200
    retried = client.post(f"{BASE}/deliveries/{deliveries[0]['id']}/retry")
    assert retried.status_code == 202
    drain(app)
    assert [d["status"] for d in client.get(f"{path}/deliveries").get_json()["items"]] == [
        "succeeded",
        "succeeded",
    ]
    assert client.post(f"{BASE}/deliveries/{deliveries[0]['id']}/retry").status_code == 422

    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404

    # Another scope does not open these operations.
    reports_only = api(app, make_key(app, tenant, [Permission.VIEW_REPORTS]))
    assert reports_only.get(f"{BASE}/endpoints").status_code == 403
