"""The campaign report at scale on PostgreSQL: before and after the roll-ups (migration 0323).

    .venv/bin/python bench/report_bench.py [--contacts 100000] [--events 1000000] [--rounds 5]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--before]

Creates its own database (dropped at the end), migrates it to 0318 (before the roll-ups),
seeds one account, one list of ``contacts`` contacts on five domains, one sent campaign with a
message per contact and three links, and ``events`` identified events over a week (a third
clicks, a fifth machine ones) with ``generate_series``, then times the report
(``tracking.analytics.campaign_report`` and its CSV: what the page computes; the template's
rendering is the same either way) in ``rounds`` rounds and prints min/median/max.

Without ``--before`` it first upgrades to the head (0323: the roll-ups filled from the events,
``tracking_events`` converted to monthly partitions) and prints how long that took. With
``--before`` it stays at 0318: run it so with the code of before on ``PYTHONPATH``, e.g.
``PYTHONPATH=/path/to/main-checkout .venv/bin/python bench/report_bench.py --before``.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from typing import Any


def _seed(url: str, contacts: int, events: int) -> None:
    import sqlalchemy as sa

    from tests.raw_rows import insert_row as _row

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        run = conn.execute
        meta = sa.MetaData()
        meta.reflect(conn)
        ids: dict[str, int] = {}
        account = ids["accounts"] = _row(
            conn, meta, "accounts", ids, individual_tracking=True, time_zone="UTC",
            event_retention_days=180, ip_handling="truncate",
        )  # fmt: skip
        list_id = ids["mailing_lists"] = _row(conn, meta, "mailing_lists", ids, name="All")
        campaign = ids["campaigns"] = _row(
            conn, meta, "campaigns", ids, status="sent", track_opens=True, track_clicks=True
        )
        run(
            sa.text("INSERT INTO campaign_lists (campaign_id, list_id) VALUES (:c, :l)"),
            {"c": campaign, "l": list_id},
        )
        for position in range(3):
            run(
                sa.text("INSERT INTO links (campaign_id, url, position) VALUES (:c, :u, :p)"),
                {"c": campaign, "u": f"https://shop.example/{position}", "p": position},
            )
        run(
            sa.text(
                "INSERT INTO contacts (account_id, email, name, attributes, source, created_at, "
                "updated_at) SELECT :a, 'person' || g || '@domain' || (g % 5) || '.example', "
                "'', '{}', "
                "'bench', now(), now() FROM generate_series(1, :n) g"
            ),
            {"a": account, "n": contacts},
        )
        run(
            sa.text(
                "INSERT INTO messages (campaign_id, contact_id, status, sent_at, due_at, "
                "attempts) SELECT :c, id, 'sent', now() - interval '8 days', now(), 1 "
                "FROM contacts WHERE account_id = :a"
            ),
            {"c": campaign, "a": account},
        )
        first_message, first_link = run(
            sa.text("SELECT (SELECT min(id) FROM messages), (SELECT min(id) FROM links)")
        ).one()
        run(
            sa.text(
                "INSERT INTO tracking_events (account_id, campaign_id, link_id, message_id, "
                "kind, occurred_at, is_machine, machine_reason, ua_class, hit_uid) "
                "SELECT :a, :c, CASE WHEN g % 3 = 0 THEN :link + (g / 3) % 3 END, "
                ":message + (g::bigint * 7919) % :n, "
                "CASE WHEN g % 3 = 0 THEN 'click' ELSE 'open' END, "
                "now() - interval '7 days' + (g % 604800) * interval '1 second', g % 5 = 0, "
                "CASE WHEN g % 5 = 0 THEN 'ua:apple-mpp' END, 'desktop', md5(g::text) "
                "FROM generate_series(1, :e) g"
            ),
            {
                "a": account,
                "c": campaign,
                "link": first_link,
                "message": first_message,
                "n": contacts,
                "e": events,
            },
        )
        # The daily aggregates the ingest keeps beside the events (totals, per-day series,
        # per link: read by the report before and after 0323 alike).
        run(
            sa.text(
                "INSERT INTO tracking_daily_campaign_stats (account_id, campaign_id, day, kind, "
                "is_machine, total, uniques) SELECT account_id, campaign_id, "
                "CAST(occurred_at AS date), kind, is_machine, count(*), "
                "count(DISTINCT message_id) FILTER (WHERE NOT is_machine) FROM tracking_events "
                "GROUP BY account_id, campaign_id, CAST(occurred_at AS date), kind, is_machine"
            )
        )
        run(
            sa.text(
                "INSERT INTO tracking_daily_link_stats (account_id, campaign_id, link_id, day, "
                "is_machine, total, uniques) SELECT account_id, campaign_id, link_id, "
                "CAST(occurred_at AS date), is_machine, count(*), count(DISTINCT message_id) "
                "FROM tracking_events WHERE link_id IS NOT NULL GROUP BY account_id, "
                "campaign_id, link_id, CAST(occurred_at AS date), is_machine"
            )
        )
        run(sa.text("ANALYZE"))
    engine.dispose()


def _time_report(url: str, rounds: int) -> list[float]:
    from sqlalchemy import select

    from campaigns.models import Campaign
    from core import db
    from core.app import create_app
    from tracking import analytics

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEYS": ["bench-key-0123456789-0123456789-0123456789"],
            "ADDRESS_HASH_KEY": "bench",
            "BASE_URL": "http://localhost",
            "REDIS_URL": "",
            "SCHEDULER_INPROCESS": False,
        }
    )
    timings = []
    with app.app_context():
        campaign = db.session.execute(select(Campaign.id, Campaign.account_id)).one()
        for _ in range(rounds):
            started = time.perf_counter()
            report = analytics.campaign_report(campaign.account_id, campaign.id)
            analytics.report_csv(report)
            timings.append(time.perf_counter() - started)
            db.session.rollback()
        parts = {
            "stats (messages by status, daily totals)": lambda: analytics.campaign_stats(
                campaign.id
            ),
            "series": lambda: analytics._series(campaign.id, "UTC"),
            "links": lambda: analytics._links(campaign.id),
            "domains (messages x contacts, domain roll-up)": lambda: analytics._domains(
                campaign.id
            ),
            "machine reasons": lambda: analytics._machine_reasons(campaign.id),
        }
        for label, part in parts.items():
            started = time.perf_counter()
            part()
            print(f"  {label}: {(time.perf_counter() - started) * 1000:.0f} ms", flush=True)
        print(
            f"report: {report.stats.opens} opens, {len(report.series)} series points "
            f"({report.granularity}), {len(report.domains)} domains",
            flush=True,
        )
        db.session.remove()
    app.extensions["queue"].stop()
    app.extensions["db_engine"].dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--before", action="store_true", help="stay at 0318 (code of before)")
    args = parser.parse_args()

    import psycopg

    from core.migrate import upgrade

    name = f"envoy_report_bench_{secrets.token_hex(4)}"
    url = f"{args.admin_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(url, "0318")
        started = time.perf_counter()
        _seed(url, args.contacts, args.events)
        print(f"seeded {args.contacts} contacts, {args.events} events in "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        if not args.before:
            started = time.perf_counter()
            upgrade(url, "head")
            print(f"migration 0323 (roll-ups, partitions): {time.perf_counter() - started:.1f} s")
        timings: list[Any] = _time_report(url, args.rounds)
        print(
            f"campaign report ({'before' if args.before else 'roll-ups'}), {args.rounds} rounds:"
            f" min {min(timings) * 1000:.0f} ms, median {statistics.median(timings) * 1000:.0f}"
            f" ms, max {max(timings) * 1000:.0f} ms"
        )
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sys.stdout.flush()


if __name__ == "__main__":
    main()
