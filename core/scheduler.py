"""Periodic jobs: retention, account deletions, inactivity, and whatever packages add.

Every job is a function ``job(now: datetime) -> int`` computed from database state (safe to
run twice, late, or in two processes). :func:`run_jobs` runs them all once, each in its own
app context, under a PostgreSQL advisory lock per job (a second process skips a job that is
running elsewhere). The scheduler runs the jobs every ``SCHEDULER_INTERVAL_SECONDS``, except
those with an interval setting of their own (the send reconciler: ``RECONCILE_INTERVAL_SECONDS``,
10 s), starting shortly after it starts, so work that fell due during downtime is caught up at
once (:func:`intervals` says which jobs run how often).

Where it runs:

- embedded default (no Redis): inside the web process, started by the app factory;
- production: one dedicated process, ``flask scheduler`` or ``python -m core.scheduler``
  (set ``SCHEDULER_INPROCESS=false`` if web processes should not run it as well; running it in
  several places is safe, only wasteful).
"""

from __future__ import annotations

import importlib
import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import text

from core.db import utcnow
from core.logsafe import log_failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    target: str  # "package.module:function"
    optional: bool = False  # skipped quietly when the function does not exist (yet)
    # Run at most this often in one process (0: every tick). The first tick after a start
    # always runs it, so a missed day is caught up on restart.
    every_seconds: int = 0
    # The app setting of this job's own tick, in seconds (empty: SCHEDULER_INTERVAL_SECONDS).
    interval_setting: str = ""


_LAST_RUN: dict[str, datetime] = {}


#: The registration list. Packages add their periodic work here (``job(now) -> int``).
JOBS: list[Job] = [
    # Every retention sweep of personal data: the stores of privacy/registry.py, each once
    # (data requests, downloads, unconfirmed sign-ups, events, sessions, import files, outbox).
    Job("personal-data-retention", "privacy.registry:apply_retention"),
    Job("delete-accounts-due", "privacy.retention:delete_accounts_due"),
    Job("warn-inactive-accounts", "privacy.retention:warn_inactive_accounts"),
    Job("delete-inactive-accounts", "privacy.retention:delete_inactive_accounts"),
    # Recovers dead workers' claims within SEND_CLAIM_TIMEOUT + this interval.
    Job(
        "reconcile-sends",
        "campaigns.sending.reconciler:reconcile",
        interval_setting="RECONCILE_INTERVAL_SECONDS",
    ),
    # A/B tests whose wait is over: the winner chosen, the rest sent it (or held for a yes).
    Job("ab-test-winners", "campaigns.ab_tests:decide_due"),
    # Webhook deliveries that are due and were not enqueued (lost message, long delay, broker
    # down at commit), and deliveries a dead worker left half done.
    Job(
        "webhook-deliveries",
        "webhooks.delivery:reconcile",
        interval_setting="RECONCILE_INTERVAL_SECONDS",
    ),
    # DSN and ARF reports from BOUNCE_MAILDIR / BOUNCE_IMAP_URL (nothing when neither is set).
    Job("read-bounce-mailboxes", "campaigns.bounces:process_configured_mailboxes"),
    Job("engine-maintenance", "privacy.engine_gate:run_maintenance", every_seconds=86_400),
    # Contacts from before migration 0329 get their address hash (nothing once all have it).
    Job(
        "contact-address-hashes",
        "subscribers.suppression:fill_contact_address_hashes",
        every_seconds=60,
    ),
    # PostgreSQL: this month's and the next months' tracking_events partitions, made ahead.
    Job("tracking-partitions", "tracking.partitions:ensure_partitions", every_seconds=3_600),
]


def resolve(job: Job) -> Callable[[datetime], Any] | None:
    """The job's function, or None for an optional job whose function does not exist."""
    module_name, _, attribute = job.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        if job.optional:
            return None
        raise
    function = getattr(module, attribute, None)
    if function is None and not job.optional:
        raise LookupError(f"scheduled job {job.name}: {job.target} not found")
    return function


@contextmanager
def _job_lock(app: Flask, name: str) -> Iterator[bool]:
    """On PostgreSQL, a session advisory lock per job (True when this process holds it)."""
    engine = app.extensions["db_engine"]
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = zlib.crc32(f"envoy-job:{name}".encode())
    with engine.connect() as connection:
        got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield got
        finally:
            if got:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            connection.commit()


