"""The public data-request form: one answer for everyone, confirmation by emailed link, rate
limits, the access report, portable export, restriction, objection, withdrawal, rectification."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import time_machine
from flask import Flask
from sqlalchemy import select

from core import db as core_db
from privacy import retention
from privacy.models import AuditEntry, DataRequest
from subscribers import services as subscribers
from subscribers.models import Contact, Subscription
from subscribers.suppression import suppression_reason
from tests.factories import login, make_list_with_contacts, make_tenant
from tests.privacy.helpers import link_in, send_and_track, submit, token_of
from tests.smtp_sink import SMTPSink

KNOWN = "kim@example.org"


def _download_paths(page: str) -> list[str]:
    return re.findall(r'action="(/privacy/download/[^"]+)"', page)


def _normalise_page(page: str, address: str) -> str:
    return page.replace(address, "ADDRESS")


def test_the_answer_is_the_same_whether_the_address_is_known_or_not(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        make_list_with_contacts(make_tenant(), [KNOWN])
    known = submit(client, KNOWN, "access")
    unknown = submit(client, "nobody@example.org", "access")
    assert known.status_code == unknown.status_code == 200
    assert _normalise_page(known.get_data(as_text=True), KNOWN) == _normalise_page(
        unknown.get_data(as_text=True), "nobody@example.org"
    )
    # Both get a link; only the address typed receives it.
    assert link_in(smtp_sink, KNOWN, "/privacy/confirm/")
    assert link_in(smtp_sink, "nobody@example.org", "/privacy/confirm/")
    assert all(m.recipients in ([KNOWN], ["nobody@example.org"]) for m in smtp_sink.messages)


def test_bad_input_is_refused_inline_and_kept(client: Any) -> None:
    response = submit(client, "not-an-address", "access")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'class="error"' in page and "not-an-address" in page
    no_kind = client.post("/privacy/request", data={"email": KNOWN})
    assert no_kind.status_code == 422
    empty_fix = submit(client, KNOWN, "rectify")
    assert "what should be corrected" in empty_fix.get_data(as_text=True)


def test_access_report_covers_every_account_and_downloads_work_once(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        shop = make_tenant("owner@shop.example", "Shop")
        club = make_tenant("owner@club.example", "Chess Club")
    send_and_track(app, smtp_sink, shop, [KNOWN])
    with app.app_context():
        make_list_with_contacts(club, [KNOWN], name="Members")
    submit(client, KNOWN, "access")
    path = link_in(smtp_sink, KNOWN, "/privacy/confirm/")
    page = client.get(path).get_data(as_text=True)
    assert "Confirm" in page
    with app.app_context():  # the GET changed nothing
        assert core_db.session.scalars(select(DataRequest.status)).all() == ["received"]
    response = client.post(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for expected in (
        "Shop",
        "Chess Club",
        "Members",
        "Emails sent to you",
        "Opens and clicks recorded about you",
        "open",
        "click",
        "Why the data is processed",
        "Who receives it",
        "supervisory authority",
        "Identified open and click events: 180 days",
        "Delivery Optimization Engine",
    ):
        assert expected in page, expected
    downloads = _download_paths(page)
    assert len(downloads) == 1
    first = client.post(downloads[0])
    assert first.status_code == 200
    assert "attachment" in first.headers["Content-Disposition"]
    report = json.loads(first.data)
    assert {h["account"]["name"] for h in report["holders"]} == {"Shop", "Chess Club"}
    assert client.post(downloads[0]).status_code == 410  # single use
    assert client.post(path).status_code == 410  # the confirmation link too


def test_portable_export_in_json_and_csv(app: Flask, client: Any, smtp_sink: SMTPSink) -> None:
    with app.app_context():
        shop = make_tenant()
        list_id = make_list_with_contacts(shop, [])
        subscribers.add_contact_to_list(
            shop.account_id, list_id, KNOWN, name="Kim", attributes={"city": "Lyon"}
        )
    submit(client, KNOWN, "export")
    page = client.post(link_in(smtp_sink, KNOWN, "/privacy/confirm/")).get_data(as_text=True)
    json_path, csv_path = _download_paths(page)
    data = json.loads(client.post(json_path).data)
    provided = data["accounts"][0]["provided"]
    assert provided["contact"]["name"] == "Kim"
    assert provided["contact"]["attributes"] == {"city": "Lyon"}
    assert provided["lists"][0]["status"] == "subscribed"
    assert "messages" in data["accounts"][0]["generated"]
    csv_response = client.post(csv_path)
    assert csv_response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(csv_response.get_data(as_text=True))))
    assert {
        "account": "Shop",
        "category": "provided",
        "section": "contact",
        "record": "1",
        "field": "name",
        "value": "Kim",
    } in rows


def test_restriction_objection_and_withdrawal_stop_processing(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    addresses = {
        "restrict": "r@example.org",
        "object": "o@example.org",
        "withdraw": "w@example.org",
    }
    with app.app_context():
        tenant = make_tenant()
        list_id = make_list_with_contacts(tenant, list(addresses.values()))
    for kind, address in addresses.items():
        submit(client, address, kind)
        assert client.post(link_in(smtp_sink, address, "/privacy/confirm/")).status_code == 200
    with app.app_context():
        from subscribers.audience import audience_contact_ids

        assert (
            core_db.session.scalars(audience_contact_ids(tenant.account_id, [list_id])).all() == []
        )
        contacts = {c.email: c for c in core_db.session.scalars(select(Contact))}
        assert contacts["r@example.org"].restricted_at is not None
        assert contacts["o@example.org"].objected_at is not None
        assert contacts["w@example.org"].consent_withdrawn_at is not None
        statuses = core_db.session.scalars(
            select(Subscription.status).where(
                Subscription.contact_id == contacts["w@example.org"].id
            )
        ).all()
        assert statuses == ["unsubscribed"]
        # An objection is absolute: no other account may mail the address either.
        other = make_tenant("owner@other.example", "Other")
        assert suppression_reason(other.account_id, "o@example.org") == "objected"
    assert len(smtp_sink.to("owner@shop.example")) == 3  # the account was told each time

    # A campaign to the list mails none of them.
    from campaigns import services as campaigns
    from tests.conftest import drain
    from tests.factories import make_campaign

    with app.app_context():
        campaigns.start(tenant.account_id, make_campaign(tenant, list_id))
    drain(app)
    for address in addresses.values():
        assert not [m for m in smtp_sink.to(address) if m.message["List-Unsubscribe"]]


def test_the_privacy_layer_drops_hits_of_contacts_who_withdrew_consent() -> None:
    from privacy.policy import ContactState, Decision, TrackingContext, decide

    for state in (
        ContactState(consent_withdrawn=True),
        ContactState(restricted=True),
        ContactState(objected=True),
    ):
        context = TrackingContext(
            kind="open",
            individual_tracking=True,
            track_opens=True,
            track_clicks=True,
            identified_token=True,
            contact=state,
        )
        assert decide(context) == Decision.DROP
    assert ContactState(consent_withdrawn=True).excluded_from_processing


def test_rectification_is_notified_applied_and_recorded(app: Flask, smtp_sink: SMTPSink) -> None:
    public = app.test_client()
    with app.app_context():
        tenant = make_tenant()
        make_list_with_contacts(tenant, [KNOWN])
    submit(public, KNOWN, "rectify", new_name="Kim Lee", note="My name is misspelt")
    public.post(link_in(smtp_sink, KNOWN, "/privacy/confirm/"))
    notice = link_in(smtp_sink, "owner@shop.example", "/privacy/requests")
    marketer = app.test_client()
    login(marketer, tenant.email)
    page = marketer.get(notice).get_data(as_text=True)
    assert "Kim Lee" in page and "Apply correction" in page
    apply_path = re.search(r'action="(/privacy/requests/\d+/apply)"', page)
    assert apply_path
    marketer.post(apply_path.group(1))
    with app.app_context():
        assert core_db.session.scalar(select(Contact.name)) == "Kim Lee"
        events = core_db.session.scalars(select(AuditEntry.event)).all()
        assert "applied" in events
    again = marketer.get("/privacy/requests").get_data(as_text=True)
    assert "applied" in again and "Apply correction" not in again


def test_rate_limits_per_client_and_per_address_and_one_email_per_window(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(
        DATA_REQUEST_LIMIT_PER_CLIENT=4,
        DATA_REQUEST_LIMIT_PER_ADDRESS=3,
        DATA_REQUEST_EMAIL_WINDOW=600,
    )
    client = app.test_client()
    with time_machine.travel("2026-03-01 10:00:00", tick=False):
        assert submit(client, "a@example.org", "access").status_code == 200
        assert submit(client, "a@example.org", "export").status_code == 200  # no second email
        assert len(smtp_sink.to("a@example.org")) == 1
    with time_machine.travel("2026-03-01 10:11:00", tick=False):
        assert submit(client, "a@example.org", "export").status_code == 200
        assert len(smtp_sink.to("a@example.org")) == 2
        assert submit(client, "a@example.org", "erase").status_code == 429  # per address
        assert submit(client, "b@example.org", "access").status_code == 200
        assert submit(client, "c@example.org", "access").status_code == 429  # per client
        other_network = app.test_client()
        response = other_network.post(
            "/privacy/request",
            data={"email": "c@example.org", "kind": "access"},
            environ_base={"REMOTE_ADDR": "198.51.100.7"},
        )
        assert response.status_code == 200
    with app.app_context():
        prefixes = set(core_db.session.scalars(select(DataRequest.client_prefix)))
        assert prefixes == {"127.0.0.0/24", "198.51.100.0/24"}  # never the raw IP
        throttled = core_db.session.scalars(
            select(AuditEntry).where(AuditEntry.event == "throttled")
        ).all()
        assert len(throttled) == 3


def test_unconfirmed_requests_expire(app: Flask, client: Any, smtp_sink: SMTPSink) -> None:
    with time_machine.travel("2026-04-01 08:00:00", tick=False):
        submit(client, KNOWN, "erase")
        path = link_in(smtp_sink, KNOWN, "/privacy/confirm/")
    with time_machine.travel("2026-04-02 07:59:00", tick=False), app.app_context():
        assert retention.expire_requests(retention_now()) == 0
    with time_machine.travel("2026-04-02 08:00:01", tick=False):
        with app.app_context():
            assert retention.expire_requests(retention_now()) == 1
            assert retention.expire_requests(retention_now()) == 0  # twice is harmless
            request = core_db.session.scalars(select(DataRequest)).one()
            assert request.status == "expired" and request.pending_address is None
            events = core_db.session.scalars(select(AuditEntry.event)).all()
            assert events == ["received", "expired"]
        assert client.get(path).status_code == 410
        assert client.post(path).status_code == 410
    with time_machine.travel("2026-07-01 08:00:00", tick=False), app.app_context():
        retention.expire_requests(retention_now())
        assert core_db.session.scalars(select(DataRequest)).all() == []  # removed after 90 days
        assert len(core_db.session.scalars(select(AuditEntry)).all()) == 2  # the log stays


def retention_now() -> Any:
    from core.db import utcnow

    return utcnow()


def test_the_audit_log_holds_no_address(app: Flask, client: Any, smtp_sink: SMTPSink) -> None:
    with app.app_context():
        make_list_with_contacts(make_tenant(), [KNOWN])
    submit(client, KNOWN, "access")
    client.post(link_in(smtp_sink, KNOWN, "/privacy/confirm/"))
    with app.app_context():
        entries = core_db.session.scalars(select(AuditEntry)).all()
        assert [e.event for e in entries] == ["received", "confirmed", "fulfilled"]
        for entry in entries:
            assert KNOWN not in " ".join(str(v) for v in vars(entry).values())
            assert entry.address_hash and len(entry.address_hash) == 64
        request = core_db.session.scalars(select(DataRequest)).one()
        assert request.pending_address is None  # gone once fulfilled
    assert token_of(link_in(smtp_sink, KNOWN, "/privacy/confirm/")).count(".") == 2


def test_sub_processors_from_configuration_are_named_in_the_report(
    app_factory: Any, smtp_sink: SMTPSink, monkeypatch: Any
) -> None:
    monkeypatch.setenv("SUBPROCESSORS", "Mailgun|email delivery|USA; Hetzner|hosting|Germany")
    app = app_factory()
    client = app.test_client()
    submit(client, KNOWN, "access")
    page = client.post(link_in(smtp_sink, KNOWN, "/privacy/confirm/")).get_data(as_text=True)
    assert "Mailgun — email delivery (USA)" in page
    assert "Hetzner — hosting (Germany)" in page
    assert "No organisation on this platform holds this address." in page


def test_a_confirmation_email_that_cannot_be_sent_is_reported_and_loses_nothing(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    smtp_sink.reply_for("later@example.org", "451 try again later")
    response = submit(client, "later@example.org", "access")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "could not send the confirmation email" in page
    assert 'value="later@example.org"' in page  # the typed address is kept
    with app.app_context():
        request = core_db.session.scalars(select(DataRequest)).one()
        assert request.confirmation_sent_at is None  # so a retry is not held back
    assert submit(client, "later@example.org", "access").status_code == 200
    assert link_in(smtp_sink, "later@example.org", "/privacy/confirm/")


def test_simultaneous_requests_for_one_address_send_one_email(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    import threading

    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def request_access(number: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/privacy/request",
            data={"email": KNOWN, "kind": "access"},
            environ_base={"REMOTE_ADDR": f"203.0.{number}.9"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=request_access, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200, 200, 200, 200]
    assert len(smtp_sink.to(KNOWN)) == 1


def _words(page: str) -> str:
    return " ".join(page.split())


def test_a_second_request_inside_the_email_window_is_answered_truthfully(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    """Issue 19: the form said "check your inbox" when nothing was sent, and claimed the earlier
    link still worked after it had been used. The answer is now true, and the same for a held
    address and an unknown one."""
    app = app_factory(DATA_REQUEST_EMAIL_WINDOW=900, DATA_REQUEST_MAX_AGE=24 * 3600)
    client = app.test_client()
    held, unknown = "zoë.ñúñez@example.org", "ольга@example.net"
    with app.app_context():
        make_list_with_contacts(make_tenant(), [held])
    with time_machine.travel("2026-03-01 10:00:00", tick=False):
        for address in (held, unknown):
            first = _words(submit(client, address, "access").get_data(as_text=True))
            assert "Check your inbox" in first and "10:00 UTC on 2 March 2026" in first
            assert "every 15 minutes" in first and "before 10:15 UTC on 1 March 2026" in first
    # The held address's link is used; the unknown one's is not.
    held_link = link_in(smtp_sink, held, "/privacy/confirm/")
    with time_machine.travel("2026-03-01 10:02:00", tick=False):
        assert client.post(held_link).status_code == 200
    with time_machine.travel("2026-03-01 10:05:00", tick=False):
        pages = {
            a: _words(submit(client, a, "erase").get_data(as_text=True)) for a in (held, unknown)
        }
    assert len(smtp_sink.to(held)) == 1 and len(smtp_sink.to(unknown)) == 1  # nothing new sent
    for address, page in pages.items():
        assert "Check your inbox" not in page and "We sent a confirmation link" not in page
        assert "No new email this time" in page
        assert "at 10:00 UTC on 1 March 2026" in page
        # Only a conditional claim about the earlier link, whatever became of it.
        assert "If that earlier link has not been used yet" in page
        assert "an earlier link still works" not in page
        assert "send this form again after 10:15 UTC on 1 March 2026" in page
        assert address not in page
    assert _normalise_page(pages[held], held) == _normalise_page(pages[unknown], unknown)
    with time_machine.travel("2026-03-01 10:06:00", tick=False):
        # The used link stays used (the page said nothing else); the unused one still works.
        assert client.get(held_link).status_code == 410
        unknown_link = link_in(smtp_sink, unknown, "/privacy/confirm/")
        assert client.get(unknown_link).status_code == 200
    with time_machine.travel("2026-03-01 10:16:00", tick=False):
        again = submit(client, held, "erase").get_data(as_text=True)
    assert "Check your inbox" in again
    assert len(smtp_sink.to(held)) == 2
    with app.app_context():
        statuses = core_db.session.scalars(select(DataRequest.status).order_by(DataRequest.id))
        assert list(statuses) == ["fulfilled", "received", "expired", "expired", "received"]
