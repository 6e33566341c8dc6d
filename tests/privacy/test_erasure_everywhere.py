"""Erasure and account deletion leave nothing anywhere: the whole database, every file under
the data directory (outbox, imports, spool), the application log and the Redis namespace.

The person is held by two accounts, with sends, opens, clicks, a bounce, consent changes, an
import that named them (with an error report) and an upload left at the mapping step, an
access request (its download prepared) and a pending rectification. The mail goes to the
embedded Maildir outbox (no SMTP relay), so the outbox is one of the places searched.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from campaigns import bounces
from campaigns.models import Message
from core import db as core_db
from privacy.personal_data import mail_text
from subscribers.models import Contact
from tests import services_available
from tests.conftest import drain
from tests.factories import Tenant, make_campaign, make_tenant
from tests.mail_parsing import path_of, urls_of
from tests.privacy.test_erasure import _dump_database
from tests.webhooks.receiver import Receiver

ADDRESS = "Zoe.Lindqvist-Ortega@Example.ORG"
NAME = "Zoë Ångström-Þórsdóttir"
KEEP = "kept.person@example.net"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def outbox_app(app_factory: Any, data_dir: Path) -> Flask:
    """The embedded default's files, all under one data directory; Redis for the queue, the
    tracking buffer and the login throttle (so its keys are searched too)."""
    built: Flask = app_factory(
        broker="redis",
        SMTP_URL="",
        MAILDIR_PATH=str(data_dir / "outbox"),
        IMPORT_DIR=str(data_dir / "imports"),
        TRACKING_SPOOL_DIR=str(data_dir / "spool"),
        WEBHOOKS_ALLOW_PRIVATE_TARGETS=True,  # the accounts' webhook receiver is local
    )
    return built


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Each account's webhook endpoint (every event type), so payloads naming the person exist."""
    found = Receiver()
    yield found
    found.stop()


@pytest.fixture
def log_capture(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log line of the test, at the most verbose level the app may run at."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def _outbox(app: Flask) -> list[EmailMessage]:
    """The outbox's mails, oldest first."""
    from email import message_from_bytes

    root = Path(app.config["MAILDIR_PATH"])
    paths = [p for sub in ("new", "cur") for p in (root / sub).glob("*") if p.is_file()]
    found = []
    for path in sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name)):
        message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def _mails_to(app: Flask, address: str) -> list[EmailMessage]:
    return [m for m in _outbox(app) if address.lower() in str(m["To"]).lower()]


def _link(app: Flask, address: str, marker: str) -> str:
    for message in reversed(_mails_to(app, address)):
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        for url in re.findall(r"https?://\S+", body.get_content()):  # type: ignore[attr-defined]
            if marker in url:
                return path_of(url)
    raise AssertionError(f"no {marker} link mailed")


def _files(data_dir: Path) -> dict[str, str]:
    """Every file under the data directory, decoded the way a reader would (mail decoded)."""
    return {
        str(path.relative_to(data_dir)): mail_text(path.read_bytes())
        for path in data_dir.rglob("*")
        if path.is_file()
    }


def _redis(app: Flask) -> str:
    import redis

    client = redis.Redis.from_url(app.config["REDIS_URL"])
    parts = []
    for key in client.scan_iter(f"{app.config['REDIS_NAMESPACE']}*"):
        parts.append(key.decode("utf-8", "replace"))
        kind = client.type(key).decode()
        if kind == "string":
            parts.append(repr(client.get(key)))
        elif kind == "list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1)))
        elif kind == "set":
            parts.append(repr(client.smembers(key)))
    return "\n".join(parts)


def _needles() -> list[str]:
    return [ADDRESS.casefold(), NAME.casefold(), "lindqvist", "ångström".casefold()]


def _found(text: str) -> list[str]:
    folded = text.casefold()
    return [needle for needle in _needles() if needle in folded]


