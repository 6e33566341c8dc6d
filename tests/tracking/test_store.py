"""The event store: idempotent batches, aggregates, retention, the engine hook, buffer faults."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from accounts import services as accounts
from core import db as core_db
from core.db import utcnow
from privacy.policy import EngineSignal
from tests.conftest import drain
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import BROWSER_UA, event_count, events, send_campaign
from tracking import analytics, buffer, services
from tracking.hits import Hit

RECIPIENTS = ["ada@example.org", "bob@example.net", "cy@example.org"]


def _later(minutes: int = 5) -> Any:
    return time_machine.travel(utcnow() + timedelta(minutes=minutes), tick=True)


def test_a_batch_ingested_twice_is_stored_and_counted_once(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=False)
    hits = [
        Hit("open", sent.campaign_id, None, None, None, "desktop"),
        Hit("open", sent.campaign_id, None, None, None, "apple-mpp"),
    ]
    with app.app_context():
        assert services.ingest(hits) == 2
        assert services.ingest(hits) == 0
        stats = analytics.campaign_stats(sent.campaign_id)
        core_db.session.remove()
    assert (stats.opens, stats.machine_opens) == (1, 1)
    assert event_count(app) == 2


def test_a_hit_the_store_refuses_does_not_block_the_others(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=False)
    good = [Hit("open", sent.campaign_id, None, None, None, "desktop") for _ in range(5)]
    refused = Hit("click", sent.campaign_id, None, 987_654, None, "desktop")  # no such link
    with app.app_context():
        assert services.ingest_isolating([*good[:3], refused, *good[3:]]) == 5
        core_db.session.remove()
    assert event_count(app) == 5


def test_unique_figures_count_people_once(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    client = app.test_client(use_cookies=False)
    with _later():
        for address in RECIPIENTS[:2]:
            urls = sent.urls[address]
            assert urls.beacon is not None
            for _ in range(3):
                client.get(path_of(urls.beacon), headers={"User-Agent": BROWSER_UA})
            client.get(path_of(urls.clicks[0]), headers={"User-Agent": BROWSER_UA})
            drain(app)  # several batches: uniques hold across them
            client.get(path_of(urls.clicks[0]), headers={"User-Agent": BROWSER_UA})
        drain(app)
    with app.app_context():
        report = analytics.campaign_report(sent.tenant.account_id, sent.campaign_id)
        core_db.session.remove()
    assert (report.stats.opens, report.stats.unique_opens) == (6, 2)
    assert (report.stats.clicks, report.stats.unique_clicks) == (4, 2)
    assert report.links[0].clicks == 4 and report.links[0].unique_clicks == 2
    domains = {d.domain: d for d in report.domains}
    assert domains["example.org"].sent == 2 and domains["example.org"].unique_opens == 1
    assert domains["example.net"].opens == 3
    assert sum(p.opens for p in report.series) == 6


def test_retention_deletes_old_events_and_keeps_the_figures(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    with app.app_context():
        accounts.update_privacy_settings(sent.tenant.account_id, True, "truncate", 30)
        core_db.session.remove()
    client = app.test_client(use_cookies=False)
    with _later():
        for address in RECIPIENTS:
            client.get(path_of(sent.urls[address].clicks[1]), headers={"User-Agent": BROWSER_UA})
        drain(app)
    with app.app_context():
        before = analytics.campaign_stats(sent.campaign_id)
        now = utcnow()
        assert services.apply_event_retention(now + timedelta(days=29)) == 0
        assert event_count(app) == 3
        # Twice at once, then once more: the same rows go once, nothing else changes.
        results: list[int] = []

        def run() -> None:
            with app.app_context():
                results.append(services.apply_event_retention(now + timedelta(days=31)))
                core_db.session.remove()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(results) == 3
        assert services.apply_event_retention(now + timedelta(days=31)) == 0
        after = analytics.campaign_stats(sent.campaign_id)
        core_db.session.remove()
    assert event_count(app) == 0
    assert after == before and after.clicks == 3 and after.unique_clicks == 3


def test_the_engine_receives_only_what_the_privacy_layer_allows(
    app: Flask, smtp_sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privacy import engine_gate

    received: list[EngineSignal] = []

    def consumer(signals: Sequence[EngineSignal]) -> None:
        received.extend(signals)

    # The ingest calls the engine's gate (no hook registered into tracking).
    monkeypatch.setattr(engine_gate, "record_engagements_soon", consumer)
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    with app.app_context():
        from subscribers.models import Contact

        restricted = core_db.session.query(Contact).filter_by(email=RECIPIENTS[2]).one()
        restricted.restricted_at = utcnow()
        core_db.session.commit()
        core_db.session.remove()
    client = app.test_client(use_cookies=False)
    with _later():
        for address in RECIPIENTS:
            beacon = sent.urls[address].beacon
            assert beacon is not None
            client.get(path_of(beacon), headers={"User-Agent": BROWSER_UA})
        # Machines never reach the engine.
        beacon = sent.urls[RECIPIENTS[0]].beacon
        assert beacon is not None
        client.get(path_of(beacon), headers={"User-Agent": "Mozilla/5.0"})
        drain(app)
    with app.app_context():
        from campaigns.models import Message
        from subscribers.models import Contact

        expected = set(
            core_db.session.scalars(
                select(Message.id)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Contact.email.in_(RECIPIENTS[:2]))
            )
        )
        core_db.session.remove()
    assert {s.message_id for s in received} == expected
    assert {s.kind for s in received} == {"open"}
    assert len(received) == 2
    assert all(s.hour.minute == 0 and s.hour.second == 0 for s in received)
    # An account that leaves the engine sends nothing more.
    received.clear()
    with app.app_context():
        accounts.set_engine_participation(sent.tenant.account_id, False)
        core_db.session.remove()
    with _later(10):
        beacon = sent.urls[RECIPIENTS[1]].beacon
        assert beacon is not None
        client.get(path_of(beacon), headers={"User-Agent": BROWSER_UA})
        drain(app)
    assert received == []


def test_graceful_exit_ingests_and_a_dead_database_spools_for_later(
    app_factory: Any, smtp_sink: SMTPSink, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    app = app_factory(TRACKING_SPOOL_DIR=str(spool))
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=False)
    client = app.test_client(use_cookies=False)
    click = path_of(sent.urls[RECIPIENTS[0]].clicks[0])
    client.get(click)
    buffer.close(app)  # what the process does at a graceful exit
    assert event_count(app) == 1

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = app_factory(
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{port}/none", TRACKING_SPOOL_DIR=str(spool)
    )
    down_client = down.test_client(use_cookies=False)
    for _ in range(4):
        assert down_client.get(click).status_code == 302
    buffer.close(down)  # cannot ingest: spooled to disk
    assert list(spool.glob("hits-*.jsonl"))

    again = app_factory(TRACKING_SPOOL_DIR=str(spool))
    again.test_client(use_cookies=False).get(click)  # a new hit starts the ingest, which replays
    drain(again)
    assert event_count(again) == 6
    assert not list(spool.glob("hits-*.jsonl"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedis:
    """A private redis-server for fault tests (never the shared one), with an append-only file."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        from tests import services_available

        services_available.require("redis")
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.mark.parametrize("answer_after_flush", ["false", "true"])
def test_redis_stopped_during_hits_then_started_loses_nothing(
    app_factory: Any,
    smtp_sink: SMTPSink,
    own_redis: OwnRedis,
    tmp_path: Path,
    answer_after_flush: str,
) -> None:
    inprocess = app_factory()
    sent = send_campaign(inprocess, smtp_sink, RECIPIENTS, individual=True)
    app = app_factory(
        REDIS_URL=own_redis.url,
        REDIS_NAMESPACE=f"envoy-fault-{os.getpid()}",
        TRACKING_SPOOL_DIR=str(tmp_path / "spool"),
        TRACKING_ANSWER_AFTER_FLUSH=answer_after_flush,
    )
    client = app.test_client(use_cookies=False)
    paths = []
    for address in RECIPIENTS:
        urls = sent.urls[address]
        assert urls.beacon is not None
        paths += [path_of(urls.beacon), *(path_of(c) for c in urls.clicks)]
    answered = 0
    with _later():
        for i in range(60):
            if i == 20:
                own_redis.kill()
            if i == 40:
                own_redis.start()
            response = client.get(paths[i % len(paths)], headers={"User-Agent": BROWSER_UA})
            assert response.status_code in (200, 302)
            answered += 1
        buffer.flush(app)  # what the spool thread does within half a second of Redis returning
        drain(app)
    assert answered == 60
    assert event_count(app) == 60
    assert {e.message_id is not None for e in events(app)} == {True}
    assert not list((tmp_path / "spool").glob("hits-*.jsonl"))
