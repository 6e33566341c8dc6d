"""Delivery: signed per Standard Webhooks (checked by an HMAC computed here and by the spec's
reference verifier), secret rotation, the retry schedule under frozen time, the final failed
state, disabling after failures with an email to the owners, the reconciler and retry."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core import db as core_db
from core.db import utcnow
from tests.conftest import drain
from tests.factories import Tenant, make_tenant
from tests.smtp_sink import SMTPSink
from tests.webhooks.receiver import Receiver, expected_signature, verifies
from webhooks import delivery, endpoints
from webhooks.events import emit
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint

START = datetime(2026, 12, 1, 9, 0, 0)


def _setup(app: Flask, url: str, types: list[str] | None = None) -> tuple[Tenant, int, str]:
    with app.app_context():
        tenant = make_tenant()
        created = endpoints.create_endpoint(
            tenant.account_id, tenant.user_id, url, types or ["import.finished"]
        )
        found = (tenant, created.endpoint.id, created.secret)
        core_db.session.remove()
    return found


def _emit(app: Flask, tenant: Tenant, data: dict[str, Any] | None = None) -> str:
    with app.app_context():
        public_id = emit(tenant.account_id, EventType.IMPORT_FINISHED, data or {"import_id": 7})
        core_db.session.commit()
        core_db.session.remove()
    assert public_id
    return public_id


def _delivery(app: Flask) -> WebhookDelivery:
    with app.app_context():
        found = core_db.session.scalars(select(WebhookDelivery)).one()
        core_db.session.expunge(found)
        core_db.session.remove()
    return found


def test_an_event_arrives_signed_as_the_spec_says(app: Flask, receiver: Receiver) -> None:
    tenant, _endpoint_id, secret = _setup(app, receiver.url)
    assert secret.startswith("whsec_")
    public_id = _emit(app, tenant, {"import_id": 7, "note": "Zoë ✓"})
    drain(app)

    [request] = receiver.requests
    assert request.headers["webhook-id"] == public_id
    assert request.headers["content-type"] == "application/json"
    stamp = int(request.headers["webhook-timestamp"])
    assert abs(stamp - int(datetime.now().timestamp())) < 60
    # The signature is HMAC-SHA256 of id.timestamp.body under the decoded secret, computed
    # here from the spec alone, over the exact bytes received.
    assert request.headers["webhook-signature"] == expected_signature(
        secret, public_id, request.headers["webhook-timestamp"], request.body
    )
    # ... and the specification's reference verifier accepts it, and refuses a changed body.
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "import.finished"
    assert payload["data"] == {"import_id": 7, "note": "Zoë ✓"}
    assert payload["timestamp"].endswith("Z")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.replace(b"7", b"8"), request.headers)
    assert _delivery(app).status == DeliveryStatus.SUCCEEDED


def test_a_rolled_back_change_sends_nothing(app: Flask, receiver: Receiver) -> None:
    tenant, _endpoint_id, _secret = _setup(app, receiver.url)
    with app.app_context():
        emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 1})
        core_db.session.rollback()
        core_db.session.remove()
    drain(app)
    assert receiver.requests == []


def test_an_event_nobody_subscribes_to_writes_nothing(app: Flask, receiver: Receiver) -> None:
    tenant, _endpoint_id, _secret = _setup(app, receiver.url, ["contact.erased"])
    with app.app_context():
        assert emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 1}) is None
        core_db.session.commit()
        assert core_db.session.scalars(select(WebhookDelivery)).all() == []


def test_rotation_signs_with_both_secrets_until_the_old_one_expires(
    app: Flask, receiver: Receiver
) -> None:
    tenant, endpoint_id, old = _setup(app, receiver.url)
    with app.app_context():
        new = endpoints.rotate_secret(tenant.account_id, tenant.user_id, endpoint_id)
        assert endpoints.current_secret(tenant.account_id, endpoint_id) == new
    assert new != old
    _emit(app, tenant)
    drain(app)
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verifies(old, request) and verifies(new, request)

    # After the grace period (24 h by default) only the new secret signs.
    with time_machine.travel(datetime.now() + timedelta(hours=25), tick=True):
        _emit(app, tenant)
        drain(app)
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert verifies(new, request) and not verifies(old, request)


def test_failures_follow_the_backoff_schedule_then_fail_for_good(
    app: Flask, receiver: Receiver
) -> None:
    receiver.default = 500
    tenant, endpoint_id, _secret = _setup(app, receiver.url)
    with time_machine.travel(START, tick=False):
        _emit(app, tenant)
    delivery_id = _delivery(app).id
    now = START
    for attempt, wait in enumerate(delivery.RETRY_SCHEDULE, start=1):
        with time_machine.travel(now, tick=False), app.app_context():
            assert delivery.attempt(delivery_id) == DeliveryStatus.PENDING
            row = core_db.session.get(WebhookDelivery, delivery_id)
            assert row is not None and row.attempts == attempt
            assert row.last_status_code == 500
            assert row.next_attempt_at is not None
            waited = (row.next_attempt_at - now).total_seconds()
            assert wait * 0.9 <= waited <= wait * 1.1, (attempt, waited)
            # Not due before its time: an early queue message does nothing.
            assert delivery.attempt(delivery_id) is None
            now = row.next_attempt_at
            core_db.session.remove()
    with time_machine.travel(now, tick=False), app.app_context():
        assert delivery.attempt(delivery_id) == DeliveryStatus.FAILED
        row = core_db.session.get(WebhookDelivery, delivery_id)
        assert row is not None
        assert row.attempts == delivery.MAX_ATTEMPTS == 10
        assert row.next_attempt_at is None and row.finished_at == now
        assert "answered 500" in row.last_error
        endpoint = core_db.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and endpoint.enabled  # 10 < 50 failures, < 5 days
    # Three days in all, like the spec's example schedule.
    assert timedelta(days=2.7) < now - START < timedelta(days=3.5)
    assert len(receiver.requests) == 10


def test_repeated_failures_disable_the_endpoint_and_email_the_owners(
    app_factory: Any, receiver: Receiver, smtp_sink: SMTPSink
) -> None:
    app = app_factory(WEBHOOKS_ALLOW_PRIVATE_TARGETS=True, WEBHOOKS_DISABLE_AFTER_FAILURES=3)
    receiver.default = 503
    tenant, endpoint_id, _secret = _setup(app, receiver.url)
    for _ in range(3):
        _emit(app, tenant)
    drain(app)  # each first attempt fails; the retries wait 5 s
    with app.app_context():
        endpoint = core_db.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        assert not endpoint.enabled
        assert endpoint.disabled_reason == "3 delivery attempts in a row failed."
    [mail] = smtp_sink.wait_for(1)
    assert mail.unicode_recipients == ["owner@shop.example"]
    text = mail.message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert receiver.url in text and "3 delivery attempts in a row failed." in text
    assert f"/settings/webhooks/{endpoint_id}" in text
    # A disabled endpoint gets no new events, and its waiting retries end as failed.
    with app.app_context():
        assert emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 9}) is None
        pending = list(core_db.session.scalars(select(WebhookDelivery.id)))
        core_db.session.remove()
    with time_machine.travel(datetime.now() + timedelta(minutes=1)), app.app_context():
        for delivery_id in pending:
            delivery.attempt(delivery_id)
        rows = list(core_db.session.scalars(select(WebhookDelivery)))
        assert {r.status for r in rows} == {DeliveryStatus.FAILED}
        assert "the endpoint is disabled" in {r.last_error for r in rows}
    assert len(receiver.requests) == 3


def test_failing_for_days_disables_the_endpoint(app: Flask, receiver: Receiver) -> None:
    receiver.default = 500
    tenant, endpoint_id, _secret = _setup(app, receiver.url)
    with time_machine.travel(START, tick=False):
        _emit(app, tenant)
        drain(app)
    with time_machine.travel(START + timedelta(days=5, minutes=1), tick=False):
        _emit(app, tenant)
        with app.app_context():
            for delivery_id in core_db.session.scalars(select(WebhookDelivery.id)):
                delivery.attempt(delivery_id)
            endpoint = core_db.session.get(WebhookEndpoint, endpoint_id)
            assert endpoint is not None and not endpoint.enabled
            assert endpoint.disabled_reason == "Every delivery attempt failed for 5 days."


def test_410_gone_disables_at_once_and_redirects_are_not_followed(
    app: Flask, receiver: Receiver
) -> None:
    tenant, endpoint_id, _secret = _setup(app, receiver.url)
    receiver.answers = [302, 410]
    _emit(app, tenant)
    drain(app)
    row = _delivery(app)
    assert row.status == DeliveryStatus.PENDING and row.last_status_code == 302
    assert len(receiver.requests) == 1  # the Location was not followed
    with time_machine.travel(datetime.now() + timedelta(seconds=10)), app.app_context():
        delivery.attempt(row.id)
        endpoint = core_db.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and not endpoint.enabled
        assert "410" in endpoint.disabled_reason


def test_the_reconciler_sends_what_the_queue_lost_and_a_dead_workers_attempt(
    app: Flask, receiver: Receiver
) -> None:
    tenant, _endpoint_id, _secret = _setup(app, receiver.url)
    with app.app_context():
        emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 1})
        # The broker was down at commit: the queue never heard of it.
        core_db.session.info.pop("pending_tasks", None)
        core_db.session.commit()
        emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 2})
        core_db.session.info.pop("pending_tasks", None)
        core_db.session.commit()
        second = core_db.session.scalars(
            select(WebhookDelivery).order_by(WebhookDelivery.id.desc())
        ).first()
        assert second is not None
        # A worker claimed the second one and died.
        second.status = DeliveryStatus.SENDING
        second.last_attempt_at = utcnow() - timedelta(minutes=5)
        core_db.session.commit()
        core_db.session.remove()
    drain(app)
    assert receiver.requests == []
    with app.app_context():
        assert delivery.reconcile(utcnow()) == 2
    drain(app)
    assert sorted(r.json["data"]["import_id"] for r in receiver.requests) == [1, 2]
    with app.app_context():
        assert delivery.reconcile(utcnow()) == 0


def test_retry_sends_a_failed_delivery_again(app: Flask, receiver: Receiver) -> None:
    tenant, _endpoint_id, _secret = _setup(app, receiver.url)
    with app.app_context():
        row_id = None
        emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 1})
        core_db.session.commit()
        row = core_db.session.scalars(select(WebhookDelivery)).one()
        row_id = row.id
        row.status = DeliveryStatus.FAILED  # as after its last attempt
        core_db.session.info.pop("pending_tasks", None)
        core_db.session.commit()
        core_db.session.remove()
    drain(app)
    assert receiver.requests == []
    with app.app_context():
        endpoints.retry_delivery(tenant.account_id, row_id)
    drain(app)
    assert len(receiver.requests) == 1
    assert _delivery(app).status == DeliveryStatus.SUCCEEDED
    # Another account cannot retry it.
    with app.app_context():
        other = make_tenant("other@shop.example")
        with pytest.raises(LookupError):
            endpoints.retry_delivery(other.account_id, row_id)


def test_the_body_is_compact_json_and_sent_as_signed(app: Flask, receiver: Receiver) -> None:
    tenant, _endpoint_id, secret = _setup(app, receiver.url)
    _emit(app, tenant, {"b": 1, "a": "ü"})
    drain(app)
    [request] = receiver.requests
    assert b" " not in request.body.replace(b"\xc3\xbc", b"")
    assert json.loads(request.body)["data"] == {"a": "ü", "b": 1}
    assert verifies(secret, request)
