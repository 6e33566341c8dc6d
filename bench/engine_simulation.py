"""Simulation: campaigns sent with and without the Delivery Optimization Engine.

Run:  .venv/bin/python bench/engine_simulation.py [--seed 7] [--quick]

What it does (all assumptions are listed in docs/readme/engine.md):

* A seeded synthetic population of recipients, spread over a few mailbox domains. Each has a
  hidden preferred hour (when they read their mail), a hidden propensity to open, a small
  chance to complain, and some are dead (the mailbox no longer exists; more die as days pass).
* Several accounts, each holding an overlapping subset of the population, each sending one
  campaign a day at its habitual hour. One domain throttles (accepts only so many messages a
  minute and defers the rest); one domain's proxy fetches every image (machine opens).
* The same days are played twice, on two fresh SQLite databases of their own: once with every
  account opted out of the engine, once with every account taking part. In both worlds an
  account suppresses its own hard bounces and complaints (what the platform does anyway).
* With the engine, the simulated sender asks the real engine, through the real privacy gate
  (``privacy.engine_gate``), which addresses to skip, at which hour to send each recipient
  and how fast to send to each domain; outcomes and opens are fed back through the same gate.
* The mailbox side is simulated: bounce if dead, defer above a domain's per-minute capacity,
  open with a probability that falls with the wait between arrival and the reader's hour.
  Random draws are keyed by (seed, recipient, account, day), so both worlds face the same
  coin flips for the same message.

It prints, for both worlds: messages sent, hard-bounce rate, complaint rate, deferrals per
message and human open rate (machine opens are counted apart and never as opens).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import time_machine
from sqlalchemy import select

from accounts import services as accounts
from campaigns import services as campaigns
from campaigns.models import Message
from core import db
from core.app import create_app
from core.migrate import upgrade
from privacy import engine_gate
from subscribers.models import Contact, MailingList, Subscription
from subscribers.suppression import suppress, suppressed_emails

START = datetime(2026, 3, 2)  # a Monday; the simulated calendar starts here (UTC)
SEND_WINDOW = (6, 23)  # the engine may pick any hour from 06:00 to 22:00
SENDER_RATE = 600  # messages a minute the sender would push to one domain unpaced
DOMAINS = {
    # domain: (share of recipients, capacity per minute or None, proxy fetches images)
    "bigmail.example": (0.40, None, True),
    "slowmail.example": (0.20, 25, False),
    "corp.example": (0.15, None, False),
    "isp.example": (0.15, None, False),
    "tinymail.example": (0.10, None, False),
}
HABIT_HOURS = [8, 10, 14, 16, 11, 9]  # each account's usual send hour


@dataclass
class Recipient:
    index: int
    email: str
    domain: str
    preferred_hour: int
    open_propensity: float
    complains: float
    dies_on_day: int | None  # dead from this day on (0: dead from the start)


@dataclass
class Figures:
    addressed: int = 0
    suppressed_own: int = 0
    suppressed_engine: int = 0
    sent: int = 0
    bounced: int = 0
    delivered: int = 0
    deferrals: int = 0
    complaints: int = 0
    human_opens: int = 0
    machine_opens: int = 0
    engine_hours_used: int = 0
    paced_domains: set[str] = field(default_factory=set)


def population(rng: random.Random, size: int, dead_share: float, days: int) -> list[Recipient]:
    """Synthetic recipients with hidden preferences."""
    people = []
    domains = list(DOMAINS)
    weights = [DOMAINS[d][0] for d in domains]
    for index in range(size):
        domain = rng.choices(domains, weights)[0]
        habit = rng.choices(["morning", "lunch", "evening", "night"], [0.35, 0.2, 0.35, 0.1])[0]
        hour = {
            "morning": rng.randint(6, 9),
            "lunch": rng.randint(12, 13),
            "evening": rng.randint(18, 21),
            "night": rng.randint(22, 23),
        }[habit]
        if rng.random() < dead_share:
            dies: int | None = 0
        elif rng.random() < 0.03:
            dies = rng.randint(1, days - 1)  # the mailbox is closed during the simulation
        else:
            dies = None
        people.append(
            Recipient(
                index=index,
                email=f"r{index:05d}@{domain}",
                domain=domain,
                preferred_hour=hour,
                open_propensity=rng.betavariate(2, 3),
                complains=0.02 if rng.random() < 0.05 else 0.0005,
                dies_on_day=dies,
            )
        )
    return people


def audiences(rng: random.Random, people: list[Recipient], accounts_n: int) -> list[list[int]]:
    """Overlapping audiences: everyone is on 1 to 3 accounts' lists."""
    lists: list[list[int]] = [[] for _ in range(accounts_n)]
    for person in people:
        holders = rng.sample(range(accounts_n), k=min(accounts_n, rng.choice([1, 1, 2, 2, 3])))
        for holder in holders:
            lists[holder].append(person.index)
    return lists


