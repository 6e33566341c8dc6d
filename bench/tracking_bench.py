"""Tracking hot-path benchmark: bare WSGI GIF vs the platform's beacon and click, then ingest.

In one run, under the same gunicorn settings, loaded by wrk over loopback in interleaved rounds
(bare, beacon, click, bare, ...; medians reported, so a burst of other load on a shared machine
hits every endpoint alike; the ingest catches up before each bare round):

1. a bare WSGI app answering the same GIF (the ceiling of this machine and server);
2. the platform's beacon ``/o/<token>.gif`` for many messages of a sent campaign;
3. the platform's click ``/c/<token>`` (302 to the signed destination).

The platform runs as in production: PostgreSQL (a database made for the run), its own
redis-server on a free port as the hit buffer and broker, gunicorn web workers, and one
``dramatiq core.worker`` process ingesting the buffer while the load runs. The script prints
requests/s, p50 and p99 and the ratios to the bare app, then waits until every answered hit is
an event (zero lost), how long that took after the load, the ingest rate, and the peak RSS of
the web and ingest processes. A last short phase SIGKILLs the web workers under load and
counts hits answered but never stored: the hard-kill window.

    .venv/bin/python bench/tracking_bench.py [--rounds 3] [--seconds 3] [--recipients 300]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procs import free_port, rss_kib, tree, wait_port  # noqa: E402

BIN = Path(sys.executable).parent
BROWSER_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)


def _cpu_seconds_of(pids: Iterable[int]) -> float:
    """User + system CPU time of these processes (those still alive), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> float:
    """User + system CPU time of a process tree (its live processes), in seconds."""
    return _cpu_seconds_of(tree(root))


