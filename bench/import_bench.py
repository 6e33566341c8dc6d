"""Import benchmark: a generated CSV imported through the same code path as the UI.

    .venv/bin/python bench/import_bench.py --rows 1000000 --db sqlite
    .venv/bin/python bench/import_bench.py --rows 1000000 --db postgresql

Steps, in one run and one process:

1. Generate a CSV (email, name, city, plan) with ``--rows`` rows, streamed to disk; about 0.5 %
   of the rows are invalid addresses and 0.2 % repeat an earlier address.
2. The validator alone: read the same file with the importer's reader and run
   :func:`subscribers.normalise.normalise_email` on every address; time it.
3. The import: a fresh database built by the migrations, an account and a list, then
   ``services.create_import`` (the upload, copied in chunks) and ``services.start_import``
   (the mapping step), which enqueues the ``run_import`` actor; the in-process Dramatiq worker
   runs it. Timed from the enqueue to the worker being idle.

Prints rows/s of both, their ratio, and the peak RSS of the process (``ru_maxrss``), which
covers every step. PostgreSQL: a scratch database is created on ``TEST_POSTGRES_ADMIN_URL``
(default postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CITIES = ["Lisbon", "Oslo", "Kraków", "Zürich", "Nairobi", "Osaka", "Lima", "Québec"]
PLANS = ["free", "pro", "team", "=cmd|' /C calc'!A0"]


def generate(path: Path, rows: int) -> None:
    """Write the benchmark CSV without holding it in memory."""
    rng = random.Random(42)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Email", "Name", "City", "Plan"])
        for i in range(rows):
            roll = rng.random()
            if roll < 0.005:
                email = f"broken{i}@@example"
            elif roll < 0.007 and i > 10:
                j = rng.randrange(0, i)
                email = f" User.{j}@Mail{j % 97}.Example.COM "
            else:
                email = f" User.{i}@Mail{i % 97}.Example.COM "
            writer.writerow([email, f"Person {i}", CITIES[i % len(CITIES)], PLANS[i % len(PLANS)]])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def validator_alone(path: Path) -> tuple[int, float]:
    """Rows and seconds for reading the file and running email-validator on every address
    (stripped of surrounding whitespace, as any import must): the validator alone."""
    from email_validator import EmailNotValidError, validate_email

    from subscribers.csvcheck import open_csv

    start = time.perf_counter()
    binary, reader = open_csv(str(path))
    rows = 0
    with binary:
        next(reader)
        for row in reader:
            rows += 1
            with contextlib.suppress(EmailNotValidError):
                validate_email(row[0].strip(), check_deliverability=False, allow_smtputf8=True)
    return rows, time.perf_counter() - start


def normaliser_alone(path: Path) -> tuple[int, float]:
    """Rows and seconds for reading the file and running the platform's normaliser
    (email-validator with its per-domain cache) on every address: checking without writing."""
    from core.errors import ValidationError
    from subscribers.csvcheck import open_csv
    from subscribers.normalise import normalise_email

    start = time.perf_counter()
    binary, reader = open_csv(str(path))
    rows = 0
    with binary:
        next(reader)
        for row in reader:
            rows += 1
            with contextlib.suppress(ValidationError):
                normalise_email(row[0])
    return rows, time.perf_counter() - start


def make_database(backend: str, workdir: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}", None
    import psycopg

    admin = os.environ.get(
        "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"envoy_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rsplit('/', 1)[0]}/{name}", name


def drop_database(name: str) -> None:
    import psycopg

    admin = os.environ.get(
        "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_import(database_url: str, path: Path, workdir: Path) -> tuple[float, float, dict[str, int]]:
    """Upload and import through the services and the worker; (upload s, import s, counts)."""
    from accounts import services as accounts
    from core.app import create_app
    from core.migrate import upgrade
    from subscribers import services

    upgrade(database_url)
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": "",
            "INPROCESS_WORKER": False,
            "IMPORT_DIR": str(workdir / "imports"),
            "MAILDIR_PATH": str(workdir / "outbox"),
            "SECRET_KEYS": ["bench-key-0123456789abcdef"],
            "ADDRESS_HASH_KEY": "bench-address-hash-key",
            "IMPORT_MAX_BYTES": 4 * 1024**3,
        }
    )
    queue = app.extensions["queue"]
    try:
        with app.app_context():
            account, _ = accounts.sign_up(
                "Bench", "Bench", "bench@bench.example", "bench-password", of_age=True
            )
            mailing_list = services.create_list(account.id, "Everyone")
            started = time.perf_counter()
            with path.open("rb") as upload:
                job = services.create_import(account.id, mailing_list.id, upload, path.name, False)
            uploaded = time.perf_counter() - started
            mapping = {"0": "email", "1": "name", "2": "attribute", "3": "attribute"}
            started = time.perf_counter()
            services.start_import(account.id, job.id, mapping, False)
            queue.drain(timeout_ms=6 * 3600 * 1000)
            imported = time.perf_counter() - started
            from core import db

            db.session.expire_all()
            job = services.get_import(account.id, job.id)
            if job.status != "done":
                raise SystemExit(f"import ended {job.status}: {job.error}")
            counts = {
                "rows": job.rows_read,
                "created": job.created_count,
                "updated": job.updated_count,
                "unchanged": job.skipped_count,
                "errors": job.error_count,
            }
    finally:
        queue.stop()
        app.extensions["db_engine"].dispose()
    return uploaded, imported, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envoy-import-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "contacts.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1024**2
        took = time.perf_counter() - started
        print(f"generated {args.rows:,} rows ({size_mb:.1f} MB) in {took:.1f} s")
        rows, validate_s = validator_alone(path)
        validator_rate = rows / validate_s
        print(
            f"validator alone : {rows:,} rows in {validate_s:.1f} s = {validator_rate:,.0f} rows/s"
        )
        rows, normalise_s = normaliser_alone(path)
        normaliser_rate = rows / normalise_s
        print(
            f"normaliser alone: {rows:,} rows in {normalise_s:.1f} s = "
            f"{normaliser_rate:,.0f} rows/s (email-validator + per-domain cache, no database)"
        )
        rss_before = peak_rss_mb()
        url, pg_name = make_database(args.db, workdir)
        try:
            uploaded_s, import_s, counts = run_import(url, path, workdir)
        finally:
            if pg_name:
                drop_database(pg_name)
        import_rate = counts["rows"] / import_s
        print(
            f"import ({args.db}) : {counts['rows']:,} rows in {import_s:.1f} s = "
            f"{import_rate:,.0f} rows/s (upload copy {uploaded_s:.1f} s not included)"
        )
        print(
            f"  created {counts['created']:,}, updated {counts['updated']:,}, "
            f"unchanged {counts['unchanged']:,}, in the error report {counts['errors']:,}"
        )
        print(f"ratio import / validator alone: {import_rate / validator_rate:.0%} (target >= 70%)")
        print(f"ratio import / normaliser alone: {import_rate / normaliser_rate:.0%}")
        from subscribers import importer

        helper_mb = importer.last_helper_peak_kb / 1024
        print(
            f"peak RSS: {peak_rss_mb():.0f} MB in the importing process (before the import: "
            f"{rss_before:.0f} MB), {helper_mb:.0f} MB in the checking helper process; "
            "target < 250 MB"
        )


if __name__ == "__main__":
    main()
