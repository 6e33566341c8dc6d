"""Erasure, access report and retention jobs at scale.

    .venv/bin/python bench/privacy_jobs.py [--accounts 200] [--contacts 200] [--events 3]
                                           [--database-url sqlite:////tmp/x.sqlite3]

Builds a fresh database (SQLite in a temporary directory unless --database-url is given; for
PostgreSQL pass an empty database), fills ``accounts`` accounts with ``contacts`` contacts
each, one sent campaign per account with a Message row and ``events`` identified events per
contact, one address held by every account. Then it measures: the access report for that
address, its erasure across every account (through the public-request services), and one run
of every scheduled job over all accounts (with every account due for an inactivity warning).
Mail goes to a Maildir in the temporary directory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, text, update


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="privacy-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"

    from accounts.models import Account, Membership, User
    from campaigns.models import Campaign, Message
    from core import db
    from core.app import create_app
    from core.db import utcnow
    from core.migrate import upgrade
    from core.scheduler import run_jobs
    from privacy import queries
    from privacy.services import erase_contacts
    from subscribers.models import Contact, MailingList, Subscription
    from tracking.models import TrackingEvent

    upgrade(url)
    app = create_app(
        {
            "DATABASE_URL": url,
            "TESTING": True,
            "SECRET_KEYS": ["bench-key-0123456789abcdef"],
            "ADDRESS_HASH_KEY": "bench-hash-key",
            "MAILDIR_PATH": str(tmp / "outbox"),
            "SMTP_URL": "",
            "REDIS_URL": "",
        }
    )
    target = "shared.person@example.org"
    started = time.perf_counter()
    with app.app_context():
        session = db.session
        old = utcnow() - timedelta(days=340)
        for a in range(args.accounts):
            account = Account(name=f"Account {a}", last_activity_at=old)
            user = User(email=f"owner{a}@bench.example", password_hash="unusable")  # noqa: S106
            session.add_all([account, user])
            session.flush()
            session.add(Membership(account_id=account.id, user_id=user.id, role="owner"))
            mailing_list = MailingList(account_id=account.id, name="List")
            session.add(mailing_list)
            session.flush()
            campaign = Campaign(
                account_id=account.id, name="C", status="sent", list_id=mailing_list.id
            )
            session.add(campaign)
            session.flush()
            emails = [target] + [f"c{i}.a{a}@example.net" for i in range(args.contacts - 1)]
            contact_rows = [
                {"account_id": account.id, "email": e, "attributes": {}} for e in emails
            ]
            session.execute(insert(Contact), contact_rows)
            ids = list(
                session.scalars(
                    Contact.__table__.select()
                    .with_only_columns(Contact.id)
                    .where(Contact.account_id == account.id)
                )
            )
            session.execute(
                insert(Subscription), [{"list_id": mailing_list.id, "contact_id": i} for i in ids]
            )
            session.execute(
                insert(Message),
                [
                    {"campaign_id": campaign.id, "contact_id": i, "status": "sent", "sent_at": old}
                    for i in ids
                ],
            )
            message_ids = list(
                session.scalars(
                    Message.__table__.select()
                    .with_only_columns(Message.id)
                    .where(Message.campaign_id == campaign.id)
                )
            )
            session.execute(
                insert(TrackingEvent),
                [
                    {
                        "account_id": account.id,
                        "campaign_id": campaign.id,
                        "message_id": m,
                        "kind": "open",
                    }
                    for m in message_ids
                    for _ in range(args.events)
                ],
            )
            session.commit()
    build = time.perf_counter() - started
    with app.app_context():
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text("ANALYZE"))  # as autovacuum would have by now in production
            db.session.commit()
    total_contacts = args.accounts * args.contacts
    print(
        f"database: {url.split(':')[0]}; {args.accounts} accounts x {args.contacts} contacts "
        f"= {total_contacts} contacts, {total_contacts * args.events} identified events "
        f"(built in {build:.1f} s)"
    )

    with app.app_context():
        t0 = time.perf_counter()
        contacts = queries.contacts_for_address(target)
        report = queries.access_report(target, contacts)
        t_report = time.perf_counter() - t0
        print(
            f"access report for one address held by {len(report['holders'])} accounts: "
            f"{t_report * 1000:.0f} ms"
        )
        t0 = time.perf_counter()
        erase_contacts(queries.contacts_for_address(target), target, None)
        db.session.commit()
        t_erase = time.perf_counter() - t0
        print(f"erasure of that address across {len(contacts)} accounts: {t_erase * 1000:.0f} ms")

    t0 = time.perf_counter()
    results = run_jobs(app, only=["warn-inactive-accounts"])
    t_warn = time.perf_counter() - t0
    print(
        f"inactivity warnings: {results['warn-inactive-accounts']} accounts warned (one email "
        f"each to a Maildir) in {t_warn:.2f} s = "
        f"{t_warn / max(1, args.accounts) * 1000:.1f} ms/account"
    )
    t0 = time.perf_counter()
    results = run_jobs(app)
    t_all = time.perf_counter() - t0
    print(f"every job once more, nothing due: {t_all * 1000:.0f} ms ({results})")

    with app.app_context():
        db.session.execute(update(Account).values(deletion_due_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    t0 = time.perf_counter()
    results = run_jobs(app, only=["delete-accounts-due"])
    t_delete = time.perf_counter() - t0
    rows = args.contacts * (3 + args.events)
    print(
        f"account deletion (cascade): {results['delete-accounts-due']} accounts of ~{rows} rows "
        f"each in {t_delete:.2f} s = {t_delete / max(1, args.accounts) * 1000:.1f} ms/account"
    )


if __name__ == "__main__":
    main()
