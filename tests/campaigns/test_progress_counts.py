"""Kept message counts (issue 17): a large campaign's progress, page, dashboard and list read
the counts the reconciler keeps instead of counting a million messages per request; they
equal the live counts once it is over, and a cancelled campaign's only after its last claim's
lease (a claim in flight may still mark rows)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import time_machine
from sqlalchemy import select, update

from campaigns import services
from campaigns.models import Campaign, CampaignMessageCount, Message
from campaigns.sending import reconciler
from core import db as core_db
from core.db import utcnow
from tests.campaigns.helpers import campaign_with
from tests.conftest import drain
from tests.factories import login

ADDRESSES = [f"reader{n}@example.org" for n in range(6)] + ["zoë@exämple.org"]


def _progress(client: Any, campaign_id: int) -> dict[str, Any]:
    response = client.get(f"/campaigns/{campaign_id}/progress.json")
    assert response.status_code == 200
    answer: dict[str, Any] = response.get_json()
    return answer


def test_a_large_campaign_reads_its_kept_counts_and_they_equal_the_live_ones(
    app_factory: Any,
) -> None:
    # "Large" from 5 messages here: the production default is 50,000.
    app = app_factory(PROGRESS_SNAPSHOT_FROM=5)
    client = app.test_client()
    with app.app_context():
        setup = campaign_with(ADDRESSES)
        services.start(setup.tenant.account_id, setup.campaign_id)
        kept = core_db.session.get(CampaignMessageCount, setup.campaign_id)
        assert kept is not None
        assert (kept.total, kept.pending, kept.sent) == (7, 7, 0)
    login(client, setup.tenant.email)
    before = _progress(client, setup.campaign_id)
    assert (before["total"], before["pending"], before["sent"]) == (7, 7, 0)

    drain(app)
    # Over, but counted before its end: the page counts live until the reconciler runs.
    live = _progress(client, setup.campaign_id)
    assert (live["status"], live["total"], live["sent"], live["pending"]) == ("sent", 7, 7, 0)
    with app.app_context():
        reconciler.reconcile()
        kept = core_db.session.get(CampaignMessageCount, setup.campaign_id)
        assert kept is not None
        assert (kept.total, kept.pending, kept.sent, kept.failed) == (7, 0, 7, 0)
        # Read from the kept row from now on: a row changed behind its back does not move it.
        core_db.session.execute(
            update(Message).where(Message.campaign_id == setup.campaign_id).values(status="failed")
        )
        core_db.session.commit()
    assert _progress(client, setup.campaign_id) == live


def test_a_small_campaign_counts_live_and_is_kept_once_over(app_factory: Any) -> None:
    app = app_factory()  # PROGRESS_SNAPSHOT_FROM 50,000: every test campaign is small
    client = app.test_client()
    with app.app_context():
        setup = campaign_with(ADDRESSES[:3])
        services.start(setup.tenant.account_id, setup.campaign_id)
        assert core_db.session.get(CampaignMessageCount, setup.campaign_id) is None
    login(client, setup.tenant.email)
    assert _progress(client, setup.campaign_id)["pending"] == 3
    drain(app)
    with app.app_context():
        assert reconciler.reconcile().finished == 0
        kept = core_db.session.get(CampaignMessageCount, setup.campaign_id)
        assert kept is not None and (kept.total, kept.sent) == (3, 3)
    assert _progress(client, setup.campaign_id)["sent"] == 3


def test_a_cancelled_campaign_is_counted_after_the_last_claims_lease(app_factory: Any) -> None:
    app = app_factory(PROGRESS_SNAPSHOT_FROM=2)
    client = app.test_client()
    with app.app_context():
        setup = campaign_with(ADDRESSES[:4])
        services.start(setup.tenant.account_id, setup.campaign_id)
        services.cancel(setup.tenant.account_id, setup.campaign_id)
        cancelled_at = core_db.session.scalar(
            select(Campaign.finished_at).where(Campaign.id == setup.campaign_id)
        )
        assert cancelled_at is not None
        reconciler.reconcile()  # within the lease: not counted yet
        kept = core_db.session.get(CampaignMessageCount, setup.campaign_id)
        assert kept is not None and kept.counted_at < cancelled_at + timedelta(seconds=20)
    login(client, setup.tenant.email)
    assert _progress(client, setup.campaign_id)["pending"] == 4  # counted live meanwhile
    with time_machine.travel(utcnow() + timedelta(seconds=21), tick=False):
        with app.app_context():
            reconciler.reconcile()
            kept = core_db.session.get(CampaignMessageCount, setup.campaign_id)
            assert kept is not None
            assert (kept.total, kept.pending, kept.sent) == (4, 4, 0)
        assert _progress(client, setup.campaign_id)["pending"] == 4