def open_chance(person: Recipient, send_hour: int) -> float:
    """Read at the next preferred hour; the longer the mail waits, the less it is opened."""
    wait = (person.preferred_hour - send_hour) % 24
    return person.open_propensity * (0.15 + 0.85 * math.exp(-wait / 2.5))


def build_world(
    path: Path, participate: bool, people: list[Recipient], lists: list[list[int]]
) -> Any:
    """A fresh app and database: accounts, contacts, lists; everyone in or out of the engine."""
    url = f"sqlite:///{path}"
    upgrade(url)
    app = create_app(
        {
            "DATABASE_URL": url,
            "TESTING": True,
            "INPROCESS_WORKER": False,
            "REDIS_URL": "",
            "SECRET_KEYS": ["bench-secret-key-0123456789"],
            "ADDRESS_HASH_KEY": "bench-address-key",
            "ENGINE_HASH_KEY": "bench-engine-key",
            "MAILDIR_PATH": str(path.parent / "outbox"),
            "REQUIRE_VERIFIED_SENDER": False,  # the simulation is about the engine
        }
    )
    logging_quiet()
    account_ids: list[int] = []
    with app.app_context():
        for n, members in enumerate(lists):
            account, _user = accounts.sign_up(
                f"Account {n}", "Owner", f"owner{n}@acct.example", "bench password", of_age=True
            )
            accounts.update_general_settings(account.id, f"Account {n}", "1 Bench Street")
            accounts.update_privacy_settings(account.id, True, "truncate", 180)
            if not participate:
                accounts.set_engine_participation(account.id, False)
            mailing_list = MailingList(account_id=account.id, name="Everyone")
            db.session.add(mailing_list)
            db.session.flush()
            contacts = [Contact(account_id=account.id, email=people[i].email) for i in members]
            db.session.add_all(contacts)
            db.session.flush()
            db.session.add_all(
                Subscription(contact_id=c.id, list_id=mailing_list.id, status="subscribed")
                for c in contacts
            )
            db.session.commit()
            account_ids.append(account.id)
        db.session.remove()
    return app, account_ids


def logging_quiet() -> None:
    import logging

    logging.getLogger().setLevel(logging.WARNING)


def send_campaign(
    account_id: int,
    account_n: int,
    day: int,
    people_by_email: dict[str, Recipient],
    seed: int,
    figures: Figures,
) -> None:
    """One campaign of one account on one day: the real campaign rows, a simulated mailbox."""
    campaign = campaigns.save_campaign(
        account_id,
        campaign_id=None,
        name=f"Day {day}",
        subject=f"News of day {day}",
        from_name="Bench",
        from_email="news@acct.example",
        html_body="<p>Hello</p>",
        list_id=db.session.scalar(
            select(MailingList.id).where(MailingList.account_id == account_id)
        ),
    )
    campaigns.start(account_id, campaign.id)
    rows = db.session.execute(
        select(Message.id, Contact.email)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign.id)
        .order_by(Message.id)
    ).all()
    emails = [email for _id, email in rows]
    figures.addressed += len(emails)
    own = suppressed_emails(account_id, emails)
    engine_dead = engine_gate.engine_suppressed(account_id, emails)
    habit = HABIT_HOURS[account_n % len(HABIT_HOURS)]
    best = engine_gate.best_send_hours(account_id, emails, SEND_WINDOW)
    # Queue per (hour, domain), then send minute by minute at the engine's pace.
    queues: dict[tuple[int, str], list[tuple[int, Recipient]]] = defaultdict(list)
    for message_id, email in rows:
        if email in own:
            figures.suppressed_own += 1
            continue
        if email in engine_dead:
            figures.suppressed_engine += 1
            continue
        hour = best.get(email, habit)
        figures.engine_hours_used += email in best
        person = people_by_email[email]
        queues[(hour, person.domain)].append((message_id, person))
    date = START + timedelta(days=day)
    for (hour, domain), waiting in sorted(queues.items()):
        at = date.replace(hour=hour)
        pace = engine_gate.domain_pace(account_id, domain)
        if pace is not None:
            figures.paced_domains.add(domain)
        rate = min(SENDER_RATE, pace or SENDER_RATE)
        capacity = DOMAINS[domain][1]
        figures.sent += len(waiting)
        pending = list(waiting)
        minute = 0
        while pending:
            batch, pending = pending[:rate], pending[rate:]
            accepted = 0
            deferred: list[tuple[int, Recipient]] = []
            for message_id, person in batch:
                now = at + timedelta(minutes=min(minute, 59))
                if person.dies_on_day is not None and person.dies_on_day <= day:
                    figures.bounced += 1
                    engine_gate.record_delivery_outcome(
                        account_id, None, person.email, "bounced", now
                    )
                    suppress(account_id, person.email, "hard_bounce")
                    continue
                if capacity is not None and accepted >= capacity:
                    figures.deferrals += 1
                    engine_gate.record_delivery_outcome(
                        account_id, None, person.email, "deferred", now
                    )
                    deferred.append((message_id, person))
                    continue
                accepted += 1
                deliver(account_id, message_id, person, hour, now, day, seed, figures)
            pending = deferred + pending
            minute += 1
        db.session.commit()