def _send_and_track(app: Flask, tenant: Tenant, list_id: int) -> None:
    from campaigns import services as campaigns

    with app.app_context():
        campaign_id = make_campaign(tenant, list_id, subject="Hello {{ name }}")
        campaigns.start(tenant.account_id, campaign_id)
    drain(app)
    client = app.test_client(use_cookies=False)
    for message in _mails_to(app, ADDRESS):
        if not message["List-Unsubscribe"]:
            continue
        urls = urls_of(message)
        if urls.beacon:
            client.get(path_of(urls.beacon), headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
        client.get(path_of(urls.clicks[0]), headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    drain(app)


def _person_everywhere(app: Flask, hooks_url: str) -> tuple[Tenant, Tenant, int]:
    """Two accounts hold the person, with everything the brief lists. Returns the tenants and
    the abandoned upload's import id."""
    from accounts import services as accounts
    from subscribers import services as subscribers
    from webhooks import endpoints
    from webhooks.models import SUBSCRIBABLE

    with app.app_context():
        shop = make_tenant("owner@shop.example", "Shop")
        club = make_tenant("owner@club.example", "Club")
        lists = {}
        for tenant in (shop, club):
            accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
            endpoints.create_endpoint(
                tenant.account_id, None, hooks_url, [t.value for t in SUBSCRIBABLE]
            )
            subscribers.update_settings(tenant.account_id, True)
            news = subscribers.create_list(tenant.account_id, f"News {tenant.account_id}")
            extra = subscribers.create_list(tenant.account_id, f"Offers {tenant.account_id}")
            subscribers.add_contact_to_list(
                tenant.account_id, news.id, ADDRESS, NAME, {"city": "Malmö"}
            )
            subscribers.add_contact_to_list(tenant.account_id, news.id, KEEP, "Kept Person")
            contact = subscribers.add_contact_to_list(tenant.account_id, extra.id, ADDRESS)
            # A consent change: unsubscribed from the offers.
            subscribers.unsubscribe_contact(tenant.account_id, contact.id, extra.id, "manual")
            lists[tenant.account_id] = news.id
    for tenant in (shop, club):
        _send_and_track(app, tenant, lists[tenant.account_id])
    with app.app_context():
        # A transactional message (a receipt) from each account, personalised with the name.
        from campaigns.transactional import send_transactional

        for tenant in (shop, club):
            domain = tenant.email.rpartition("@")[2]
            send_transactional(
                tenant.account_id,
                ADDRESS.upper(),
                from_email=f"orders@{domain}",
                to_name=NAME,
                subject="Your receipt, {{ data.name }}",
                html="<p>Thank you {{ data.name }}, {{ contact.attributes.city }}</p>",
                data={"name": NAME},
                idempotency_key=f"receipt-{tenant.account_id}",
            )
    drain(app)
    with app.app_context():
        # A bounce of the shop's message to the person.
        message = core_db.session.scalar(
            select(Message)
            .join(Contact, Contact.id == Message.contact_id)
            .where(
                Contact.account_id == shop.account_id, func.lower(Contact.email) == ADDRESS.lower()
            )
        )
        assert message is not None and message.smtp_message_id
        assert bounces.record(
            [bounces.Notification("soft", "webhook", message.smtp_message_id, None, "452 4.2.2")]
        )
        # An import that named the person: a duplicate row and a broken row with the name.
        csv_text = (
            f"email,name\n{ADDRESS},{NAME}\n{ADDRESS},{NAME}\n<{ADDRESS.upper()},{NAME}\n"
            f"not-an-address,Somebody Else\n"
            f"{KEEP},Kept Person\n"
        )
        job = subscribers.create_import(
            club.account_id,
            lists[club.account_id],
            io.BytesIO(csv_text.encode()),
            "guests.csv",
            update_existing=True,
        )
        subscribers.start_import(club.account_id, job.id, {"0": "email", "1": "name"}, True)
        # An upload left at the mapping step.
        abandoned = subscribers.create_import(
            shop.account_id,
            lists[shop.account_id],
            io.BytesIO(csv_text.encode("utf-8")),
            "later.csv",
            update_existing=False,
        )
        abandoned_id = abandoned.id
    drain(app)
    with app.app_context():
        job = subscribers.get_import(club.account_id, job.id)
        assert job.status == "done" and job.error_count >= 1
        assert ADDRESS.upper() in Path(job.report_path or "").read_text(encoding="utf-8")
    return shop, club, abandoned_id


def _request(app: Flask, client: Any, kind: str, **extra: str) -> Any:
    app.config["DATA_REQUEST_EMAIL_WINDOW"] = 0
    answer = client.post("/privacy/request", data={"email": ADDRESS, "kind": kind, **extra})
    assert answer.status_code == 200
    confirm = _link(app, ADDRESS, "/privacy/confirm/")
    done = client.post(confirm)
    assert done.status_code == 200
    return done


def test_erasure_leaves_the_person_nowhere(
    outbox_app: Flask, data_dir: Path, log_capture: pytest.LogCaptureFixture, receiver: Receiver
) -> None:
    services_available.require("redis")
    app = outbox_app
    shop, _club, abandoned_id = _person_everywhere(app, receiver.url)
    # The accounts' endpoints were told about the person (sent, opened, subscribed ...).
    assert any(ADDRESS.lower() in r.body.decode().lower() for r in receiver.requests)
    client = app.test_client()
    # An access request: its report is prepared as a download, and it is complete.
    access = _request(app, client, "access").get_data(as_text=True)
    for title in (
        "Consent history",
        "Bounces and complaints",
        "Opens and clicks",
        "Transactional emails sent to you",
    ):
        assert title in access
    assert "Mail relay" in access or "own outbox" in access
    # A pending rectification: the owners were told, quoting the address (in the outbox).
    _request(app, client, "rectify", new_name="Zoë Lindqvist")

    # Everything holds the person before the erasure (so the search below means something).
    assert _found(_dump_database(app))
    files = _files(data_dir)
    assert any(_found(text) for name, text in files.items() if name.startswith("outbox"))
    assert any(_found(text) for name, text in files.items() if name.endswith(".errors.csv"))
    assert any(_found(text) for name, text in files.items() if name.endswith(".csv"))

    done = _request(app, client, "erase")
    assert "erased everywhere" in done.get_data(as_text=True)
    drain(app)

    dump = _dump_database(app)
    assert KEEP in dump  # the dump holds what it should
    assert _found(dump) == []
    leftover = {name: _found(text) for name, text in _files(data_dir).items() if _found(text)}
    assert leftover == {}
    # The error report lost the person's rows and kept the others; the abandoned upload went.
    with app.app_context():
        from subscribers import services as subscribers
        from subscribers.models import ImportJob

        reports = [
            job.report_path for job in core_db.session.scalars(select(ImportJob)) if job.report_path
        ]
        assert reports and "not-an-address" in Path(reports[0]).read_text(encoding="utf-8")
        abandoned = subscribers.get_import(shop.account_id, abandoned_id)
        assert abandoned.status == "failed" and "erasure" in (abandoned.error or "")
    # The owners were told, without the address.
    notices = [m for m in _outbox(app) if "erased" in str(m["Subject"])]
    assert len(notices) == 2
    logged = "\n".join(log_capture.handler.format(r) for r in log_capture.records)
    assert log_capture.records  # the log was captured
    assert _found(logged) == []
    held_in_redis = _redis(app)
    assert held_in_redis  # the namespace holds keys (queues), so the search means something
    assert _found(held_in_redis) == []


def test_a_deleted_account_leaves_nothing_on_disk(
    outbox_app: Flask, data_dir: Path, receiver: Receiver
) -> None:
    services_available.require("redis")
    from accounts import services as accounts

    app = outbox_app
    shop, club, _abandoned = _person_everywhere(app, receiver.url)
    with app.app_context():
        club_mail_ids = set(
            core_db.session.scalars(
                select(Message.smtp_message_id)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Contact.account_id == club.account_id)
            )
        )
        shop_mail_ids = set(
            core_db.session.scalars(
                select(Message.smtp_message_id)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Contact.account_id == shop.account_id)
            )
        )
        from campaigns.models import TransactionalMessage

        for account_id, ids in ((club.account_id, club_mail_ids), (shop.account_id, shop_mail_ids)):
            ids |= set(
                core_db.session.scalars(
                    select(TransactionalMessage.smtp_message_id).where(
                        TransactionalMessage.account_id == account_id
                    )
                )
            )
    assert club_mail_ids and shop_mail_ids
    assert any(i.startswith("<t") for i in club_mail_ids)
    assert any(p.name.startswith(f"{club.account_id}-") for p in data_dir.rglob("*.csv"))

    with app.app_context():
        assert accounts.delete_account_permanently(club.account_id, "test")

    # No upload or error report of the account is left.
    assert not [p for p in data_dir.rglob(f"{club.account_id}-*") if p.is_file()]
    left = _outbox(app)
    ids = {str(m["Message-ID"]) for m in left}
    # None of its campaign mails; the other account's stay.
    assert not ids & club_mail_ids
    assert shop_mail_ids <= ids
    # Of what went to its owner, only the notice that the account was deleted.
    to_owner = [m for m in left if club.email in str(m["To"])]
    assert [str(m["Subject"]) for m in to_owner] == ["Club was deleted"]
    for message in left:
        if message in to_owner:
            continue
        assert "club" not in mail_text(message.as_bytes()), message["Subject"]
    # The other account's files are untouched.
    assert any(p.name.startswith(f"{shop.account_id}-") for p in data_dir.rglob("*.csv"))
