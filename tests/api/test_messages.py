"""POST /api/v1/messages and GET /api/v1/messages/<id>: a transactional message sent through
the API, received by the real SMTP sink; refusals as problem details; Idempotency-Key; scopes
and accounts kept apart."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from sqlalchemy import select

from campaigns import senders
from core import db
from core.permissions import Permission
from privacy import services as privacy
from subscribers import services as subscribers
from subscribers.models import Contact
from tests.api.conftest import api, make_key
from tests.conftest import drain
from tests.factories import make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink

BODY: dict[str, Any] = {
    "to": "josé@ejemplo.es",
    "to_name": "José Ñúñez",
    "from_email": "orders@shop.example",
    "from_name": "Shop",
    "subject": "Receipt {{ data.order }}",
    "html": "<p>Hola {{ contact.first_name }}, order {{ data.order }}</p>",
    "data": {"order": "A-17"},
}


def _setup(app: Flask, email: str = "owner@shop.example", name: str = "Shop") -> Any:
    with app.app_context():
        tenant = make_tenant(email, name)
        senders.add_sender(tenant.account_id, "orders@shop.example", "Shop", verified=True)
    return tenant


def test_a_message_is_accepted_sent_and_read_back(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _setup(app)
    client = api(app, make_key(app, tenant, [Permission.SEND_CAMPAIGNS]))
    answer = client.post("/api/v1/messages", json=BODY)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    accepted = answer.get_json()
    assert accepted["status"] == "queued" and accepted["reason"] is None
    drain(app)
    received = smtp_sink.wait_for(1)[0]
    assert received.unicode_recipients == ["josé@ejemplo.es"]
    html = received.utf8_message.get_body(("html",)).get_content()
    assert "Hola José, order A-17" in html
    state = client.get(f"/api/v1/messages/{accepted['id']}")
    assert state.status_code == 200
    body = state.get_json()
    assert (body["status"], body["attempts"]) == ("sent", 1)
    assert body["sent_at"].endswith("Z")
    assert state.headers["ETag"]


def test_an_idempotent_retry_sends_once(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _setup(app)
    client = api(app, make_key(app, tenant, [Permission.SEND_CAMPAIGNS]))
    headers = {"Idempotency-Key": "order-A-17"}
    first = client.post("/api/v1/messages", json=BODY, headers=headers)
    again = client.post("/api/v1/messages", json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    drain(app)
    smtp_sink.wait_for(1)
    time.sleep(0.2)
    assert len(smtp_sink.messages) == 1
    other = client.post(
        "/api/v1/messages", json={**BODY, "to": "other@example.org"}, headers=headers
    )
    assert other.status_code == 422


def test_refusals_are_problem_details_with_the_reason(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant = _setup(app)
    with app.app_context():
        make_list_with_contacts(tenant, ["restricted@example.org", "unsub@example.org"])
        contacts = {c.email: c.id for c in db.session.scalars(select(Contact))}
        privacy.restrict_contact(
            tenant.account_id, contacts["restricted@example.org"], tenant.user_id
        )
        subscribers.unsubscribe_contact(
            tenant.account_id, contacts["unsub@example.org"], None, "preferences"
        )
    client = api(app, make_key(app, tenant, [Permission.SEND_CAMPAIGNS]))
    refused = client.post("/api/v1/messages", json={**BODY, "to": "restricted@example.org"})
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert "restricted" in problem["detail"]
    assert problem["errors"][0]["field"] == "to"
    tracked = client.post("/api/v1/messages", json={**BODY, "track_opens": True})
    assert tracked.status_code == 422 and "not tracked" in tracked.get_json()["detail"]
    # A marketing unsubscribe does not stop a receipt.
    receipt = client.post("/api/v1/messages", json={**BODY, "to": "unsub@example.org"})
    assert receipt.status_code == 202
    drain(app)
    assert [r.recipients[0] for r in smtp_sink.wait_for(1)] == ["unsub@example.org"]


def test_scopes_and_accounts_are_enforced(app: Flask) -> None:
    tenant = _setup(app)
    other = _setup(app, "owner@other.example", "Other")
    mine = api(app, make_key(app, tenant, [Permission.SEND_CAMPAIGNS]))
    sent = mine.post("/api/v1/messages", json=BODY).get_json()["id"]
    reports_only = api(app, make_key(app, tenant, [Permission.VIEW_REPORTS]))
    assert reports_only.post("/api/v1/messages", json=BODY).status_code == 403
    assert reports_only.get(f"/api/v1/messages/{sent}").status_code == 403
    theirs = api(app, make_key(app, other, [Permission.SEND_CAMPAIGNS]))
    assert theirs.get(f"/api/v1/messages/{sent}").status_code == 404
    assert api(app, None).get(f"/api/v1/messages/{sent}").status_code == 401


def test_the_operations_are_in_the_document(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    post = document["paths"]["/api/v1/messages"]["post"]
    assert "202" in post["responses"]
    assert "get" in document["paths"]["/api/v1/messages/{message_id}"]
