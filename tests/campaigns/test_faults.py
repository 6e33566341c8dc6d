"""Fault scenarios with real processes: a ``dramatiq core.worker`` killed with SIGKILL
mid-campaign and restarted, and Redis restarted without persistence mid-campaign. The SMTP sink
counts what arrived: every recipient exactly once, except rows in the documented window
(``interrupted``: the worker died between SMTP and the mark), which are never resent.

These use a private redis-server on a free port, never the shared one. Larger runs:
``bench/fault_kill.py`` and ``bench/fault_redis.py``.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from campaigns import services
from campaigns.models import Campaign, Message
from campaigns.sending import delivery, reconciler
from subscribers.models import Contact
from tests import services_available
from tests.campaigns.fault_harness import (
    OwnRedis,
    SchedulerProcess,
    Worker,
    outcome,
    wait_for_status,
    worker_env_like_tests,
)
from tests.campaigns.helpers import campaign_with
from tests.smtp_sink import SMTPSink

# bench/fault_bench.py runs these with more recipients.
RECIPIENTS = int(os.environ.get("FAULT_RECIPIENTS", "300"))


def run_fault_scenario(
    app_factory: Any,
    database_url: str,
    smtp_sink: SMTPSink,
    tmp_path: Path,
    fault: str,
    recipients: int = RECIPIENTS,
    rate: float = float(os.environ.get("FAULT_RATE", "120")),
) -> Any:
    """Send a campaign through a real worker, inject ``fault`` ("kill" or "redis") when a third
    has arrived, recover, and return the outcome."""
    own = OwnRedis().start()
    namespace = f"fault-{secrets.token_hex(3)}"
    timing = {
        "SEND_BATCH_SIZE": 20,
        "SEND_CLAIM_TIMEOUT": 10,  # a live worker gives its claim back after 5 s
        "SEND_STALL_SECONDS": 2,
        "SMTP_MAX_PER_SECOND": rate,
        "SEND_CONNECTIONS": 2,
    }
    app = app_factory(REDIS_URL=own.url, REDIS_NAMESPACE=namespace, **timing)
    env = worker_env_like_tests(database_url, own.url, namespace, smtp_sink.url, tmp_path, **timing)
    log = tmp_path / "worker.log"
    worker = Worker(env, log).start()
    addresses = [f"r{n:05d}@example.org" for n in range(recipients)]
    try:
        with app.app_context():
            from core import db

            setup = campaign_with(addresses)
            started = time.monotonic()
            services.start(setup.tenant.account_id, setup.campaign_id)
            # Not a multiple of the batch size: the fault lands inside a batch.
            smtp_sink.wait_for(recipients // 3 + 7, timeout=90)
            if fault == "kill":
                worker.kill()
                worker = Worker(env, log).start()
            else:
                own.restart()
            deadline = time.monotonic() + 180
            status = ""
            while time.monotonic() < deadline:
                reconciler.reconcile()
                db.session.expire_all()
                status = str(
                    db.session.scalar(
                        select(Campaign.status).where(Campaign.id == setup.campaign_id)
                    )
                )
                if status == "sent":
                    break
                time.sleep(0.5)
            seconds = time.monotonic() - started
            assert status == "sent", (
                f"campaign {status} after {seconds:.0f}s:\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.5)  # let the sink finish its last DATA
            interrupted_rows = set(
                db.session.scalars(
                    select(Contact.email)
                    .join(Message, Message.contact_id == Contact.id)
                    .where(Message.error.like("interrupted%"))
                )
            )
            received = [r.recipients[0] for r in smtp_sink.messages]
            result = outcome(addresses, received, len(interrupted_rows), seconds)
            # Missing ones can only be rows of the documented window.
            assert set(result.missing) <= interrupted_rows
            return result
    finally:
        worker.stop()
        own.kill()


@pytest.mark.redis
def test_worker_killed_with_sigkill_mid_campaign(
    app_factory: Any, database_url: str, smtp_sink: SMTPSink, tmp_path: Path, capsys: Any
) -> None:
    services_available.require("redis")
    result = run_fault_scenario(app_factory, database_url, smtp_sink, tmp_path, "kill")
    with capsys.disabled():
        print("\n" + result.report("SIGKILL mid-campaign"))
    assert result.duplicates == 0
    assert result.received + len(result.missing) == RECIPIENTS
    # At most the window of each claim in flight: one claim per worker thread (4).
    assert result.interrupted <= 4 * delivery.UNCERTAIN_PER_CLAIM


@pytest.mark.redis
def test_redis_restarted_without_persistence_mid_campaign(
    app_factory: Any, database_url: str, smtp_sink: SMTPSink, tmp_path: Path, capsys: Any
) -> None:
    services_available.require("redis")
    result = run_fault_scenario(app_factory, database_url, smtp_sink, tmp_path, "redis")
    with capsys.disabled():
        print("\n" + result.report("Redis restarted mid-campaign"))
    assert result.duplicates == 0
    assert result.missing == []


#: A campaign of a few thousand recipients for the production-defaults kill.
LARGE = int(os.environ.get("FAULT_LARGE_RECIPIENTS", "2000"))


@pytest.mark.redis
def test_sigkill_with_production_defaults_resumes_within_a_minute(
    app_factory: Any, database_url: str, smtp_sink: SMTPSink, tmp_path: Path, capsys: Any
) -> None:
    """No timing overrides: the README's production processes (``dramatiq core.worker
    --processes 2 --threads 8`` and the scheduler process ``python -m core.scheduler``), the
    default lease and reconciler interval. SIGKILL at about half, restart the worker at once:
    sending resumes within 60 s without the test calling the reconciler."""
    services_available.require("redis")
    own = OwnRedis().start()
    namespace = f"prodkill-{secrets.token_hex(3)}"
    app = app_factory(REDIS_URL=own.url, REDIS_NAMESPACE=namespace)
    env = worker_env_like_tests(database_url, own.url, namespace, smtp_sink.url, tmp_path)
    log = tmp_path / "worker.log"
    worker = Worker(env, log, threads=8, processes=2).start()
    clock = SchedulerProcess(env, tmp_path / "scheduler.log").start()
    addresses = [f"p{n:05d}@example.org" for n in range(LARGE)]
    try:
        with app.app_context():
            from core import db

            setup = campaign_with(addresses)
            started = time.monotonic()
            services.start(setup.tenant.account_id, setup.campaign_id)
            smtp_sink.wait_for(LARGE // 2, timeout=120)
            worker.kill()
            killed_at = time.monotonic()
            at_kill = len(smtp_sink.messages)
            worker = Worker(env, log, threads=8, processes=2).start()
            resumed = None
            while time.monotonic() - killed_at < 90:
                if len(smtp_sink.messages) > at_kill:
                    resumed = time.monotonic() - killed_at
                    break
                time.sleep(0.1)
            with capsys.disabled():
                print(f"\nSIGKILL at {at_kill}/{LARGE} with production defaults: ", end="")
                print("sending resumed after " + (f"{resumed:.1f}s" if resumed else "no resume"))
            assert resumed is not None and resumed < 60, (
                f"no resume within 60 s:\n{log.read_text()[-3000:]}"
            )
            status = wait_for_status(setup.campaign_id, "sent", 180)
            seconds = time.monotonic() - started
            assert status == "sent", f"campaign {status}:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)  # let the sink finish its last message
            interrupted_rows = set(
                db.session.scalars(
                    select(Contact.email)
                    .join(Message, Message.contact_id == Contact.id)
                    .where(
                        Message.campaign_id == setup.campaign_id,
                        Message.error.like("interrupted%"),
                    )
                )
            )
            received = [r.recipients[0] for r in smtp_sink.messages]
            result = outcome(addresses, received, len(interrupted_rows), seconds)
            with capsys.disabled():
                print(result.report("SIGKILL, production defaults"))
            # Duplicates: none (at most once). Missing: only rows of the documented window,
            # at most UNCERTAIN_PER_CLAIM per claim in flight (one per send chain: 2).
            assert result.duplicates == 0
            assert set(result.missing) <= interrupted_rows
            assert result.interrupted <= 2 * delivery.UNCERTAIN_PER_CLAIM
    finally:
        worker.stop()
        clock.stop()
        own.kill()
