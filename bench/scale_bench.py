"""Every marketer page at scale: 1,000,000 contacts, a 1M-recipient campaign, 10M events.

    .venv/bin/python bench/scale_bench.py                       # 1M contacts, 10M events
    .venv/bin/python bench/scale_bench.py --contacts 20000 --events 200000 --requests 3

1. Seeds a database of its own on PostgreSQL (``TEST_POSTGRES_ADMIN_URL``, default
   postgresql://postgres@127.0.0.1:5432/postgres; dropped at the end unless ``--keep``): one
   account (individual tracking on) whose owner logs in, ``--contacts`` contacts on one list
   (0.1 % with non-ASCII names and addresses, attributes), one campaign sent to all of them
   (one message each), ``--events`` tracking events over the last 30 days (opens and clicks
   of two links), their daily aggregates, a draft campaign to the same list, a segment, a
   template, a role and an import. Rows go in with ``COPY``; the big tables' indexes and
   foreign keys are dropped before and built after the load. It prints the seeding time.
2. Starts the app as README's production section does: ``gunicorn -w 2 -k gthread
   --threads 4`` on 127.0.0.1 (PID stopped at the end), logs in as the owner through the
   login form, and times every GET route of the url_map a member reaches (listed from the
   url_map with real ids; the ones skipped are printed with why), ``--requests`` times each
   after one warm-up, printing p50/p95 against its target with PASS/FAIL.
3. Times, in this process on the same database, an access report and an erasure of single
   contacts, and streams a list and a segment export of every contact through gunicorn
   (rows/s, and the peak RSS of the gunicorn worker that served it).

This machine has 2 cores shared by everything: gunicorn's 2 workers x 4 threads are README's
production figures for one node (README asks for ``-w 4`` on a bigger one; 2 workers is one per
core here), PostgreSQL runs beside them with its default configuration, and the requests are
sent one at a time, so a time is one request's latency on a machine otherwise idle but for
what other work shares it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procs import free_port, rss_kib, tree, wait_port  # noqa: E402

BIN = Path(sys.executable).parent

OWNER_EMAIL = "owner@scale.example"
OWNER_PASSWORD = "scale bench password 123"  # noqa: S105 - a scratch database's owner
#: Tables the seed fills with COPY: their indexes and constraints are rebuilt after the load.
BIG_TABLES = ("contacts", "subscriptions", "messages", "tracking_events", "engine_addresses")

#: Targets in milliseconds (p95), by endpoint; everything else: DEFAULT_TARGET_MS.
DEFAULT_TARGET_MS = 300.0
#: The segment preview, the send confirmation and the draft's count and checks (which the
#: campaign page of a large account fetches after it is shown) count a million contacts: the
#: issue's "segment counts and previews under 1 s".
TARGETS_MS = {
    "campaigns.progress": 50.0,
    "subscribers.segment_detail": 1000.0,
    "campaigns.confirm_send": 1000.0,
    "campaigns.before_sending": 1000.0,
}
SEARCH_TARGET_MS = 300.0
PERSON_TARGET_S = 1.0
EXPORT_TARGET_ROWS = 50_000.0
EXPORT_TARGET_RSS_MIB = 150.0

#: GET routes a member reaches that are not timed as pages, and why.
SKIPPED = {
    "subscribers.list_export": "export: timed below as rows/s over every contact",
    "subscribers.segment_export": "export: timed below as rows/s over every contact",
    "tracking.report_csv": "a download of the campaign report (timed by bench/report_bench.py)",
    "subscribers.import_report": "a download of an import's error file (none in the seed)",
    "accounts.two_factor_setup": "starts a second-factor enrolment (writes a pending secret)",
    "accounts.reactivate": "only for an account scheduled for deletion (redirects otherwise)",
}


# --- seeding ---------------------------------------------------------------------------------


def _copy(cursor: Any, table: str, columns: str, lines: Iterator[str]) -> None:
    """COPY text-format lines into ``table`` in chunks of about 1 MB."""
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        chunk: list[str] = []
        size = 0
        for line in lines:
            chunk.append(line)
            size += len(line)
            if size > 1_000_000:
                copy.write("".join(chunk))
                chunk, size = [], 0
        if chunk:
            copy.write("".join(chunk))


def _drop_indexes(cursor: Any) -> list[str]:
    """Drop the big tables' secondary indexes, unique and foreign-key constraints; return the
    statements that make them again."""
    again: list[str] = []
    for table in BIG_TABLES:
        for name, definition in cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC",
            (table,),
        ).fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            again.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for name, definition in cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
            "AND NOT x.indisprimary",
            (table,),
        ).fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
            # A partitioned table's index reads "ON ONLY": made so, it would cover no partition
            # and stay invalid; without ONLY it is made on every partition too.
            again.insert(0, definition.replace(" ON ONLY ", " ON ", 1))
    return again


def _address(i: int) -> str:
    """The seeded contact ``i``'s address (0.1 % non-ASCII)."""
    if i % 1000 == 7:
        return f"zoë.ångström{i}@exämple.org"
    return f"person.{i}@example{i % 97}.org"


