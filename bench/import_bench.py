"""Import benchmark: a generated CSV imported through the same code path as the UI, in a real
``dramatiq core.worker`` process, against email-validator alone, in interleaved rounds.

    .venv/bin/python bench/import_bench.py --rows 1000000 --db sqlite --rounds 3
    .venv/bin/python bench/import_bench.py --rows 1000000 --db postgresql --rounds 3

1. Generate a CSV (email, name, city, plan) with ``--rows`` rows, streamed to disk; about 0.5 %
   of the rows are invalid addresses and 0.2 % repeat an earlier address.
2. Start README's production worker, scaled to this 2-core machine: ``dramatiq core.worker
   --processes 1 --threads 8`` (README: 2 processes of 8 threads per node; one import runs in
   one process) with ``dramatiq_queue_prefetch=1``, on its own redis-server, a database built by
   the migrations (a scratch PostgreSQL database on ``TEST_POSTGRES_ADMIN_URL``, dropped
   afterwards, or a SQLite file).
3. Each round, interleaved so that drift of a shared machine hits both sides of a ratio alike:
   the validator alone (the importer's reader and email-validator on every address, in this
   process), then the import of the same file for a new account (``services.create_import``,
   the upload, and ``services.start_import``, the mapping step, which enqueues ``run_import``
   for the worker), timed from the enqueue until the job is done.

Prints each round's rates and ratio, their min/median/max, and the peak RSS of the worker
process and of its checking helper (VmHWM, sampled while importing).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DRAMATIQ = str(Path(sys.executable).parent / "dramatiq")

from bench.procs import rss_kib, tree  # noqa: E402

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


def import_round(
    config: dict[str, Any], path: Path, number: int, worker_pid: int, peaks: dict[int, int]
) -> tuple[float, dict[str, int]]:
    """Upload and import for a new account through the services; the worker runs it. Returns
    (import seconds, counts); ``peaks`` gets each worker process's VmHWM (KiB) by pid."""
    from accounts import services as accounts
    from core import db
    from core.app import create_app
    from subscribers import services

    app = create_app(config)
    try:
        with app.app_context():
            account, _ = accounts.sign_up(
                "Bench", "Bench", f"bench{number}@bench.example", "bench-password", of_age=True
            )
            mailing_list = services.create_list(account.id, "Everyone")
            with path.open("rb") as upload:
                job = services.create_import(account.id, mailing_list.id, upload, path.name, False)
            mapping = {"0": "email", "1": "name", "2": "attribute", "3": "attribute"}
            started = time.perf_counter()
            services.start_import(account.id, job.id, mapping, False)
            while True:
                for pid in tree(worker_pid)[1:]:
                    peaks[pid] = max(peaks.get(pid, 0), rss_kib(pid, "VmHWM"))
                db.session.expire_all()
                job = services.get_import(account.id, job.id)
                if job.status in ("done", "failed"):
                    break
                time.sleep(0.05)
            imported = time.perf_counter() - started
            if job.status != "done":
                raise SystemExit(f"import ended {job.status}: {job.error}")
            counts = {
                "rows": job.rows_read,
                "created": job.created_count,
                "updated": job.updated_count,
                "unchanged": job.skipped_count,
                "errors": job.error_count,
            }
            db.session.remove()
    finally:
        app.extensions["queue"].stop()
        app.extensions["db_engine"].dispose()
    return imported, counts


def spread(values: list[float], unit: str = "") -> str:
    ordered = sorted(values)
    return (
        f"min {ordered[0]:,.0f}{unit}, median {statistics.median(ordered):,.0f}{unit}, "
        f"max {ordered[-1]:,.0f}{unit}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (README: 8)")
    args = parser.parse_args()
    from core.migrate import upgrade
    from tests.campaigns.fault_harness import OwnRedis, Worker, worker_env

    with tempfile.TemporaryDirectory(prefix="envoy-import-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "contacts.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1024**2
        took = time.perf_counter() - started
        print(f"generated {args.rows:,} rows ({size_mb:.1f} MB) in {took:.1f} s")
        redis = OwnRedis().start()
        url, pg_name = make_database(args.db, workdir)
        worker: Worker | None = None
        try:
            upgrade(url)
            config: dict[str, Any] = {
                "DATABASE_URL": url,
                "REDIS_URL": redis.url,
                "REDIS_NAMESPACE": "import-bench",
                "INPROCESS_WORKER": False,
                "IMPORT_DIR": str(workdir / "imports"),
                "MAILDIR_PATH": str(workdir / "outbox"),
                "VAR_DIR": str(workdir / "var"),
                "SECRET_KEYS": ["bench-key-0123456789abcdef"],
                "ADDRESS_HASH_KEY": "bench-address-hash-key",
                "IMPORT_MAX_BYTES": 4 * 1024**3,
            }
            log = workdir / "worker.log"
            env = worker_env({**config, "INPROCESS_WORKER": "false"})
            env["dramatiq_queue_prefetch"] = "1"
            worker = Worker(env, log, threads=args.threads)
            worker.process = subprocess.Popen(
                [DRAMATIQ, "core.worker", "--processes", "1", "--threads", str(args.threads)],
                cwd=str(ROOT),
                env=env,
                stdout=log.open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            deadline = time.monotonic() + 90
            while "ready for action" not in log.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError(log.read_text())
                time.sleep(0.2)
            print(
                f"# {os.cpu_count()} cores; {args.db}; dramatiq core.worker --processes 1 "
                f"--threads {args.threads} (prefetch 1), its own redis-server; {args.rounds} "
                "interleaved rounds (validator alone, then the import for a new account)",
                flush=True,
            )
            peaks: dict[int, int] = {}
            validator_rates: list[float] = []
            import_rates: list[float] = []
            for number in range(args.rounds):
                rows, validate_s = validator_alone(path)
                validator_rates.append(rows / validate_s)
                import_s, counts = import_round(config, path, number, worker.process.pid, peaks)
                import_rates.append(counts["rows"] / import_s)
                print(
                    f"round {number + 1}: validator alone {validator_rates[-1]:,.0f} rows/s, "
                    f"import {import_rates[-1]:,.0f} rows/s = "
                    f"{100 * import_rates[-1] / validator_rates[-1]:.0f} % (created "
                    f"{counts['created']:,}, unchanged {counts['unchanged']:,}, in the error "
                    f"report {counts['errors']:,})",
                    flush=True,
                )
            ratios = [100 * i / v for i, v in zip(import_rates, validator_rates, strict=True)]
            print(f"ratio import / validator alone: {spread(ratios, ' %')} (target >= 70 %)")
            print(f"validator alone: {spread(validator_rates, ' rows/s')}")
            print(f"import: {spread(import_rates, ' rows/s')}")
            ordered = sorted(peaks.values(), reverse=True)
            print(
                f"peak RSS: {ordered[0] / 1024:.0f} MiB in the worker process"
                + (
                    f", {ordered[1] / 1024:.0f} MiB in the checking helper"
                    if len(ordered) > 1
                    else ""
                )
                + " (largest VmHWM of the worker's processes); target < 250 MB"
            )
        finally:
            if worker is not None:
                worker.stop()
            redis.kill()
            if pg_name:
                drop_database(pg_name)


if __name__ == "__main__":
    main()
