"""bench/scale_bench.py runs end to end on small data (a smoke test, issue 17): it seeds its own
PostgreSQL database with COPY, serves the app with gunicorn, logs in through the form, times
every member page it lists from the url_map (none answering an error), exports and erases,
and drops its database and stops its server afterwards. Its timings are not asserted: the
targets are for the full run (README, "Benchmarks")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests import services_available

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.postgres
def test_the_scale_benchmark_runs_small() -> None:
    services_available.require("postgres")
    with psycopg.connect(services_available.POSTGRES_ADMIN_URL, autocommit=True) as conn:
        before = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale_bench.py"),
            *("--contacts", "3000", "--events", "30000", "--requests", "1"),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEST_POSTGRES_ADMIN_URL": services_available.POSTGRES_ADMIN_URL,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout
    assert re.search(r"seeded 3,000 contacts, 3,000 messages, 30,000 events in [\d.]+ s", output)
    timed = re.findall(r"^(\S+(?: \S+)?)\s+\d+\s+\d+\s+\d+\s+\d+\s+(PASS|FAIL)", output, re.M)
    endpoints = {name for name, _ in timed}
    for page in ("campaigns.progress", "subscribers.list_detail", "campaigns.dashboard"):
        assert page in endpoints, output
    assert len(endpoints) > 30, output
    assert "answered" not in output, output  # every page answered 200 or a redirect
    assert re.search(r"list export \(CSV\): 3,000 rows", output), output
    assert re.search(r"segment export \(CSV\): 3,000 rows", output), output
    assert "erasure of one person:" in output and "access report of one person:" in output
    assert "skipped subscribers.list_export" in output
    with psycopg.connect(services_available.POSTGRES_ADMIN_URL, autocommit=True) as conn:
        after = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert {name for name in after - before if name.startswith("envoy_scale_")} == set()