def deliver(
    account_id: int,
    message_id: int,
    person: Recipient,
    send_hour: int,
    now: datetime,
    day: int,
    seed: int,
    figures: Figures,
) -> None:
    """The mailbox accepted the message: machine fetch, human open and click, complaint."""
    figures.delivered += 1
    engine_gate.record_delivery_outcome(account_id, None, person.email, "delivered", now)
    coin = random.Random(f"{seed}:{person.index}:{account_id}:{day}")
    if DOMAINS[person.domain][2]:
        figures.machine_opens += 1  # the proxy fetches images at delivery: never a human open
        engine_gate.record_engagement(account_id, message_id, "open", now, is_machine=True)
    if coin.random() < open_chance(person, send_hour):
        figures.human_opens += 1
        read_at = now.replace(hour=person.preferred_hour, minute=coin.randint(0, 59))
        engine_gate.record_engagement(account_id, message_id, "open", read_at, is_machine=False)
        if coin.random() < 0.3:
            engine_gate.record_engagement(account_id, message_id, "click", read_at, False)
    if coin.random() < person.complains:
        figures.complaints += 1
        engine_gate.record_delivery_outcome(account_id, None, person.email, "complained", now)
        suppress(account_id, person.email, "complaint")


def run_world(
    label: str, participate: bool, args: argparse.Namespace, workdir: Path
) -> tuple[Figures, float]:
    rng = random.Random(args.seed)
    people = population(rng, args.recipients, args.dead_share, args.days)
    lists = audiences(rng, people, args.accounts)
    people_by_email = {p.email: p for p in people}
    started = time.perf_counter()
    app, account_ids = build_world(workdir / f"{label}.sqlite3", participate, people, lists)
    figures = Figures()
    order = random.Random(args.seed + 1)
    for day in range(args.days):
        end_of_day = START + timedelta(days=day, hours=23, minutes=59)
        with time_machine.travel(end_of_day, tick=False), app.app_context():
            sending_order = list(enumerate(account_ids))
            order.shuffle(sending_order)
            for account_n, account_id in sending_order:
                send_campaign(account_id, account_n, day, people_by_email, args.seed, figures)
            db.session.remove()
    return figures, time.perf_counter() - started


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.2f} %" if whole else "  n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--dead-share", type=float, default=0.08)
    parser.add_argument("--quick", action="store_true", help="a small run (600 recipients, 5 days)")
    args = parser.parse_args()
    if args.quick:
        args.recipients, args.days = 600, 5
    print(
        f"engine simulation: seed {args.seed}, {args.accounts} accounts, {args.recipients} "
        f"recipients, {args.days} days, {args.dead_share:.0%} dead at start"
    )
    with tempfile.TemporaryDirectory(prefix="engine-sim-") as tmp:
        results = {}
        for label, participate in (("without", False), ("with", True)):
            results[label] = run_world(label, participate, args, Path(tmp))
    print()
    print(f"{'':34}{'without engine':>20}{'with engine':>20}")
    rows = [
        ("messages addressed", lambda f: str(f.addressed)),
        ("suppressed by own list", lambda f: str(f.suppressed_own)),
        ("suppressed by the engine", lambda f: str(f.suppressed_engine)),
        ("sent", lambda f: str(f.sent)),
        ("hard bounces", lambda f: str(f.bounced)),
        ("bounce rate (bounces / sent)", lambda f: percent(f.bounced, f.sent)),
        ("complaint rate (/ delivered)", lambda f: percent(f.complaints, f.delivered)),
        ("deferrals per 100 sent", lambda f: f"{100 * f.deferrals / max(1, f.sent):.1f}"),
        ("human opens", lambda f: str(f.human_opens)),
        ("human open rate (/ delivered)", lambda f: percent(f.human_opens, f.delivered)),
        ("machine opens (not counted)", lambda f: str(f.machine_opens)),
        ("sends at an engine-chosen hour", lambda f: str(f.engine_hours_used)),
        ("domains paced", lambda f: ", ".join(sorted(f.paced_domains)) or "-"),
        ("seconds", None),
    ]
    for name, show in rows:
        if show is None:
            values = [f"{results[k][1]:.1f}" for k in ("without", "with")]
        else:
            values = [show(results[k][0]) for k in ("without", "with")]
        print(f"{name:34}{values[0]:>20}{values[1]:>20}")
    without, with_engine = results["without"][0], results["with"][0]
    lower_bounces = with_engine.bounced / max(1, with_engine.sent) < without.bounced / max(
        1, without.sent
    )
    more_opens = with_engine.human_opens / max(
        1, with_engine.delivered
    ) > without.human_opens / max(1, without.delivered)
    print()
    print(f"engine lowers the bounce rate: {'yes' if lower_bounces else 'NO'}")
    print(f"engine raises the human open rate: {'yes' if more_opens else 'NO'}")
    if not (lower_bounces and more_opens):
        sys.exit(1)


if __name__ == "__main__":
    main()
