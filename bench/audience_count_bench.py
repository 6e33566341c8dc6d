"""How long the "Will be sent to N recipients" count takes on a large audience (PostgreSQL).

    .venv/bin/python bench/audience_count_bench.py --contacts 1000000
    .venv/bin/python bench/audience_count_bench.py --contacts 100000 --verify

A scratch database (``TEST_POSTGRES_ADMIN_URL``, default postgresql://postgres@127.0.0.1:5432/
postgres) is built by the migrations and filled by SQL: ``--contacts`` contacts on list A, a
tenth of them also on list B (duplicates), 1 % unsubscribed from A, 0.5 % restricted, 1 %
suppressed by the account, as many unrelated platform-wide suppressions, 0.1 % non-ASCII
addresses, one blocked domain. Then :func:`campaigns.audience_count.count_audience` is timed
(best of three), beside a plain COUNT of the audience query. ``--verify`` also counts with
the sender's Python rules over every address (``audience_count._suppressed_in_python`` on the
whole audience) and checks both agree; it prints that time too, which is what a count without
SQL hashing would cost.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--verify", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = parser.parse_args()

    import psycopg
    from sqlalchemy import func, select, text

    admin = os.environ.get(
        "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"envoy_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rsplit('/', 1)[0]}/{name}"
    try:
        from accounts import services as accounts
        from campaigns import audience_count
        from core import db
        from core.app import create_app
        from core.migrate import upgrade
        from subscribers import services as subscribers
        from subscribers.audience import audience_contact_ids
        from subscribers.models import Contact
        from subscribers.suppression import suppress

        upgrade(url)
        app = create_app(
            {
                "DATABASE_URL": url,
                "REDIS_URL": "",
                "INPROCESS_WORKER": False,
                "SECRET_KEYS": ["bench-key-0123456789abcdef"],
                "ADDRESS_HASH_KEY": "bench-address-hash-key",
                "ENGINE_HASH_KEY": "bench-engine-hash-key",
            }
        )
        with app.app_context():
            account, _ = accounts.sign_up(
                "Bench", "Bench", "bench@bench.example", "pw-bench-123", of_age=True
            )
            list_a = subscribers.create_list(account.id, "A").id
            list_b = subscribers.create_list(account.id, "B").id
            n = args.contacts
            started = time.perf_counter()
            db.session.execute(
                text(
                    "INSERT INTO contacts (account_id, email, name, attributes, source, "
                    "created_at, updated_at) SELECT :account, CASE WHEN i % 1000 = 7 "
                    "THEN 'zoë' || i || '@example.org' WHEN i % 5000 = 3 THEN 'p' || i || "
                    "'@mail.blocked.example' ELSE 'Person.' || i || '@example.org' END, "
                    "'Person ' || i, '{}', 'bench', now(), now() FROM generate_series(1, :n) i"
                ),
                {"account": account.id, "n": n},
            )
            db.session.execute(
                text(
                    "INSERT INTO subscriptions (list_id, contact_id, status, created_at, "
                    "updated_at) SELECT :a, id, CASE WHEN id % 100 = 1 THEN 'unsubscribed' "
                    "ELSE 'subscribed' END, now(), now() FROM contacts WHERE account_id = :acc"
                ),
                {"a": list_a, "acc": account.id},
            )
            db.session.execute(
                text(
                    "INSERT INTO subscriptions (list_id, contact_id, status, created_at, "
                    "updated_at) SELECT :b, id, 'subscribed', now(), now() FROM contacts "
                    "WHERE account_id = :acc AND id % 10 = 0"
                ),
                {"b": list_b, "acc": account.id},
            )
            db.session.execute(text("UPDATE contacts SET restricted_at = now() WHERE id % 200 = 5"))
            emails = db.session.scalars(select(Contact.email).where(Contact.id % 100 == 50))
            for email in list(emails):
                suppress(account.id, email, "manual")
            for i in range(n // 100):
                suppress(None, f"stranger{i}@elsewhere.example", "erased")
            subscribers.block_domain("blocked.example")
            db.session.commit()
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            print(f"filled {n:,} contacts in {time.perf_counter() - started:.1f} s")

            ids = audience_contact_ids(account.id, [list_a, list_b]).subquery()
            plain = []
            for _ in range(3):
                started = time.perf_counter()
                db.session.scalar(select(func.count()).select_from(ids))
                plain.append(time.perf_counter() - started)
                db.session.rollback()
            print(f"the audience query alone (COUNT, no suppression): best {min(plain):.2f} s")
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                count = audience_count.count_audience(account.id, [list_a, list_b])
                timings.append(time.perf_counter() - started)
                db.session.rollback()
            print(
                f"count_audience: {count.recipients:,} recipients, {count.suppressed:,} "
                f"suppressed; best {min(timings):.2f} s, runs "
                + ", ".join(f"{t:.2f}" for t in timings)
            )
            if args.verify:
                rows = select(Contact.id, Contact.email).join(ids, ids.c.id == Contact.id)
                started = time.perf_counter()
                in_python = audience_count._suppressed_in_python(account.id, rows)
                print(
                    f"the Python rules over every address: {in_python:,} suppressed in "
                    f"{time.perf_counter() - started:.2f} s"
                )
                assert in_python == count.suppressed, (in_python, count.suppressed)
                print("both agree")
        app.extensions["queue"].stop()
        app.extensions["db_engine"].dispose()
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