def _seed_suppressions(
    cursor: Any, app: Any, account_id: int, contact_ids: range, sent_at: datetime
) -> None:
    """What a sent campaign leaves, so that an audience count does production's work: the
    account's suppressions (its 1 % unsubscribed, its 0.2 % hard bounces), 1,000 platform-wide
    ones of other people, and the engine's row for every address it delivered to or bounced
    (the bounced ones suppressed, in every domain). Hashed with the app's own functions."""
    from engine.services import domain_of, engine_hash
    from subscribers.hashing import address_hash

    def suppression_lines() -> Iterator[str]:
        for i in contact_ids:
            reason = "unsubscribed" if i % 100 == 1 else "hard_bounce" if i % 500 == 3 else ""
            if reason:
                yield f"{account_id}\t{address_hash(_address(i))}\t{reason}\t{sent_at}\n"
        for n in range(1000):
            hashed = address_hash(f"gone{n}@elsewhere.example")
            yield f"\\N\t{hashed}\terased\t{sent_at}\n"

    day = sent_at.date()

    def engine_lines() -> Iterator[str]:
        for i in contact_ids:
            email = _address(i)
            hashed, domain = engine_hash(email), domain_of(email)
            if i % 500 == 3:
                yield f"{hashed}\t{domain}\t0\t0\t1\t0\t0\t0\t\\N\t{day}\n"
            else:
                yield f"{hashed}\t{domain}\t1\t0\t0\t0\t0\t0\t{day}\t\\N\n"

    with app.app_context():
        _copy(
            cursor,
            "suppressions",
            "account_id, address_hash, reason, created_at",
            suppression_lines(),
        )
        _copy(
            cursor,
            "engine_addresses",
            "address_hash, domain, delivered, deferred, bounced, complained, opens, clicks, "
            "last_delivered_on, last_bounced_on",
            engine_lines(),
        )


