"""Emission stays off the send path's cost: with no endpoint listening for message events, a
campaign's send asks the webhook tables at most once (the cached subscription check), however
many recipients it has; with one listening, the work grows per claim, not by a query per
message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event

from campaigns import services as campaigns
from core import db as core_db
from tests.conftest import drain
from tests.factories import make_campaign, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink
from tests.webhooks.receiver import Receiver
from webhooks import endpoints


@contextmanager
def _statements(app: Flask) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = app.extensions["db_engine"]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _send(app: Flask, count: int, types: list[str], url: str) -> list[str]:
    with app.app_context():
        tenant = make_tenant(f"owner{count}@shop.example")
        endpoints.create_endpoint(tenant.account_id, None, url, types)
        addresses = [f"person{n}@example.org" for n in range(count)]
        list_id = make_list_with_contacts(tenant, addresses)
        campaign_id = make_campaign(tenant, list_id)
        core_db.session.remove()
    drain(app)
    app.extensions[  # a fresh process: nothing cached
        "webhook_subscriptions"
    ].clear()
    with _statements(app) as seen:
        with app.app_context():
            campaigns.start(tenant.account_id, campaign_id)
            core_db.session.remove()
        drain(app)
    return seen


def _webhook_statements(seen: list[str]) -> list[str]:
    return [s for s in seen if "webhook_" in s]


def test_nobody_listening_costs_one_cached_check_per_send(
    app: Flask, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    app.config["SEND_BATCH_SIZE"] = 10
    small = _webhook_statements(_send(app, 10, ["contact.erased"], receiver.url))
    smtp_sink.clear()
    large = _webhook_statements(_send(app, 40, ["contact.erased"], receiver.url))
    assert len(small) == len(large) == 1, large  # the cached "who listens" read
    assert "webhook_endpoints" in large[0]


def test_listening_to_sent_messages_costs_per_claim_not_per_message(
    app: Flask, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    app.config["SEND_BATCH_SIZE"] = 20
    seen = _send(app, 40, ["message.sent"], receiver.url)
    # (The deliveries themselves, run by the same drain, read their endpoint by id.)
    reads_of_endpoints = [s for s in seen if "webhook_endpoints.account_id = " in s]
    # The cached check once, then the endpoint rows once per claim (2 claims of 20, a third
    # that finds nothing at most): not one per message.
    assert 2 <= len(reads_of_endpoints) <= 4, reads_of_endpoints
    inserts = [s for s in seen if s.startswith("INSERT INTO webhook_")]
    if app.extensions["db_engine"].dialect.name == "postgresql":
        assert len(inserts) <= 2 * 3  # batched per claim: events, then deliveries
    else:  # SQLite's driver inserts row by row; still only the rows themselves
        assert len(inserts) <= 2 * 40
    drain(app)
    assert len(receiver.of_type("message.sent")) == 40