def run_jobs(
    app: Flask, now: datetime | None = None, only: list[str] | None = None
) -> dict[str, Any]:
    """Run every registered job once (or those named in ``only``); return each one's result.

    A failing job is logged and reported as the exception's class name; the others still run.
    """
    results: dict[str, Any] = {}
    for job in JOBS:
        if only is not None and job.name not in only:
            continue
        function = resolve(job)
        if function is None:
            continue
        moment = now or utcnow()
        last = _LAST_RUN.get(job.name)
        if job.every_seconds and now is None and last is not None:
            elapsed = (moment - last).total_seconds()
            if 0 <= elapsed < job.every_seconds:
                continue
        _LAST_RUN[job.name] = moment
        with _job_lock(app, job.name) as held:
            if not held:
                results[job.name] = "running elsewhere"
                continue
            with app.app_context():
                from core import db

                try:
                    results[job.name] = function(now or utcnow())
                except Exception as exc:
                    db.session.rollback()
                    log_failure(log, exc, "scheduled job %s failed", job.name)
                    results[job.name] = type(exc).__name__
    return results


def _scheduled_run(app: Flask, names: list[str]) -> None:
    results = run_jobs(app, only=names)
    log.info("scheduled jobs ran: %s", results)


def intervals(app: Flask) -> dict[int, list[str]]:
    """The jobs' names by their tick in seconds: ``SCHEDULER_INTERVAL_SECONDS``, or the app
    setting a job names (``interval_setting``). Every job is in exactly one tick."""
    ticks: dict[int, list[str]] = {}
    default = int(app.config["SCHEDULER_INTERVAL_SECONDS"])
    for job in JOBS:
        seconds = int(app.config[job.interval_setting]) if job.interval_setting else default
        ticks.setdefault(max(1, seconds), []).append(job.name)
    return ticks


def add_jobs(app: Flask, scheduler: Any, first_run: datetime) -> None:
    """Add one APScheduler interval job per tick of :func:`intervals`, first run at
    ``first_run``; a run that is late or still running is not doubled."""
    for seconds, names in sorted(intervals(app).items()):
        scheduler.add_job(
            _scheduled_run,
            "interval",
            args=[app, names],
            seconds=seconds,
            next_run_time=first_run,
            coalesce=True,
            max_instances=1,
            id=f"envoy-jobs-{seconds}s",
        )


def start_inprocess(app: Flask) -> Any:
    """Start a background scheduler thread in this process (the embedded default)."""
    from datetime import timedelta

    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
    add_jobs(app, scheduler, datetime.now().astimezone() + timedelta(seconds=30))
    scheduler.start()
    app.extensions["scheduler"] = scheduler
    return scheduler


def run_forever(app: Flask) -> None:
    """Run the jobs now, then each on its tick (:func:`intervals`), until interrupted."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    existing = app.extensions.pop("scheduler", None)
    if existing is not None:
        existing.shutdown(wait=False)
    scheduler = BlockingScheduler(timezone="UTC")
    add_jobs(app, scheduler, datetime.now().astimezone())
    log.info(
        "scheduler started: %s",
        ", ".join(f"{len(names)} jobs every {s}s" for s, names in sorted(intervals(app).items())),
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


def register_cli(app: Flask) -> None:
    """``flask scheduler`` (run forever) and ``flask scheduler --once`` (run every job once)."""
    import click

    @app.cli.command("scheduler")
    @click.option("--once", is_flag=True, help="Run every job once and exit.")
    def scheduler_command(once: bool) -> None:
        """Run the periodic jobs (retention, deletions, inactivity, reconciler, bounces)."""
        from flask import current_app

        real_app = current_app._get_current_object()  # type: ignore[attr-defined]
        if once:
            for name, result in run_jobs(real_app).items():
                click.echo(f"{name}: {result}")
            return
        run_forever(real_app)


if __name__ == "__main__":  # python -m core.scheduler
    from core.app import create_app

    run_forever(create_app({"SCHEDULER_INPROCESS": False}))