def seed(url: str, contacts: int, events: int) -> dict[str, Any]:
    """Fill the database; return the ids the pages need."""
    import psycopg

    from accounts import roles
    from accounts import services as accounts
    from campaigns import services as campaigns
    from campaigns.template_library import save_template
    from core import db
    from core.app import create_app
    from core.migrate import upgrade
    from core.permissions import ALL
    from subscribers import services as subscribers
    from subscribers.hashing import address_hash_with

    upgrade(url)
    app = create_app(_app_config(url))
    with app.app_context():
        account, user = accounts.sign_up(
            "Scale", "Scale Bench Ltd", OWNER_EMAIL, OWNER_PASSWORD, of_age=True
        )
        accounts.update_general_settings(account.id, "Scale Bench Ltd", "1 Bench Street, Town")
        accounts.update_privacy_settings(account.id, True, "truncate", 365)
        mailing_list = subscribers.create_list(account.id, "Everyone")
        html = (
            '<html><body><p>Hello {{ contact.name }}</p><a href="https://shop.example/a">A</a> '
            '<a href="https://shop.example/b">B</a></body></html>'
        )
        sent = campaigns.save_campaign(
            account.id,
            campaign_id=None,
            name="Spring sale",
            subject="Spring sale",
            from_name="Scale",
            from_email=OWNER_EMAIL,
            list_id=mailing_list.id,
            html_body=html,
        )
        draft = campaigns.save_campaign(
            account.id,
            campaign_id=None,
            name="Summer sale",
            subject="Summer sale",
            from_name="Scale",
            from_email=OWNER_EMAIL,
            list_id=mailing_list.id,
            html_body=html,
        )
        segment = subscribers.save_segment(
            account.id,
            None,
            "Imported",
            "all",
            [{"field": "source", "op": "equals", "value": "import"}],  # everyone
        )
        template = save_template(
            account.id, template_id=None, name="Plain", subject="Hello", html_body=html
        )
        role = roles.save_role(account.id, ALL, None, "Editors", ["campaigns:manage"])
        ids = {
            "account": account.id,
            "user": user.id,
            "list": mailing_list.id,
            "campaign": sent.id,
            "draft": draft.id,
            "segment": segment.id,
            "template": template.id,
            "role": role.id,
        }
        db.session.commit()
    app.extensions["queue"].stop()
    app.extensions["db_engine"].dispose()

    started = time.perf_counter()
    rng = random.Random(17)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    cities = ["Berlin", "Paris", "Lisboa", "Kraków", "Zürich", "Oslo", "Madrid", "Roma"]
    address_key = str(_app_config(url)["ADDRESS_HASH_KEY"]).encode()
    with psycopg.connect(url, autocommit=False) as conn, conn.cursor() as cursor:
        again = _drop_indexes(cursor)
        first = 1 + int(cursor.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()[0])
        contact_ids = range(first, first + contacts)

        def contact_lines() -> Iterator[str]:
            for i in contact_ids:
                email = _address(i)
                name = f"Zoë Ångström {i}" if i % 1000 == 7 else f"Person Number {i}"
                attributes = json.dumps(
                    {"city": cities[i % len(cities)], "plan": "pro" if i % 3 else "free"},
                    ensure_ascii=False,
                )
                created = now - timedelta(seconds=(first + contacts - i) * 3)
                yield (
                    f"{i}\t{ids['account']}\t{email}\t{address_hash_with(address_key, email)}\t"
                    f"{name}\t{attributes}\timport\t{created}\t{created}\n"
                )

        _copy(
            cursor,
            "contacts",
            "id, account_id, email, address_hash, name, attributes, source, created_at, updated_at",
            contact_lines(),
        )

        def subscription_lines() -> Iterator[str]:
            for i in contact_ids:
                if i % 100 == 1:
                    yield (f"{ids['list']}\t{i}\tunsubscribed\t{now}\t{now}\t{now}\t{now}\n")
                else:
                    yield f"{ids['list']}\t{i}\tsubscribed\t{now}\t{now}\t{now}\t\\N\n"

        _copy(
            cursor,
            "subscriptions",
            "list_id, contact_id, status, created_at, updated_at, confirmed_at, unsubscribed_at",
            subscription_lines(),
        )
        sent_at = now - timedelta(days=30)
        _seed_suppressions(cursor, app, ids["account"], contact_ids, sent_at)
        first_message = 1 + int(
            cursor.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
        )

        def message_lines() -> Iterator[str]:
            for i in contact_ids:
                status = "failed" if i % 500 == 3 else "sent"
                bounce = "hard" if status == "failed" else "\\N"
                yield (f"{ids['campaign']}\t{i}\t{status}\t{sent_at}\t1\t{sent_at}\t{bounce}\n")

        _copy(
            cursor,
            "messages",
            "campaign_id, contact_id, status, due_at, attempts, sent_at, bounce_kind",
            message_lines(),
        )
        links = [
            int(row[0])
            for row in cursor.execute(
                "INSERT INTO links (campaign_id, position, url) VALUES (%s, 0, %s), (%s, 1, %s) "
                "RETURNING id",
                (
                    ids["campaign"],
                    "https://shop.example/a",
                    ids["campaign"],
                    "https://shop.example/b",
                ),
            ).fetchall()
        ]
        ua_classes = ["desktop", "mobile", "webmail", "proxy"]

        def event_lines() -> Iterator[str]:
            for n in range(events):
                message = first_message + rng.randrange(contacts)
                occurred = sent_at + timedelta(seconds=rng.randrange(30 * 86400))
                machine = n % 10 == 0
                if n % 3 == 0:
                    kind, link = "click", str(links[n % 2])
                else:
                    kind, link = "open", "\\N"
                yield (
                    f"{ids['account']}\t{ids['campaign']}\t{link}\t{message}\t{kind}\t"
                    f"{occurred}\t{'t' if machine else 'f'}\t"
                    f"{'proxy' if machine else chr(92) + 'N'}\t{ua_classes[n % 4]}\t{n:032x}\n"
                )

        _copy(
            cursor,
            "tracking_events",
            "account_id, campaign_id, link_id, message_id, kind, occurred_at, is_machine, "
            "machine_reason, ua_class, hit_uid",
            event_lines(),
        )
        loaded = time.perf_counter()
        for statement in again:
            cursor.execute(statement)
        for table in ("contacts", "messages", "tracking_events"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        _daily_aggregates(cursor, ids["campaign"], ids["account"])
        cursor.execute(
            "UPDATE campaigns SET status = 'sent', started_at = %s, finished_at = %s, "
            "last_progress_at = %s, last_outcome_at = %s WHERE id = %s",
            (sent_at, sent_at, sent_at, sent_at, ids["campaign"]),
        )
        ids["import"] = int(
            cursor.execute(
                "INSERT INTO import_jobs (account_id, list_id, status, filename, stored_path, "
                "report_path, columns, mapping, update_existing, total_bytes, processed_bytes, "
                "rows_read, created_count, updated_count, skipped_count, error_count, error, "
                "created_at, started_at, finished_at) VALUES (%s, %s, 'done', 'contacts.csv', "
                "'', '', '[]', '{}', false, 100, 100, %s, %s, 0, 0, 0, '', %s, %s, %s) "
                "RETURNING id",
                (ids["account"], ids["list"], contacts, contacts, now, now, now),
            ).fetchone()[0]
        )
        conn.commit()
        indexed = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    _scheduler_work(url)
    done = time.perf_counter()
    print(
        f"seeded {contacts:,} contacts, {contacts:,} messages, {events:,} events in "
        f"{done - started:.1f} s (COPY {loaded - started:.1f} s, indexes and aggregates "
        f"{indexed - loaded:.1f} s, VACUUM ANALYZE and the scheduler's first run "
        f"{done - indexed:.1f} s)",
        flush=True,
    )
    ids["contact"] = first + contacts // 2
    ids["contacts_range"] = (first, first + contacts)
    return ids


def _scheduler_work(url: str) -> None:
    """What the scheduler does for the seeded rows: one run of the send reconciler (every
    10 s: it keeps the sent campaign's message counts, campaigns/progress_counts.py) and the
    engine gate's rebuild of the engine's suppressed addresses by the contacts' hash (part of
    its daily maintenance; the rest would rebuild the engine's rows from a ledger the seed
    does not write)."""
    from campaigns.sending import reconciler
    from core import db
    from core.app import create_app
    from privacy import engine_gate

    app = create_app(_app_config(url))
    with app.app_context():
        reconciler.reconcile()
        engine_gate.rebuild_verdicts()
        db.session.commit()
    app.extensions["queue"].stop()
    app.extensions["db_engine"].dispose()


def _daily_aggregates(cursor: Any, campaign_id: int, account_id: int) -> None:
    """The daily figures the ingest keeps, from the seeded events (first hits count as
    uniques on their day)."""
    cursor.execute(
        "INSERT INTO tracking_daily_campaign_stats (account_id, campaign_id, day, kind, "
        "is_machine, total, uniques) SELECT %s, %s, day, kind, is_machine, sum(total), "
        "sum(firsts) FROM (SELECT occurred_at::date AS day, kind, is_machine, count(*) AS total, "
        "0 AS firsts FROM tracking_events WHERE campaign_id = %s GROUP BY 1, 2, 3 UNION ALL "
        "SELECT first::date, kind, is_machine, 0, count(*) FROM (SELECT message_id, kind, "
        "is_machine, min(occurred_at) AS first FROM tracking_events WHERE campaign_id = %s "
        "GROUP BY 1, 2, 3) f GROUP BY 1, 2, 3) t GROUP BY day, kind, is_machine",
        (account_id, campaign_id, campaign_id, campaign_id),
    )
    cursor.execute(
        "INSERT INTO tracking_daily_link_stats (account_id, campaign_id, link_id, day, "
        "is_machine, total, uniques) SELECT %s, %s, link_id, occurred_at::date, is_machine, "
        "count(*), count(DISTINCT message_id) FROM tracking_events WHERE campaign_id = %s "
        "AND link_id IS NOT NULL GROUP BY link_id, occurred_at::date, is_machine",
        (account_id, campaign_id, campaign_id),
    )
    # The report's roll-ups (tracking/rollups.py): quarter-hour series, human identified events
    # by recipient domain (uniques: a message's first human event of the kind), machine reasons.
    cursor.execute(
        "INSERT INTO tracking_quarter_stats (account_id, campaign_id, quarter, kind, is_machine, "
        "total) SELECT %s, %s, floor(extract(epoch FROM occurred_at) / 900)::int, kind, "
        "is_machine, count(*) FROM tracking_events WHERE campaign_id = %s AND kind IN "
        "('open', 'click') GROUP BY 3, 4, 5",
        (account_id, campaign_id, campaign_id),
    )
    cursor.execute(
        "INSERT INTO tracking_domain_stats (account_id, campaign_id, domain, kind, total, "
        "uniques) SELECT %s, %s, lower(split_part(c.email, '@', 2)), e.kind, count(*), "
        "count(DISTINCT e.message_id) FROM tracking_events e JOIN messages m ON m.id = "
        "e.message_id JOIN contacts c ON c.id = m.contact_id WHERE e.campaign_id = %s AND NOT "
        "e.is_machine AND e.kind IN ('open', 'click') GROUP BY 3, 4",
        (account_id, campaign_id, campaign_id),
    )
    cursor.execute(
        "INSERT INTO tracking_reason_stats (account_id, campaign_id, reason, total) SELECT %s, "
        "%s, coalesce(machine_reason, 'machine'), count(*) FROM tracking_events WHERE "
        "campaign_id = %s AND is_machine GROUP BY 3",
        (account_id, campaign_id, campaign_id),
    )


def _app_config(url: str, workdir: Path | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "DATABASE_URL": url,
        "REDIS_URL": "",
        "INPROCESS_WORKER": False,
        "SCHEDULER_INPROCESS": False,
        "SECRET_KEYS": ["scale-bench-key-0123456789abcdef"],
        "ADDRESS_HASH_KEY": "scale-bench-address-hash-key",
        "ENGINE_HASH_KEY": "scale-bench-engine-hash-key",
        "ENCRYPTION_KEYS": ["DUFBvTH0uOLn-DmPYBAiZGJdW9uUvaf2zszEuVD9uXw="],
        "REQUIRE_VERIFIED_SENDER": False,
    }
    if workdir is not None:
        config["MAILDIR_PATH"] = str(workdir / "outbox")
        config["VAR_DIR"] = str(workdir)
    return config


def _environment(config: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in config.items():
        env[name] = (
            ",".join(value)
            if isinstance(value, list)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
    return env


# --- timing ------------------------------------------------------------------------------


def pages(app: Any, ids: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(endpoint, path) of every GET route a logged-in member reaches, with real ids; and
    the skipped endpoints with why."""
    from flask import url_for

    from core.auth import Audience, access_of

    values = {
        "campaign_id": ids["campaign"],
        "contact_id": ids["contact"],
        "list_id": ids["list"],
        "segment_id": ids["segment"],
        "template_id": ids["template"],
        "role_id": ids["role"],
        "import_id": ids["import"],
        "fmt": "csv",
    }
    found: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    with app.test_request_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in (rule.methods or ()) or rule.endpoint.endswith("static"):
                continue
            access = access_of(app.view_functions[rule.endpoint])
            if access is None or access.audience in (
                Audience.PUBLIC,
                Audience.OPERATOR,
                Audience.API_KEY,  # the API's lists share the queries timed through the pages
            ):
                continue
            if rule.endpoint in SKIPPED:
                skipped[rule.endpoint] = SKIPPED[rule.endpoint]
                continue
            unseeded = sorted(set(rule.arguments) - set(values))
            if unseeded:
                skipped[rule.endpoint] = f"no seeded row for {', '.join(unseeded)}"
                continue
            path = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
            found.append((rule.endpoint, path))
            if rule.endpoint == "campaigns.detail":
                # The draft too: its page counts the audience before sending.
                found.append(
                    (
                        "campaigns.detail (draft)",
                        path.replace(str(ids["campaign"]), str(ids["draft"])),
                    )
                )
            if rule.endpoint in ("campaigns.confirm_send", "campaigns.before_sending"):
                found[-1] = (rule.endpoint, path.replace(str(ids["campaign"]), str(ids["draft"])))
            if rule.endpoint == "subscribers.contacts":
                found.append(("subscribers.contacts ?page=5000", path + "?page=5000"))
    return found, skipped


def log_in(session: Any, base: str) -> None:
    page = session.get(f"{base}/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    data = {"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    answer = session.post(f"{base}/login", data=data, allow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(f"login failed: {answer.status_code}")


def time_get(session: Any, url: str, count: int) -> tuple[list[float], int]:
    """``count`` timed GETs (ms) after one warm-up, whose time is the list's first item."""
    started = time.perf_counter()
    session.get(url)  # warm-up: caches, the connection, the planner's statistics
    times = [1000 * (time.perf_counter() - started)]
    status = 0
    for _ in range(count):
        started = time.perf_counter()
        answer = session.get(url, allow_redirects=False)
        times.append(1000 * (time.perf_counter() - started))
        status = answer.status_code
    return times, status


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def row(name: str, times: list[float], target: float, note: str = "") -> bool:
    """One line of the table: the first (cold) time, then p50 and p95 of the timed ones."""
    first, times = times[0], times[1:]
    ok = p95(times) <= target
    print(
        f"{name:<40} {first:>7.0f} {statistics.median(times):>7.0f} {p95(times):>7.0f} "
        f"{target:>7.0f}  "
        f"{'PASS' if ok else 'FAIL'}  {note}",
        flush=True,
    )
    return ok


def export_rate(session: Any, url: str, server: int) -> tuple[int, float, float, float]:
    """Rows, rows/s, the peak RSS (MiB) of gunicorn's processes while streaming ``url``, and
    their largest RSS just before (what the pages served earlier left in them)."""
    workers = tree(server)[1:]
    before = max((rss_kib(pid) for pid in workers), default=0) / 1024
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(
                peak, max(rss_kib(pid) for pid in tree(server)[1:]) if tree(server)[1:] else 0
            )
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    lines = 0
    with session.get(url, stream=True) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_content(chunk_size=65536):
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    rows = max(lines - 1, 0)
    return rows, rows / elapsed, peak / 1024, before


def person_times(url: str, ids: dict[str, Any], count: int) -> tuple[list[float], list[float]]:
    """Seconds of an access report and of an erasure of single contacts, in this process."""
    from sqlalchemy import text

    from core import db
    from core.app import create_app
    from privacy import services as privacy

    app = create_app(_app_config(url))
    reports: list[float] = []
    erasures: list[float] = []
    first, end = ids["contacts_range"]
    with app.app_context():
        for n in range(count):
            # The first contact still there from a point spread over the range (a kept
            # database reused with --url has lost the ones earlier runs erased).
            contact = db.session.scalar(
                text("SELECT min(id) FROM contacts WHERE account_id = :account AND id >= :point"),
                {
                    "account": ids["account"],
                    "point": first + (n + 1) * (end - first) // (count + 2),
                },
            )
            started = time.perf_counter()
            privacy.contact_report(ids["account"], contact)
            reports.append(time.perf_counter() - started)
            db.session.rollback()
            started = time.perf_counter()
            privacy.erase_contact(ids["account"], contact, ids["user"])
            erasures.append(time.perf_counter() - started)
    app.extensions["queue"].stop()
    app.extensions["db_engine"].dispose()
    return reports, erasures


def _ids_file(database: str) -> Path:
    """Where ``--keep`` leaves the seeded ids for a later ``--url`` run."""
    return Path(tempfile.gettempdir()) / f"{database}.ids.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=5, help="timed requests per page")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    parser.add_argument("--url", help="use this seeded database (from --keep) instead")
    parser.add_argument("--only", default="", help="time only the pages matching this regex")
    parser.add_argument(
        "--pages-only", action="store_true", help="no searches, exports, reports or erasures"
    )
    args = parser.parse_args()

    import psycopg
    import requests

    admin = os.environ.get(
        "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"envoy_scale_{os.getpid()}_{secrets.token_hex(3)}"
    url = args.url or f"{admin.rsplit('/', 1)[0]}/{name}"
    if not args.url:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    workdir = Path(tempfile.mkdtemp(prefix="envoy-scale-bench-"))
    server: subprocess.Popen[bytes] | None = None
    failures: list[str] = []
    try:
        if args.url:
            from core.migrate import upgrade

            ids = json.loads(_ids_file(args.url.rsplit("/", 1)[1]).read_text())
            upgrade(url)
            _scheduler_work(url)
        else:
            ids = seed(url, args.contacts, args.events)
            if args.keep:
                _ids_file(name).write_text(json.dumps(ids))
        from core.app import create_app

        config = _app_config(url, workdir)
        app = create_app(config)
        found, skipped = pages(app, ids)
        app.extensions["queue"].stop()
        app.extensions["db_engine"].dispose()

        port = free_port()
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                *("-w", str(args.workers), "-k", "gthread", "--threads", str(args.threads)),
                *("-b", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"),
            ],
            cwd=ROOT,
            env=_environment(config),
        )
        wait_port(port, timeout=120)
        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        log_in(session, base)
        print(
            f"# {os.cpu_count()} cores; gunicorn -w {args.workers} -k gthread --threads "
            f"{args.threads} (PID {server.pid}); {args.requests} timed requests per page after "
            "one warm-up (first), one at a time; times in ms"
        )
        print(f"{'page (endpoint)':<40} {'first':>7} {'p50':>7} {'p95':>7} {'target':>7}  result")
        for endpoint, path in found:
            if args.only and not re.search(args.only, endpoint):
                continue
            times, status = time_get(session, base + path, args.requests)
            target = TARGETS_MS.get(endpoint, DEFAULT_TARGET_MS)
            note = path if status in (200, 302) else f"{path} answered {status}"
            if status >= 400:
                failures.append(f"{endpoint} answered {status}")
            if not row(endpoint, times, target, note):
                failures.append(endpoint)
        if args.pages_only:
            print("over target: " + ", ".join(failures) if failures else "all under target")
            return
        for label, query in (
            ("search by address", "person.4242"),
            ("search by name", "Number 4242"),
            ("search non-ASCII name", "Ångström"),
            ("search, no match", "nobody-here"),
            ("search by attribute (1 in 8)", "attribute=city&value=Kraków"),
            ("search by attribute (1 in 3)", "attribute=plan&value=free"),
            ("search by attribute, rare", "attribute=city&value=Zürich-Nord"),
        ):
            path = (
                f"/contacts?{query}"
                if "=" in query
                else f"/contacts?q={requests.utils.quote(query)}"
            )
            times, status = time_get(session, base + path, args.requests)
            if not row(f"contacts: {label}", times, SEARCH_TARGET_MS, path):
                failures.append(f"search {label}")
        for skipped_endpoint, why in sorted(skipped.items()):
            print(f"skipped {skipped_endpoint}: {why}")

        for kind, path in (
            ("list", f"/lists/{ids['list']}/export.csv"),
            ("segment", f"/segments/{ids['segment']}/export.csv"),
        ):
            rows, rate, rss, before = export_rate(session, base + path, server.pid)
            ok = rate >= EXPORT_TARGET_ROWS and rss < EXPORT_TARGET_RSS_MIB
            print(
                f"{kind} export (CSV): {rows:,} rows at {rate:,.0f} rows/s, web worker peak "
                f"RSS {rss:.0f} MiB ({before:.0f} MiB before it; target >= "
                f"{EXPORT_TARGET_ROWS:,.0f} rows/s, < "
                f"{EXPORT_TARGET_RSS_MIB:.0f} MiB)  {'PASS' if ok else 'FAIL'}",
                flush=True,
            )
            if not ok:
                failures.append(f"{kind} export")

        reports, erasures = person_times(url, ids, 3)
        for label, times in (
            ("access report of one person", reports),
            ("erasure of one person", erasures),
        ):
            ok = max(times) < PERSON_TARGET_S
            print(
                f"{label}: "
                + ", ".join(f"{t:.2f}" for t in times)
                + f" s (target < {PERSON_TARGET_S:.0f} s)  {'PASS' if ok else 'FAIL'}"
            )
            if not ok:
                failures.append(label)
        print("all under target" if not failures else "over target: " + ", ".join(failures))
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if args.keep or args.url:
            print(f"kept {url}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    if os.environ.get("SCALE_BENCH_STRICT") and failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