def _is_postgres(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def wait_idle(pid: int, busy: float = 0.05, timeout: float = 60) -> None:
    """Wait until the process tree ``pid`` uses under ``busy`` of a core over half a second
    (the worker has written its backlog and is waiting for work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < busy * 0.5:
            return


def postgres_cpu_seconds() -> float:
    """User + system CPU time of every PostgreSQL process on the machine (its backends do
    the ingest's writes), in seconds."""
    return _cpu_seconds_of(
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _is_postgres(entry.name)
    )


class Peak:
    """Peak resident memory of process trees, sampled (VmHWM is each process's own peak)."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}

    def sample(self, role: str, root: int) -> int:
        pids = tree(root)
        current = max((rss_kib(p) for p in pids), default=0)
        peak = max((rss_kib(p, "VmHWM") for p in pids), default=0)
        self.peaks[role] = max(self.peaks.get(role, 0), peak)
        return current


def parse_wrk(output: str) -> dict[str, float]:
    def duration(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "p50": duration(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1)),  # type: ignore[union-attr]
        "p99": duration(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1)),  # type: ignore[union-attr]
    }
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["bad"] = float(bad.group(1)) if bad else 0.0
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result["socket_errors"] = float(sum(int(g) for g in errors.groups())) if errors else 0.0
    return result


def lua_script(path: Path, paths: list[str]) -> Path:
    quoted = ",\n".join(f'  "{p}"' for p in paths)
    path.write_text(
        f"local paths = {{\n{quoted}\n}}\nlocal i = 0\n"
        f'wrk.headers["User-Agent"] = "{BROWSER_UA}"\n'
        "request = function()\n  i = i + 1\n"
        "  return wrk.format(nil, paths[(i % #paths) + 1])\nend\n"
    )
    return path


def run_wrk(url: str, script: Path | None, seconds: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    try:
        return parse_wrk(output)
    except (AttributeError, KeyError) as exc:
        raise RuntimeError(f"could not read wrk's output:\n{output}") from exc


def gunicorn(module: str, port: int, env: dict[str, str], workers: int, threads: int) -> Any:
    return subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--graceful-timeout",
            "10",
            module,
        ],
        cwd=ROOT,
        env=env,
    )


def stop(process: Any, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="load per endpoint per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--recipients", type=int, default=300)
    parser.add_argument("--drain-timeout", type=int, default=120)
    parser.add_argument(
        "--worker-threads", type=int, default=8, help="threads of the dramatiq worker (README: 8)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("redis-server") is None:
        sys.exit("needs wrk and redis-server (apt-get install wrk redis-server)")

    workdir = Path(tempfile.mkdtemp(prefix="envoy-tracking-bench-"))
    import psycopg

    admin = os.environ.get(
        "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    db_name = f"envoy_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    database_url = admin.rsplit("/", 1)[0] + f"/{db_name}"
    redis_port = free_port()
    redis_server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            # README's production section: the Redis that buffers hits runs with AOF.
            "--appendonly",
            "yes",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    processes: list[Any] = [redis_server]
    try:
        wait_port(redis_port)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "REDIS_NAMESPACE": "bench",
            "SECRET_KEYS": "bench-key-0123456789abcdef0123456789",
            "ADDRESS_HASH_KEY": "bench-address-hash-key",
            "BASE_URL": "http://127.0.0.1",
            "MAILDIR_PATH": str(workdir / "outbox"),
            "TRACKING_SPOOL_DIR": str(workdir / "spool"),
            "VAR_DIR": str(workdir),
        }
        os.environ.update(env)
        beacon_paths, click_paths, count_events = prepare(database_url, args.recipients, workdir)

        peak = Peak()
        print(
            f"# {os.cpu_count()} cores; gunicorn -w {args.workers} -k gthread --threads "
            f"{args.threads}; wrk -t2 -c{args.connections}; {args.rounds} rounds of "
            f"{args.seconds} s per endpoint, interleaved; {args.recipients} recipients, "
            f"identified tracking, PostgreSQL + Redis (appendonly yes), dramatiq core.worker -p 1 "
            f"-t {args.worker_threads} at normal priority on every queue"
        )
        bare_port = free_port()
        bare = gunicorn("bench.bare_gif:app", bare_port, env, args.workers, args.threads)
        processes.append(bare)
        ingest = subprocess.Popen(
            # README's production worker, scaled to one process on this 2-core machine (README:
            # --processes 2 --threads 8 per node): every queue, normal priority, prefetch 1.
            [
                *(str(BIN / "dramatiq"), "core.worker"),
                *("--processes", "1", "--threads", str(args.worker_threads)),
            ],
            cwd=ROOT,
            env={**env, "dramatiq_queue_prefetch": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(ingest)
        port = free_port()
        web = gunicorn("wsgi:app", port, env, args.workers, args.threads)
        processes.append(web)
        wait_port(bare_port)
        wait_port(port)
        time.sleep(2)
        base = f"http://127.0.0.1:{port}"
        scripts = {
            "bare GIF": (f"http://127.0.0.1:{bare_port}", beacon_paths),
            "beacon": (base, beacon_paths),
            "click": (base, click_paths),
        }
        lua = {
            name: lua_script(workdir / f"{i}.lua", paths)
            for i, (name, (_, paths)) in enumerate(scripts.items())
        }
        answered = 0.0
        ingest_cpu_start = cpu_seconds(ingest.pid)
        for name, (url, paths) in scripts.items():  # warm up
            warm = run_wrk(url + paths[0], lua[name], 1, args.connections)
            if name != "bare GIF":
                answered += warm["requests"] - warm["bad"]
        rss_before = {
            "web": peak.sample("web", web.pid),
            "ingest": peak.sample("ingest", ingest.pid),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in scripts}
        load_started = time.monotonic()
        for _round in range(args.rounds):
            for name, (url, paths) in scripts.items():
                if name == "bare GIF":
                    # The baseline never shares the CPU with the ingest catching up: every
                    # answered hit stored, and the worker idle.
                    waited = time.monotonic()
                    while count_events() < answered and time.monotonic() - waited < 60:
                        time.sleep(0.1)
                    wait_idle(ingest.pid)
                server = bare.pid if name == "bare GIF" else web.pid
                cpu_before = cpu_seconds(server) + cpu_seconds(redis_server.pid)
                background_before = cpu_seconds(ingest.pid) + postgres_cpu_seconds()
                result = run_wrk(url + paths[0], lua[name], args.seconds, args.connections)
                cpu_used = cpu_seconds(server) + cpu_seconds(redis_server.pid) - cpu_before
                background = cpu_seconds(ingest.pid) + postgres_cpu_seconds() - background_before
                result["cpu_us"] = 1e6 * cpu_used / max(result["requests"], 1)
                result["background_us"] = 1e6 * background / max(result["requests"], 1)
                runs[name].append(result)
                if name != "bare GIF":
                    answered += result["requests"] - result["bad"]
                peak.sample("web", web.pid)
                peak.sample("ingest", ingest.pid)
        load_ended = time.monotonic()
        rss_after_load = {
            "web": peak.sample("web", web.pid),
            "ingest": peak.sample("ingest", ingest.pid),
        }

        stored = count_events()
        while stored < answered and time.monotonic() - load_ended < args.drain_timeout:
            time.sleep(0.2)
            peak.sample("ingest", ingest.pid)
            stored = count_events()
        drained = time.monotonic()
        ingest_cpu = cpu_seconds(ingest.pid) - ingest_cpu_start

        def median(name: str, key: str) -> float:
            return float(statistics.median(r[key] for r in runs[name]))

        bare_rps = median("bare GIF", "rps")
        print(
            f"{'endpoint':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'of bare':>8}"
            f" {'non-2xx/3xx':>12} {'CPU us/req':>10} {'of bare':>8} {'ingest+PG':>9}"
            "   (medians; req/s of each round)"
        )
        bare_cpu = median("bare GIF", "cpu_us")
        for name in runs:
            rps = median(name, "rps")
            rounds = ", ".join(f"{r['rps']:.0f}" for r in runs[name])
            print(
                f"{name:<10} {rps:>9.0f} {median(name, 'p50'):>8.2f} {median(name, 'p99'):>8.2f} "
                f"{100 * rps / bare_rps:>7.1f}% {sum(r['bad'] for r in runs[name]):>12.0f}"
                f" {median(name, 'cpu_us'):>10.0f} {100 * bare_cpu / median(name, 'cpu_us'):>7.1f}%"
                f" {median(name, 'background_us'):>9.0f}   ({rounds})"
            )
        for name in ("beacon", "click"):
            # Each round's ratio to the bare round just before it: drift of the machine between
            # rounds cancels; the spread is what other load does within a round.
            ratios = sorted(
                100 * r["rps"] / b["rps"] for r, b in zip(runs[name], runs["bare GIF"], strict=True)
            )
            print(
                f"{name} / bare per round: min {ratios[0]:.1f} %, median "
                f"{statistics.median(ratios):.1f} %, max {ratios[-1]:.1f} % "
                f"({len(ratios)} rounds); p99 min/median/max "
                + "/".join(
                    f"{v:.1f}"
                    for v in (
                        min(r["p99"] for r in runs[name]),
                        median(name, "p99"),
                        max(r["p99"] for r in runs[name]),
                    )
                )
                + " ms"
            )
        print(
            f"answered hits (responses wrk read): {answered:.0f}; stored events: {stored}; "
            f"lost: {max(answered - stored, 0):.0f}"
            + (
                f" ({stored - answered:.0f} more stored: requests the server answered after wrk"
                " stopped reading, at most one per connection per run)"
                if stored > answered
                else ""
            )
        )
        print(
            f"backlog written {drained - load_ended:.1f} s after the load ended; "
            f"{stored / (drained - load_started):.0f} events/s recorded over the run"
        )
        print(
            "CPU us/req: server CPU (gunicorn + redis-server) per answered request, a figure"
            " other load on the machine does not skew; 'of bare' = bare CPU / this CPU;"
            " ingest+PG: CPU of the ingest and of PostgreSQL during the round, us per request"
        )
        print(
            f"ingest CPU: {1e6 * ingest_cpu / max(stored, 1):.0f} us per stored event"
            " (+ PostgreSQL's own)"
        )
        print(
            f"RSS MiB (before load -> after load; peak): web worker "
            f"{rss_before['web'] / 1024:.0f} -> {rss_after_load['web'] / 1024:.0f}; "
            f"{peak.peaks['web'] / 1024:.0f}, ingest {rss_before['ingest'] / 1024:.0f} -> "
            f"{rss_after_load['ingest'] / 1024:.0f}; {peak.peaks['ingest'] / 1024:.0f}"
        )

        # The hard-kill window: SIGKILL every web worker in the middle of a load.
        before = count_events()
        script = lua_script(workdir / "kill.lua", beacon_paths)
        killer = subprocess.Popen(
            [
                "wrk",
                "-t2",
                f"-c{args.connections}",
                "-d3s",
                "--latency",
                "-s",
                str(script),
                base + beacon_paths[0],
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        for pid in tree(web.pid)[1:]:
            os.kill(pid, signal.SIGKILL)
        output, _ = killer.communicate(timeout=30)
        killed = parse_wrk(output)
        answered_kill = killed["requests"] - killed["bad"]
        deadline = time.monotonic() + 30
        while count_events() - before < answered_kill and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        stored_kill = count_events() - before
        print(
            f"hard kill of every web worker under load: {answered_kill:.0f} answered, "
            f"{stored_kill} stored, {max(answered_kill - stored_kill, 0):.0f} lost "
            f"(gunicorn restarts the workers; {args.connections} connections in flight)"
        )
        stop(web)
        stop(ingest)
    finally:
        for process in reversed(processes):
            stop(process)
        from core.db import make_engine  # noqa: F401 - keep imports light above

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def prepare(database_url: str, recipients: int, workdir: Path) -> tuple[list[str], list[str], Any]:
    """Migrate, send a campaign to ``recipients`` contacts (Maildir), return hit paths."""
    from sqlalchemy import func, select

    from accounts import services as accounts
    from campaigns import services as campaigns
    from campaigns.models import Link, Message
    from core import db
    from core.app import create_app
    from core.migrate import upgrade
    from subscribers import services as subscribers
    from tracking import urls
    from tracking.models import TrackingEvent

    upgrade(database_url)
    app = create_app(
        {
            "REDIS_URL": "",
            "INPROCESS_WORKER": False,
            "TESTING": True,
            "REQUIRE_VERIFIED_SENDER": False,  # the bench measures tracking, not sender set-up
        }
    )
    with app.app_context():
        account, _user = accounts.sign_up(
            "Bench", "Bench", "bench@bench.example", "bench password 123", of_age=True
        )
        accounts.update_general_settings(account.id, "Bench", "1 Bench Street")
        accounts.update_privacy_settings(account.id, True, "truncate", 180)
        mailing_list = subscribers.create_list(account.id, "Bench")
        for i in range(recipients):
            subscribers.add_contact_to_list(account.id, mailing_list.id, f"r{i}@example.org")
        campaign = campaigns.save_campaign(
            account.id,
            campaign_id=None,
            name="Bench",
            subject="Bench",
            from_name="Bench",
            from_email="bench@bench.example",
            list_id=mailing_list.id,
            html_body='<html><body><a href="https://shop.example/a">A</a> '
            '<a href="https://shop.example/b?x=1">B</a></body></html>',
        )
        campaigns.start(account.id, campaign.id)
    app.extensions["queue"].drain()
    with app.app_context():
        messages = list(
            db.session.scalars(select(Message.id).where(Message.campaign_id == campaign.id))
        )
        links = list(
            db.session.execute(select(Link.id, Link.url).where(Link.campaign_id == campaign.id))
        )
        beacons = [urls.open_url(campaign.id, m).removeprefix("http://127.0.0.1") for m in messages]
        clicks = [
            urls.click_url(campaign.id, link_id, url, m).removeprefix("http://127.0.0.1")
            for m in messages
            for link_id, url in links
        ]
        db.session.remove()
    app.extensions["queue"].stop()

    def count() -> int:
        with app.app_context():
            value = db.session.scalar(select(func.count()).select_from(TrackingEvent))
            db.session.remove()
            return int(value or 0)

    return beacons, clicks, count


if __name__ == "__main__":
    main()
