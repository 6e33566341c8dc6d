"""Benchmark: a personalised campaign with rewritten links sent by real Dramatiq workers to a
local SMTP sink, against a bare smtplib loop sending pre-built messages of the same size over
the same number of connections to the same sink, in interleaved rounds.

    .venv/bin/python bench/send_bench.py --recipients 10000 --rounds 3
    .venv/bin/python bench/send_bench.py --recipients 100000 --rounds 3

Production configuration (README, "Production") scaled to this 2-core machine: ``dramatiq
core.worker --processes 2 --threads 8`` with ``dramatiq_queue_prefetch=1`` (README runs 2
processes of 8 threads per node; here the node is this machine), PostgreSQL, its own
redis-server, ``--connections`` SMTP connections (``SEND_CONNECTIONS``). Two sinks, each in its
own process: ``fast`` (``bench/fast_sink.py``: asyncio, PIPELINING and CHUNKING like Postfix,
so the platform sends BDAT and smtplib sends DATA) and ``plain`` (``bench/plain_sink.py``:
aiosmtpd's defaults, no CHUNKING, so both send DATA and the ratio is our overhead alone).
Each round sends a new campaign to the whole list, then the bare loop the same number of
messages, per sink (platform, bare, platform, bare, ...), so drift of a shared machine hits
both sides of a ratio alike. Prints per round and min/median/max: messages/s, the ratio, and
the CPU per message of the workers (+ PostgreSQL, Redis, the sink) beside the bare loop's
(+ the sink); and the workers' peak RSS. All on 127.0.0.1, all stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.campaigns.fault_harness import (  # noqa: E402
    DRAMATIQ,
    OwnRedis,
    Worker,
    free_port,
    worker_env,
)

POSTGRES_ADMIN = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
KEYS = ["bench-key-0123456789abcdef-0123456789"]


def body_html(target_kb: int = 20) -> str:
    """About ``target_kb`` KB of newsletter HTML: a personalised greeting and city, a
    personalised footer line, and 10 distinct tracked links repeated through the stories."""
    block = (
        '<tr><td style="padding:16px;font-family:Arial,sans-serif;font-size:15px;color:#333">'
        "<h2>Story {n}: what is new this week</h2><p>Here is a long paragraph of newsletter "
        "text that talks about products, events and offers, written to look like a real "
        "campaign body with enough words to make the message realistic in size and shape.</p>"
        '<p><a href="https://shop.example/story/{n}?utm_source=news&amp;utm_medium=email" '
        'style="color:#3b5bdb">Read story {n}</a></p></td></tr>\n'
    )
    parts = [
        '<html><body><table width="100%" cellpadding="0" cellspacing="0">'
        "<tr><td><h1>Hello {{ contact.first_name }}!</h1><p>This week in "
        "{{ contact.attributes.city }}:</p></td></tr>\n"
    ]
    n = 0
    while sum(len(p) for p in parts) < target_kb * 1024:
        parts.append(block.format(n=n % 10))
        n += 1
    parts.append("<tr><td>Sent to {{ contact.email }}.</td></tr></table></body></html>")
    return "".join(parts)


def sink_stats(port: int) -> tuple[int, int]:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        _code, text = smtp.docmd("XSTAT")
        messages, size = text.decode().split()
        return int(messages), int(size)


def create_database(kind: str, tmp: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.sqlite3'}", None
    import psycopg

    name = f"envoy_bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


def populate(recipients: int) -> tuple[int, int]:
    """An account, a list of ``recipients`` contacts, a campaign; returns (account, campaign)."""
    from sqlalchemy import insert, select

    from accounts import services as accounts
    from campaigns import services
    from core import db
    from subscribers import services as subscribers
    from subscribers.models import Contact, Subscription

    account, _user = accounts.sign_up(
        "Bench Shop", "Owner", "owner@bench.example", "x" * 12, of_age=True
    )
    accounts.update_general_settings(account.id, "Bench Shop", "1 Bench Street\n1000 Loadtown")
    mailing_list = subscribers.create_list(account.id, "Everyone")
    cities = ["Paris", "Lyon", "Berlin", "Oslo", "Rome"]
    for start in range(0, recipients, 5000):
        rows = [
            {
                "account_id": account.id,
                "email": f"user{n:07d}@example{n % 50}.org",
                "name": f"User{n} Person",
                "attributes": {"city": cities[n % 5]},
                "source": "bench",
            }
            for n in range(start, min(recipients, start + 5000))
        ]
        db.session.execute(insert(Contact), rows)
        db.session.commit()
    ids = list(db.session.scalars(select(Contact.id).where(Contact.account_id == account.id)))
    for start in range(0, len(ids), 5000):
        db.session.execute(
            insert(Subscription),
            [{"list_id": mailing_list.id, "contact_id": i} for i in ids[start : start + 5000]],
        )
        db.session.commit()
    campaign = services.save_campaign(
        account.id,
        campaign_id=None,
        name="Bench",
        subject="News for {{ contact.first_name }}",
        from_name="Bench Shop",
        from_email="news@bench.example",
        html_body=body_html(),
        list_ids=[mailing_list.id],
    )
    return account.id, campaign.id


def peak_rss_kb(pids: list[int]) -> int:
    """The largest VmHWM (peak resident set) among ``pids``."""
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak


def cpu_by_role(roles: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each role's processes, plus every
    PostgreSQL and redis-server process of the machine as ``database`` and ``redis``."""
    ticks = os.sysconf("SC_CLK_TCK")

    def used(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / ticks

    found = {role: sum(used(pid) for pid in pids) for role, pids in roles.items()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        role = {"postgres": "database", "redis-server": "redis"}.get(name)
        if role is not None:
            found[role] = found.get(role, 0.0) + used(int(entry.name))
    return found


def worker_pids(main_pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    except OSError:
        children = []
    return [int(c) for c in children]


def prebuilt_messages(campaign_id: int, count: int = 50) -> list[bytes]:
    """Wire messages rendered like the campaign's (same size), built before timing."""
    from campaigns.models import Campaign
    from campaigns.render import Recipient, render_message
    from campaigns.sending import rendering
    from core import db

    campaign = db.session.get(Campaign, campaign_id)
    assert campaign is not None
    view = rendering.campaign_view(campaign)
    return [
        render_message(
            view, Recipient(n + 1, f"user{n:07d}@example.org", f"User{n} Person", {"city": "Oslo"})
        ).wire
        for n in range(count)
    ]


def bare_loop(port: int, messages: list[bytes], total: int, connections: int) -> float:
    """Send ``total`` pre-built messages over ``connections`` smtplib connections; seconds."""
    per_connection = [
        total // connections + (1 if i < total % connections else 0) for i in range(connections)
    ]

    def run(count: int) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        smtp.ehlo()
        for n in range(count):
            smtp.sendmail(
                "news@bench.example", [f"user{n:07d}@example.org"], messages[n % len(messages)]
            )
        smtp.quit()

    threads = [threading.Thread(target=run, args=(count,)) for count in per_connection]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


SINKS = {"fast": "fast_sink.py", "plain": "plain_sink.py"}


def start_sink_kind(kind: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / SINKS[kind]), str(port)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process, port


def start_workers(config: dict[str, Any], log: Path, processes: int, threads: int) -> Worker:
    """README's production worker: ``dramatiq core.worker`` on every queue, prefetch 1."""
    worker = Worker(worker_env(config), log, threads=threads)
    worker.env["PYTHONUNBUFFERED"] = "1"
    # One job at a time per process, so the send chains spread over the processes.
    worker.env["dramatiq_queue_prefetch"] = "1"
    worker.process = subprocess.Popen(
        [DRAMATIQ, "core.worker", "--processes", str(processes), "--threads", str(threads)],
        cwd=str(ROOT),
        env=worker.env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while log.read_text().count("ready for action") < processes:
        if time.monotonic() > deadline:
            raise RuntimeError(log.read_text())
        time.sleep(0.2)
    return worker


def spread(values: list[float], unit: str = "", digits: int = 0) -> str:
    ordered = sorted(values)
    return (
        f"min {ordered[0]:.{digits}f}{unit}, median {statistics.median(ordered):.{digits}f}"
        f"{unit}, max {ordered[-1]:.{digits}f}{unit}"
    )


def platform_round(
    account_id: int, list_id: int, port: int, workers: Worker, sink: Any, recipients: int
) -> dict[str, float]:
    """Send a new campaign to the list; messages/s and CPU per message (us) by role."""
    from sqlalchemy import select

    from campaigns import services
    from campaigns.models import Campaign
    from core import db

    campaign = services.save_campaign(
        account_id,
        campaign_id=None,
        name="Bench",
        subject="News for {{ contact.first_name }}",
        from_name="Bench Shop",
        from_email="news@bench.example",
        html_body=body_html(),
        list_ids=[list_id],
    )
    assert workers.process is not None
    roles = {"workers": worker_pids(workers.process.pid), "sink": [sink.pid]}
    before, _ = sink_stats(port)
    cpu_before = cpu_by_role(roles)
    started = time.perf_counter()
    services.start(account_id, campaign.id)
    while True:
        db.session.expire_all()
        status = db.session.scalar(select(Campaign.status).where(Campaign.id == campaign.id))
        if status == "sent":
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    cpu_after = cpu_by_role(roles)
    received, _ = sink_stats(port)
    if received - before != recipients:
        raise RuntimeError(f"the sink got {received - before} of {recipients} messages")
    result = {
        role: 1e6 * (cpu_after[role] - cpu_before.get(role, 0.0)) / recipients for role in cpu_after
    }
    result["rate"] = recipients / seconds
    result["campaign"] = campaign.id
    return result


def bare_round(
    port: int, sink: Any, messages: list[bytes], recipients: int, connections: int
) -> dict[str, float]:
    roles = {"bare loop": [os.getpid()], "sink": [sink.pid]}
    before, _ = sink_stats(port)
    cpu_before = cpu_by_role(roles)
    seconds = bare_loop(port, messages, recipients, connections)
    cpu_after = cpu_by_role(roles)
    received, _ = sink_stats(port)
    if received - before != recipients:
        raise RuntimeError(f"the sink got {received - before} of {recipients} messages")
    result = {
        role: 1e6 * (cpu_after[role] - cpu_before.get(role, 0.0)) / recipients
        for role in ("bare loop", "sink")
    }
    result["rate"] = recipients / seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per sink")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="worker processes (README: 2)")
    parser.add_argument("--threads", type=int, default=8, help="threads per process (README: 8)")
    parser.add_argument("--sinks", default="fast,plain", help="fast, plain or both")
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument(
        "--no-chunking",
        action="store_true",
        help="send with pipelined DATA (?chunking=0) though the fast sink offers CHUNKING",
    )
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.sinks.split(",") if kind.strip()]

    tmp = Path(tempfile.mkdtemp(prefix="envoy-bench-"))
    sinks: dict[str, tuple[Any, int]] = {kind: start_sink_kind(kind) for kind in kinds}
    own_redis = OwnRedis().start()
    database_url, drop_database = create_database(args.db, tmp)
    workers: dict[str, Worker] = {}
    try:
        from core.app import create_app
        from core.migrate import upgrade

        upgrade(database_url)
        base = {
            "DATABASE_URL": database_url,
            "REDIS_URL": own_redis.url,
            "SECRET_KEYS": KEYS,
            "ADDRESS_HASH_KEY": "bench-address-hash-key",
            "BASE_URL": "https://mail.example.com",
            "REQUIRE_VERIFIED_SENDER": "false",
            "SEND_CONNECTIONS": args.connections,
            "SEND_BATCH_SIZE": args.batch,
            "VAR_DIR": str(tmp / "var"),
            "INPROCESS_WORKER": "false",
        }
        configs = {
            kind: {
                **base,
                # Each sink's workers on their own broker namespace: a campaign's chains go
                # to the workers whose SMTP_URL names its sink.
                "REDIS_NAMESPACE": f"bench-{kind}",
                "SMTP_URL": f"smtp://127.0.0.1:{port}?starttls=0"
                + ("&chunking=0" if args.no_chunking else ""),
            }
            for kind, (_process, port) in sinks.items()
        }
        print(
            f"# {os.cpu_count()} cores; dramatiq core.worker --processes {args.processes} "
            f"--threads {args.threads} (prefetch 1) per sink; {args.connections} SMTP "
            f"connections; {args.recipients:,} recipients per round; {args.rounds} interleaved "
            f"rounds per sink; {args.db}",
            flush=True,
        )
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for kind in kinds:
            app = create_app({**configs[kind], "REQUIRE_VERIFIED_SENDER": False})
            with app.app_context():
                from core import db

                if kind == kinds[0]:
                    print(f"populating {args.recipients:,} contacts ...", flush=True)
                    account_id, first_campaign = populate(args.recipients)
                    from campaigns.services import campaign_list_ids

                    list_id = campaign_list_ids(first_campaign)[0]
                db.session.remove()
            app.extensions["queue"].stop()
            workers[kind] = start_workers(
                configs[kind], tmp / f"workers-{kind}.log", args.processes, args.threads
            )
        messages: list[bytes] = []
        for number in range(args.rounds):
            for kind in kinds:
                sink, port = sinks[kind]
                app = create_app({**configs[kind], "REQUIRE_VERIFIED_SENDER": False})
                with app.app_context():
                    platform = platform_round(
                        account_id, list_id, port, workers[kind], sink, args.recipients
                    )
                    if not messages:
                        # Pre-built after the first run, when the campaign's links exist.
                        messages = prebuilt_messages(int(platform["campaign"]))
                    from core import db

                    db.session.remove()
                app.extensions["queue"].stop()
                app.extensions["db_engine"].dispose()
                bare = bare_round(port, sink, messages, args.recipients, args.connections)
                results.setdefault((kind, "platform"), []).append(platform)
                results.setdefault((kind, "bare"), []).append(bare)
                # PostgreSQL and Redis: the live processes' CPU (a backend that exits during
                # the round takes its time with it, so those two are a lower bound).
                print(
                    f"round {number + 1}, {kind} sink: platform {platform['rate']:,.0f}/s, bare "
                    f"{bare['rate']:,.0f}/s = {100 * platform['rate'] / bare['rate']:.0f} %; CPU "
                    f"per message: workers {platform['workers']:.0f} us + sink "
                    f"{platform['sink']:.0f} us (PostgreSQL >= "
                    f"{max(platform.get('database', 0), 0):.0f}, Redis >= "
                    f"{max(platform.get('redis', 0), 0):.0f}) vs bare loop "
                    f"{bare['bare loop']:.0f} us + sink {bare['sink']:.0f} us",
                    flush=True,
                )
        size = sum(len(m) for m in messages) // len(messages)
        print(f"message size {size / 1024:.1f} KiB (HTML body {len(body_html()) / 1024:.1f} KiB)")
        for kind in kinds:
            platform_runs = results[(kind, "platform")]
            bare_runs = results[(kind, "bare")]
            ratios = [
                100 * p["rate"] / b["rate"] for p, b in zip(platform_runs, bare_runs, strict=True)
            ]
            print(
                f"{kind} sink ({'BDAT' if kind == 'fast' and not args.no_chunking else 'DATA'}"
                f" from the platform): ratio {spread(ratios, ' %')} (target >= 60 %); platform "
                f"{spread([p['rate'] for p in platform_runs], '/s')}; bare "
                f"{spread([b['rate'] for b in bare_runs], '/s')}; workers' CPU per message "
                f"{spread([p['workers'] for p in platform_runs], ' us')}, bare loop's "
                f"{spread([b['bare loop'] for b in bare_runs], ' us')}"
            )
            assert workers[kind].process is not None
            rss = peak_rss_kb(worker_pids(workers[kind].process.pid))
            print(f"{kind} sink: peak RSS of a sending worker {rss / 1024:.0f} MiB")
    finally:
        for worker in workers.values():
            worker.stop()
        for sink, _port in sinks.values():
            sink.kill()
            sink.wait()
        own_redis.kill()
        if drop_database is not None:
            try:
                drop_database()
            except Exception as exc:
                print(f"could not drop the bench database: {exc}")


if __name__ == "__main__":
    main()
