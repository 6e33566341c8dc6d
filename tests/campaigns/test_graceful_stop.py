"""A graceful stop (SIGTERM) of a real ``dramatiq core.worker`` mid-campaign gives its claimed
but unsent rows back at once (issue 14): a routine deploy loses no recipient, fails none as
``interrupted`` and delays nothing (no wait for SEND_CLAIM_TIMEOUT, no reconciler)."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from campaigns import services
from campaigns.models import Message
from core import db
from tests import services_available
from tests.campaigns.fault_harness import (
    OwnRedis,
    Worker,
    wait_for_status,
    worker_env_like_tests,
)
from tests.campaigns.helpers import campaign_with
from tests.smtp_sink import SMTPSink

PEOPLE = [
    "zoë.ñúñez.{}@example.org",
    "李小龍.{}@example.cn",
    "ольга.{}@example.ru",
    "ada.{}@example.net",
]
ADDRESSES = [PEOPLE[n % 4].format(n) for n in range(160)]


def _statuses(campaign_id: int) -> dict[str, int]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Message.status, func.count())
        .where(Message.campaign_id == campaign_id)
        .group_by(Message.status)
    ).all()
    db.session.rollback()
    return {str(status): int(count) for status, count in rows}


@pytest.mark.redis
def test_sigterm_mid_campaign_gives_the_claims_back_at_once(
    app_factory: Any, database_url: str, smtp_sink: SMTPSink, tmp_path: Path, capsys: Any
) -> None:
    services_available.require("redis")
    own = OwnRedis().start()
    namespace = f"sigterm-{secrets.token_hex(3)}"
    timing = {
        "SEND_BATCH_SIZE": 20,
        "SEND_CLAIM_TIMEOUT": 600,  # the reconciler would not touch a claim during this test
        "SMTP_MAX_PER_SECOND": 10,  # slow: the stop lands inside claims, between rate slots
        "SEND_CONNECTIONS": 2,
    }
    app = app_factory(REDIS_URL=own.url, REDIS_NAMESPACE=namespace, **timing)
    env = worker_env_like_tests(database_url, own.url, namespace, smtp_sink.url, tmp_path, **timing)
    log = tmp_path / "worker.log"
    worker = Worker(env, log).start()
    try:
        with app.app_context():
            setup = campaign_with(ADDRESSES)
            services.start(setup.tenant.account_id, setup.campaign_id)
            smtp_sink.wait_for(len(ADDRESSES) // 3, timeout=90)

            code, seconds = worker.terminate()
            with capsys.disabled():
                print(f"\nSIGTERM mid-campaign: the worker exited in {seconds:.1f}s")
            assert code == 0, log.read_text()[-3000:]
            # Today's deploys give a worker ~10 s before SIGKILL; about 12 s of sending is left
            # here, so a worker that finished its jobs first would be too slow (and killed).
            assert seconds < 6, f"the stop took {seconds:.1f}s"
            before_restart = _statuses(setup.campaign_id)
            # Nothing is left claimed by the stopped worker, and some work is left to do.
            assert "claimed" not in before_restart, before_restart
            assert before_restart.get("pending", 0) > 0, before_restart
            arrived = len(smtp_sink.messages)
            assert arrived < len(ADDRESSES)

            # The next deploy's worker carries on from the queue alone (no reconcile call).
            worker = Worker(env, log).start()
            status = wait_for_status(setup.campaign_id, "sent", 60)
            assert status == "sent", f"campaign {status}:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)  # let the sink finish its last DATA
            assert _statuses(setup.campaign_id) == {"sent": len(ADDRESSES)}
            interrupted = db.session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.campaign_id == setup.campaign_id, Message.error.like("interr%"))
            )
            assert interrupted == 0
    finally:
        worker.stop()
        own.kill()
    received = Counter(r.recipients[0] for r in smtp_sink.messages)
    assert sorted(received) == sorted(ADDRESSES)  # every recipient arrived ...
    assert set(received.values()) == {1}  # ... exactly once
