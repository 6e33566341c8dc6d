"""The stores of the registry keep their promises one by one: import files and outbox mails
expire, an import's files go with it, and the access report names who receives the data."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine
from flask import Flask

from core.mail import send_system_mail
from core.scheduler import run_jobs
from privacy import queries
from subscribers import services as subscribers
from tests.conftest import drain
from tests.factories import login, make_tenant

START = datetime(2026, 3, 2, 9, 0)
ROWS = "email,name\nann@example.org,Ann\nbroken,Bob\n"


def _at(days: float) -> Any:
    return time_machine.travel(START + timedelta(days=days), tick=False)


def _imported(app: Flask) -> tuple[int, int, Path]:
    with app.app_context():
        tenant = make_tenant()
        mailing_list = subscribers.create_list(tenant.account_id, "News")
        job = subscribers.create_import(
            tenant.account_id, mailing_list.id, io.BytesIO(ROWS.encode()), "a.csv", False
        )
        subscribers.start_import(tenant.account_id, job.id, {"0": "email", "1": "name"}, False)
        account_id, import_id = tenant.account_id, job.id
    drain(app)
    with app.app_context():
        report = Path(subscribers.get_import(account_id, import_id).report_path or "")
    assert "broken" in report.read_text(encoding="utf-8")
    return account_id, import_id, report


def test_error_reports_expire_after_the_configured_days(app_factory: Any, tmp_path: Path) -> None:
    app = app_factory(IMPORT_DIR=str(tmp_path / "imports"), IMPORT_FILE_KEEP_DAYS=30)
    with _at(0):
        account_id, import_id, report = _imported(app)
    with _at(29.9):
        assert (
            run_jobs(app, only=["personal-data-retention"])["personal-data-retention"][
                "import_files"
            ]
            == 0
        )
    assert report.exists()
    with _at(30.1):
        first = run_jobs(app, only=["personal-data-retention"])
        again = run_jobs(app, only=["personal-data-retention"])
    assert first["personal-data-retention"]["import_files"] == 1
    assert again["personal-data-retention"]["import_files"] == 0
    assert not report.exists()
    with app.app_context():
        assert subscribers.get_import(account_id, import_id).report_path == ""
    client = app.test_client()
    login(client, "owner@shop.example")
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "The error report was deleted 30 days after the import" in page
    assert client.get(f"/imports/{import_id}/errors.csv").status_code == 404


def test_deleting_an_import_removes_its_files(app_factory: Any, tmp_path: Path) -> None:
    app = app_factory(IMPORT_DIR=str(tmp_path / "imports"))
    account_id, import_id, report = _imported(app)
    with app.app_context():
        subscribers.delete_import(account_id, import_id)
    assert not report.exists()
    assert list((tmp_path / "imports").iterdir()) == []


def test_the_outbox_keeps_mail_for_the_configured_days(app_factory: Any, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    app = app_factory(SMTP_URL="", MAILDIR_PATH=str(outbox), OUTBOX_KEEP_DAYS=10)
    with app.app_context():
        send_system_mail("someone@example.org", "Hello", "Hi")

    def kept() -> list[Path]:
        return [p for p in outbox.rglob("*") if p.is_file()]

    assert len(kept()) == 1
    now = datetime.now()
    with time_machine.travel(now + timedelta(days=9), tick=False):
        assert (
            run_jobs(app, only=["personal-data-retention"])["personal-data-retention"]["outbox"]
            == 0
        )
    with time_machine.travel(now + timedelta(days=10, hours=1), tick=False):
        assert (
            run_jobs(app, only=["personal-data-retention"])["personal-data-retention"]["outbox"]
            == 1
        )
    assert kept() == []


def test_the_access_report_names_the_relay_and_providers_in_use(app_factory: Any) -> None:
    app = app_factory(
        SMTP_URL="smtp://mailer:s3cret-Pass@relay.example.net:587",
        SES_TOPIC_ARNS="arn:aws:sns:eu-west-1:123456789012:bounces",
        SUBPROCESSORS=[{"name": "Hosting Co", "purpose": "servers", "country": "DE"}],
    )
    with app.app_context():
        tenant = make_tenant()
        mailing_list = subscribers.create_list(tenant.account_id, "News")
        contact = subscribers.add_contact_to_list(tenant.account_id, mailing_list.id, "p@x.org")
        report = queries.access_report("p@x.org", [contact])
    names = [r["name"] for r in report["recipients"]]
    assert "Mail relay relay.example.net" in names
    assert any("Amazon Simple Email Service" in n for n in names)
    assert "Hosting Co" in names
    assert "s3cret" not in json.dumps(report) and "mailer" not in json.dumps(report)
    # Every store of the registry that holds something shows with its retention.
    sections = {s["name"]: s for s in report["holders"][0]["sections"]}
    assert {"lists", "consent", "messages", "bounces", "tracking_events"} <= set(sections)
    assert sections["consent"]["records"][0]["action"]
    assert all(s["retention"] for s in sections.values())


def test_the_embedded_default_says_no_outside_relay(app_factory: Any, tmp_path: Path) -> None:
    app = app_factory(SMTP_URL="", MAILDIR_PATH=str(tmp_path / "outbox"))
    with app.app_context():
        report = queries.access_report("nobody@x.org", [])
    assert any("own outbox" in r["name"] for r in report["recipients"])


def test_an_account_erasing_its_contact_prunes_only_its_own_mail(
    app_factory: Any, tmp_path: Path
) -> None:
    from campaigns import services as campaigns
    from privacy import services as privacy
    from tests.factories import make_campaign, make_list_with_contacts

    outbox = tmp_path / "outbox"
    app = app_factory(SMTP_URL="", MAILDIR_PATH=str(outbox))
    address = "Both.Accounts@Example.org"
    with app.app_context():
        shop = make_tenant("owner@shop.example", "Shop")
        club = make_tenant("owner@club.example", "Club")
        for tenant in (shop, club):
            list_id = make_list_with_contacts(tenant, [address], name="News")
            campaigns.start(tenant.account_id, make_campaign(tenant, list_id))
    drain(app)

    def mails_to_address() -> list[str]:
        found = []
        for path in outbox.rglob("*"):
            text = path.read_text(errors="replace") if path.is_file() else ""
            if address.lower() in text.lower():
                found.append(text)
        return found

    assert len(mails_to_address()) == 2
    with app.app_context():
        contact = next(
            c for c in queries.contacts_for_address(address) if c.account_id == shop.account_id
        )
        privacy.erase_contact(shop.account_id, contact.id, shop.user_id)
    left = mails_to_address()
    assert len(left) == 1 and "club" in left[0].lower()
