"""Retention jobs and the scheduler: computed from database state, safe twice, late or in
two processes at once; optional jobs of other packages; the CLI and the in-process scheduler."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import time_machine
from flask import Flask
from sqlalchemy import func, select, update

from accounts.models import Account
from core import db as core_db
from core import scheduler
from core.db import utcnow
from privacy import retention
from privacy.models import Download
from subscribers.models import Contact, Subscription
from tests.factories import make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink


def test_unconfirmed_signups_are_purged_after_the_configured_days(app_factory: Any) -> None:
    app = app_factory(UNCONFIRMED_SIGNUP_DAYS=5)
    start = datetime(2026, 2, 1, 12, 0)
    with time_machine.travel(start, tick=False), app.app_context():
        tenant = make_tenant()
        list_id = make_list_with_contacts(tenant, ["new@example.org", "both@example.org"])
        second = make_list_with_contacts(tenant, ["both@example.org", "old@example.org"], "B")
        core_db.session.execute(
            update(Subscription)
            .where(
                Subscription.contact_id.in_(
                    select(Contact.id).where(
                        Contact.email.in_(["new@example.org", "both@example.org"])
                    )
                ),
                Subscription.list_id == list_id,
            )
            .values(status="unconfirmed")
        )
        core_db.session.commit()
        assert second
    with time_machine.travel(start + timedelta(days=4, hours=23), tick=False), app.app_context():
        assert retention.purge_unconfirmed_signups(utcnow()) == 0
    with time_machine.travel(start + timedelta(days=5, minutes=1), tick=False), app.app_context():
        assert retention.purge_unconfirmed_signups(utcnow()) == 2
        assert retention.purge_unconfirmed_signups(utcnow()) == 0
        emails = set(core_db.session.scalars(select(Contact.email)))
        # A contact still on another list stays; one only ever unconfirmed goes.
        assert emails == {"both@example.org", "old@example.org"}
        statuses = set(core_db.session.scalars(select(Subscription.status)))
        assert statuses == {"subscribed"}


def test_expired_and_used_downloads_are_removed(app: Flask) -> None:
    with app.app_context():
        now = utcnow()
        core_db.session.add_all(
            [
                Download(
                    filename="a",
                    content_type="t",
                    content="x",
                    expires_at=now - timedelta(seconds=1),
                ),
                Download(
                    filename="b",
                    content_type="t",
                    content=None,
                    expires_at=now + timedelta(hours=1),
                    used_at=now,
                ),
                Download(
                    filename="c", content_type="t", content="x", expires_at=now + timedelta(hours=1)
                ),
            ]
        )
        core_db.session.commit()
        assert retention.remove_downloads_and_spent_tokens(now) == 2
        assert core_db.session.scalars(select(Download.filename)).all() == ["c"]


def test_jobs_run_concurrently_in_two_processes_do_the_work_once(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    first = app_factory()
    second = app_factory()
    start = datetime(2026, 1, 1, 12, 0)
    with time_machine.travel(start, tick=False), first.app_context():
        tenants = [make_tenant(f"owner{i}@t{i}.example", f"T{i}") for i in range(4)]
    smtp_sink.clear()
    results: list[dict[str, Any]] = []
    with time_machine.travel(start + timedelta(days=340), tick=False):
        barrier = threading.Barrier(2)

        def run(app: Flask) -> None:
            barrier.wait()
            results.append(scheduler.run_jobs(app, only=["warn-inactive-accounts"]))

        threads = [threading.Thread(target=run, args=(a,)) for a in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    warned = [r["warn-inactive-accounts"] for r in results]
    assert sum(w for w in warned if isinstance(w, int)) == 4, results
    for tenant in tenants:
        assert len(smtp_sink.to(tenant.email)) == 1


def test_missing_optional_jobs_are_skipped_and_a_failing_job_does_not_stop_the_others(
    app: Flask, monkeypatch: Any
) -> None:
    jobs = [
        scheduler.Job("absent-module", "nowhere.at_all:job", optional=True),
        scheduler.Job("absent-function", "privacy.retention:not_there", optional=True),
        scheduler.Job("broken", "tests.privacy.test_retention:_broken_job"),
        scheduler.Job("expire-data-requests", "privacy.retention:expire_requests"),
    ]
    monkeypatch.setattr(scheduler, "JOBS", jobs)
    results = scheduler.run_jobs(app)
    assert results == {"broken": "RuntimeError", "expire-data-requests": 0}


def _broken_job(now: datetime) -> int:
    raise RuntimeError("boom")


def test_the_default_job_list_includes_the_other_packages_when_present(app: Flask) -> None:
    names = {job.name: job for job in scheduler.JOBS}
    assert names["reconcile-sends"].interval_setting == "RECONCILE_INTERVAL_SECONDS"
    results = scheduler.run_jobs(app)
    for required in ("delete-accounts-due", "warn-inactive-accounts", "delete-inactive-accounts"):
        assert results[required] == 0
    # Every retention sweep of the registry ran once, and found nothing due.
    sweeps = results["personal-data-retention"]
    for store in ("contact", "tracking_events", "data_requests", "downloads", "import_files"):
        assert sweeps[store] == 0
    assert {"outbox", "marketer_users"} <= set(sweeps)


def test_flask_scheduler_once_runs_every_job(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
        core_db.session.execute(
            update(Account).values(last_activity_at=utcnow() - timedelta(days=340))
        )
        core_db.session.commit()
    output = app.test_cli_runner().invoke(args=["scheduler", "--once"]).output
    assert "warn-inactive-accounts: 1" in output
    with app.app_context():
        account = core_db.session.get(Account, tenant.account_id)
        assert account is not None and account.inactivity_warning_sent_at is not None


def test_the_app_factory_starts_the_in_process_scheduler_on_the_embedded_default(
    app_factory: Any,
) -> None:
    app = app_factory(TESTING=False, INPROCESS_WORKER=False)
    running = app.extensions["scheduler"]
    try:
        assert running.running
        # One APScheduler job per tick: the send reconciler's 10 s, everything else's 300 s.
        assert sorted(job.id for job in running.get_jobs()) == [
            "envoy-jobs-10s",
            "envoy-jobs-300s",
        ]
    finally:
        running.shutdown(wait=False)
    quiet = app_factory(TESTING=False, INPROCESS_WORKER=False, SCHEDULER_INPROCESS=False)
    assert "scheduler" not in quiet.extensions
    with quiet.app_context():
        assert core_db.session.scalar(select(func.count()).select_from(Account)) == 0
