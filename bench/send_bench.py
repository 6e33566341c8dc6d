"""Benchmark: a personalised campaign with rewritten links sent by real Dramatiq workers to a
local SMTP sink, against a bare smtplib loop sending pre-built messages of the same size over
the same number of connections to the same sink.

    .venv/bin/python bench/send_bench.py --recipients 10000
    .venv/bin/python bench/send_bench.py --recipients 100000

Prints messages/s of both, their ratio, and the workers' peak RSS. Run it at 10k and 100k to
see that peak RSS does not grow with the audience. Uses its own redis-server, its own
PostgreSQL database (``--db sqlite`` for a SQLite file) and a fast asyncio sink
(``bench/fast_sink.py``) in its own process, all on 127.0.0.1, all stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.campaigns.fault_harness import OwnRedis, Worker, free_port, worker_env  # noqa: E402

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


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fast_sink.py"), str(port)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process, port


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument(
        "--no-chunking",
        action="store_true",
        help="send with pipelined DATA (?chunking=0) though the sink offers CHUNKING (BDAT)",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="envoy-bench-"))
    sink, port = start_sink()
    own_redis = OwnRedis().start()
    database_url, drop_database = create_database(args.db, tmp)
    workers: list[Worker] = []
    try:
        from core.app import create_app
        from core.migrate import upgrade

        upgrade(database_url)
        config = {
            "DATABASE_URL": database_url,
            "REDIS_URL": own_redis.url,
            "REDIS_NAMESPACE": "bench",
            "SMTP_URL": f"smtp://127.0.0.1:{port}?starttls=0"
            + ("&chunking=0" if args.no_chunking else ""),
            "SECRET_KEYS": KEYS,
            "ADDRESS_HASH_KEY": "bench-address-hash-key",
            "BASE_URL": "https://mail.example.com",
            "REQUIRE_VERIFIED_SENDER": "false",
            "SEND_CONNECTIONS": args.connections,
            "SEND_BATCH_SIZE": args.batch,
            "VAR_DIR": str(tmp / "var"),
            "INPROCESS_WORKER": "false",
        }
        app = create_app({**config, "REQUIRE_VERIFIED_SENDER": False})
        with app.app_context():
            from campaigns import services
            from campaigns.models import Campaign
            from core import db

            print(f"populating {args.recipients} contacts ...", flush=True)
            account_id, campaign_id = populate(args.recipients)

            log = tmp / "workers.log"
            worker = Worker(worker_env(config), log, threads=1)
            worker.env["PYTHONUNBUFFERED"] = "1"
            # One job at a time per process, so the C chains spread over the C processes
            # (Dramatiq's default prefetch would let one process hold both chains).
            worker.env["dramatiq_queue_prefetch"] = "1"
            worker.process = None
            # One process per connection, one thread each: C chains over C SMTP connections.
            import subprocess as sp

            from tests.campaigns.fault_harness import DRAMATIQ

            worker.process = sp.Popen(
                [
                    DRAMATIQ,
                    "core.worker",
                    "--processes",
                    str(args.connections),
                    "--threads",
                    "1",
                    "--queues",
                    "send",
                    "default",
                ],
                cwd=str(ROOT),
                env=worker.env,
                stdout=log.open("ab"),
                stderr=sp.STDOUT,
                start_new_session=True,
            )
            workers.append(worker)
            deadline = time.monotonic() + 60
            while log.read_text().count("ready for action") < args.connections:
                if time.monotonic() > deadline:
                    raise RuntimeError(log.read_text())
                time.sleep(0.2)

            before, _ = sink_stats(port)
            assert worker.process is not None
            roles = {
                "workers": worker_pids(worker.process.pid),
                "sink": [sink.pid],
                "bench": [os.getpid()],
            }
            cpu_before = cpu_by_role(roles)
            started = time.perf_counter()
            services.start(account_id, campaign_id)
            while True:
                db.session.expire_all()
                status = db.session.scalar(
                    __import__("sqlalchemy")
                    .select(Campaign.status)
                    .where(Campaign.id == campaign_id)
                )
                if status == "sent":
                    break
                time.sleep(0.1)
            platform_seconds = time.perf_counter() - started
            cpu_after = cpu_by_role(roles)
            cpu_per_message = {
                role: 1e6 * (cpu_after[role] - cpu_before.get(role, 0.0)) / args.recipients
                for role in cpu_after
            }
            received, _ = sink_stats(port)
            assert worker.process is not None
            rss = peak_rss_kb(worker_pids(worker.process.pid))
            platform_rate = args.recipients / platform_seconds
            print(
                f"platform: {args.recipients} messages in {platform_seconds:.1f}s = "
                f"{platform_rate:.0f} messages/s over {args.connections} connections "
                f"with {'DATA' if args.no_chunking else 'BDAT'} "
                f"(sink got {received - before}); worker peak RSS {rss / 1024:.0f} MiB"
            )
            print(
                "CPU per message during the platform run (us): "
                + ", ".join(f"{role} {value:.0f}" for role, value in cpu_per_message.items())
                + f"; {sum(cpu_per_message.values()):.0f} in all"
            )
            worker.stop()
            # Pre-built for the bare loop after the run, when the campaign's links exist.
            messages = prebuilt_messages(campaign_id)
            size = sum(len(m) for m in messages) // len(messages)
            print(
                f"message size {size / 1024:.1f} KiB (HTML body {len(body_html()) / 1024:.1f} KiB)"
            )

        before, _ = sink_stats(port)
        bare_roles = {"bare loop": [os.getpid()], "sink": [sink.pid]}
        cpu_before = cpu_by_role(bare_roles)
        bare_seconds = bare_loop(port, messages, args.recipients, args.connections)
        cpu_after = cpu_by_role(bare_roles)
        bare_cpu = {
            role: 1e6 * (cpu_after[role] - cpu_before.get(role, 0.0)) / args.recipients
            for role in cpu_after
        }
        print(
            "CPU per message during the bare loop (us): "
            + ", ".join(f"{role} {value:.0f}" for role, value in bare_cpu.items())
            + f"; {sum(bare_cpu.values()):.0f} in all"
        )
        received, _ = sink_stats(port)
        bare_rate = args.recipients / bare_seconds
        print(
            f"bare smtplib loop: {args.recipients} messages in {bare_seconds:.1f}s = "
            f"{bare_rate:.0f} messages/s over {args.connections} connections "
            f"(sink got {received - before})"
        )
        print(f"ratio platform / bare loop: {100 * platform_rate / bare_rate:.0f}% (target >= 60%)")
        print(f"peak RSS of a sending worker at {args.recipients} recipients: {rss / 1024:.0f} MiB")
    finally:
        for worker in workers:
            worker.stop()
        sink.kill()
        sink.wait()
        own_redis.kill()
        if drop_database is not None:
            try:
                from sqlalchemy import create_engine

                del create_engine
                drop_database()
            except Exception as exc:
                print(f"could not drop the bench database: {exc}")


if __name__ == "__main__":
    main()
