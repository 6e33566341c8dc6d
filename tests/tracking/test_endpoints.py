"""The public tracking endpoints over HTTP, on messages received from a real SMTP server."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from core import db as core_db
from core.db import utcnow
from core.signing import Purpose, sign
from subscribers.models import Subscription
from tests.conftest import TEST_KEYS, drain
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import BROWSER_UA, event_count, events, send_campaign, token_payload
from tracking.views import PIXEL

RECIPIENTS = ["ada@example.org", "bob@example.net"]


def _later() -> Any:
    """A minute after delivery: hits are no longer "within seconds of delivery"."""
    return time_machine.travel(utcnow() + timedelta(minutes=1), tick=True)


def test_with_individual_tracking_off_the_email_urls_name_no_person(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=False)
    for address, urls in sent.urls.items():
        assert urls.beacon is not None
        assert token_payload(urls.beacon) == [sent.campaign_id]
        assert token_payload(sent.honeypot(address)) == [sent.campaign_id]
        assert len(urls.clicks) == 3
        for click in urls.clicks:
            payload = token_payload(click)
            assert len(payload) == 3 and payload[0] == sent.campaign_id
            assert isinstance(payload[2], str) and payload[2].startswith("https://shop.example/")
        assert address not in urls.html.replace(f"To: {address}", "")
    # The same campaign's beacon is byte-identical for every recipient: it identifies no one.
    beacons = {u.beacon for u in sent.urls.values()}
    assert len(beacons) == 1


def test_with_individual_tracking_on_the_urls_carry_the_message(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    beacons = {u.beacon for u in sent.urls.values()}
    assert len(beacons) == 2
    for urls in sent.urls.values():
        assert urls.beacon is not None and len(token_payload(urls.beacon)) == 2


def test_hits_are_reduced_and_answered_without_cookies(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    urls = sent.urls[RECIPIENTS[0]]
    public = app.test_client(use_cookies=False)
    env = {"REMOTE_ADDR": "203.0.113.77"}
    with _later():
        assert urls.beacon is not None
        pixel = public.get(
            path_of(urls.beacon), headers={"User-Agent": BROWSER_UA}, environ_base=env
        )
        click = public.get(
            path_of(urls.clicks[0]), headers={"User-Agent": BROWSER_UA}, environ_base=env
        )
    assert pixel.status_code == 200 and pixel.data == PIXEL
    assert pixel.headers["Content-Type"] == "image/gif"
    assert "no-store" in pixel.headers["Cache-Control"]
    assert click.status_code == 302
    assert click.headers["Location"] == "https://shop.example/a?x=1&y=2"
    assert click.headers["Referrer-Policy"] == "no-referrer"
    for response in (pixel, click):
        assert "Set-Cookie" not in response.headers
    drain(app)
    stored = events(app)
    assert [(e.kind, e.is_machine) for e in stored] == [("open", False), ("click", False)]
    for event in stored:
        assert event.ua_class == "desktop"
        assert event.message_id is not None
    # Nothing raw anywhere in the table, and no prefix next to an identified event either.
    dump = json.dumps([{k: str(v) for k, v in vars(e).items()} for e in stored])
    assert "203.0.113" not in dump and "Safari" not in dump


def test_ip_dropped_when_the_account_says_so(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True, ip_handling="drop")
    public = app.test_client(use_cookies=False)
    with _later():
        public.get(
            path_of(sent.urls[RECIPIENTS[0]].clicks[1]),
            headers={"User-Agent": BROWSER_UA},
            environ_base={"REMOTE_ADDR": "2001:db8:1:2::9"},
        )
    drain(app)
    (event,) = events(app)
    assert event.message_id is not None
    assert "2001:db8" not in json.dumps({k: str(v) for k, v in vars(event).items()})


def test_anonymous_account_stores_counts_without_person_or_prefix(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=False)
    public = app.test_client(use_cookies=False)
    for address in RECIPIENTS:
        urls = sent.urls[address]
        assert urls.beacon is not None
        public.get(path_of(urls.beacon), headers={"User-Agent": BROWSER_UA})
    drain(app)
    stored = events(app)
    assert len(stored) == 2
    assert all(e.message_id is None for e in stored)


def _resign_with_changed_url(token: str) -> str:
    payload_part, signature = token.split(".", 1)
    payload = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
    payload[2] = "https://evil.example/"
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return forged.decode().rstrip("=") + "." + signature


def test_open_redirect_attempts_fail(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=False)
    click_path = path_of(sent.urls[RECIPIENTS[0]].clicks[0])
    token = click_path.rsplit("/", 1)[1]
    public = app.test_client(use_cookies=False)
    attempts = [
        "/c///evil.example",
        "/c//evil.example",
        "/c/javascript:alert(1)",
        "/c/" + _resign_with_changed_url(token),
        "/c/" + token + "x",
    ]
    with app.app_context():
        # A link the campaign never registered, and a destination that is not http(s).
        attempts.append("/c/" + sign(Purpose.OPEN, [sent.campaign_id, 1, "https://evil.example/"]))
        attempts.append("/c/" + sign(Purpose.CLICK, [sent.campaign_id, 1, "javascript:alert(1)"]))
        attempts.append("/c/" + sign(Purpose.CLICK, [sent.campaign_id, 1, "//evil.example/"]))
    with app.app_context():
        # An unregistered link: a token made without the platform's keys.
        other = Flask("forger")
        other.config["SECRET_KEYS"] = ["not-the-platform-key-0123456789"]
        with other.app_context():
            attempts.append(
                "/c/" + sign(Purpose.CLICK, [sent.campaign_id, 99, "https://evil.example/"])
            )
    for path in attempts:
        response = public.get(path)
        location = urlsplit(response.headers.get("Location", ""))
        if path.startswith("/c//"):
            # Werkzeug merges the slashes: a redirect to our own /c/evil.example, which is a 404.
            assert response.status_code == 308 and location.netloc in ("", "localhost"), path
            assert public.get(location.path).status_code == 404
        else:
            assert response.status_code == 404, path
        assert location.netloc != "evil.example"
    # A changed or added query parameter cannot move the destination.
    for suffix in ["?url=https://evil.example/", "?next=//evil.example", "?x=2&y=3"]:
        response = public.get(click_path + suffix)
        assert response.status_code == 302
        assert response.headers["Location"] == "https://shop.example/a?x=1&y=2"
    drain(app)
    assert event_count(app) == 3  # only the three valid clicks


def test_click_redirects_to_its_destination_as_a_uri(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=False)
    expected = {
        "https://shop.example/a?x=1&y=2#top": "https://shop.example/a?x=1&y=2#top",
        "https://shop.example/~p/(1);a=b,c:d@e!$'*+%2F": "https://shop.example/~p/(1);a=b,c:d@e!$'*+%2F",
        "https://bücher.example/straße?q=ä b": "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4%20b",
        'https://shop.example/"x"<y>{z}|^`': "https://shop.example/%22x%22%3Cy%3E%7Bz%7D%7C%5E%60",
        "https://[2001:db8::1]:8443/a": "https://[2001:db8::1]:8443/a",
    }
    public = app.test_client(use_cookies=False)
    for destination, location in expected.items():
        with app.app_context():
            token = sign(Purpose.CLICK, [sent.campaign_id, 1, destination])
        response = public.get(f"/c/{token}")
        assert response.status_code == 302
        assert response.headers["Location"] == location


def test_forged_and_other_purpose_tokens_record_nothing(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    urls = sent.urls[RECIPIENTS[0]]
    assert urls.beacon is not None
    beacon = path_of(urls.beacon).rsplit("/", 1)[1].removesuffix(".gif")
    click = path_of(urls.clicks[0]).rsplit("/", 1)[1]
    honeypot = sent.honeypot(RECIPIENTS[0]).rsplit("/", 1)[1]
    public = app.test_client(use_cookies=False)
    other = Flask("forger")
    other.config["SECRET_KEYS"] = ["a-key-nobody-here-knows-0123456789"]
    with other.app_context():
        forged_open = sign(Purpose.OPEN, [sent.campaign_id])
        forged_click = sign(Purpose.CLICK, [sent.campaign_id, 1, "https://shop.example/a"])
    assert public.get(f"/o/{forged_open}.gif").data == PIXEL
    assert public.get(f"/c/{forged_click}").status_code == 404
    assert public.get(f"/c/{beacon}").status_code == 404
    assert public.get(f"/c/{honeypot}").status_code == 404
    assert public.get(f"/h/{click}").status_code == 404
    assert public.get(f"/h/{beacon}").status_code == 404
    assert public.get(f"/o/{click}.gif").data == PIXEL
    assert public.get(f"/o/{honeypot}.gif").data == PIXEL
    drain(app)
    assert event_count(app) == 0
    assert TEST_KEYS  # the app signs with the test keys; the forger's key is not among them


def _subscription_statuses(app: Flask) -> list[str]:
    with app.app_context():
        found = list(core_db.session.scalars(select(Subscription.status)))
        core_db.session.remove()
        return found


@pytest.mark.parametrize("individual", [True, False])
def test_scanner_burst_is_machine_activity_and_unsubscribes_nobody(
    app: Flask, smtp_sink: SMTPSink, individual: bool
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=individual)
    urls = sent.urls[RECIPIENTS[0]]
    scanner = app.test_client(use_cookies=False)
    # A security gateway, a minute after delivery, with a browser's agent: it fetches every
    # URL of the message (links, hidden link, beacon, unsubscribe) with HEAD and GET.
    headers = {"User-Agent": BROWSER_UA}
    env = {"REMOTE_ADDR": "198.51.100.23"}
    assert urls.beacon is not None and urls.unsubscribe_body is not None
    paths = [path_of(u) for u in urls.clicks] + [sent.honeypot(RECIPIENTS[0])]
    paths += [path_of(urls.beacon), path_of(urls.unsubscribe_body)]
    with _later():
        for path in paths:
            for method in ("HEAD", "GET"):
                response = scanner.open(path, method=method, headers=headers, environ_base=env)
                assert response.status_code in (200, 302)
    drain(app)
    stored = events(app)
    assert stored, "the scanner's hits are recorded"
    assert all(e.is_machine for e in stored), [(e.kind, e.machine_reason) for e in stored]
    assert {e.kind for e in stored} >= {"click", "open", "honeypot"}
    assert not any(e.kind == "unsubscribe" for e in stored)
    assert _subscription_statuses(app) == ["subscribed", "subscribed"]
    # A person of the same campaign, elsewhere, is still a person.
    other = sent.urls[RECIPIENTS[1]]
    with _later():
        scanner.get(
            path_of(other.clicks[2]), headers=headers, environ_base={"REMOTE_ADDR": "192.0.2.5"}
        )
    drain(app)
    assert [e.is_machine for e in events(app) if e.link_id][-1] is False


def test_hits_within_seconds_of_delivery_are_machine(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    urls = sent.urls[RECIPIENTS[0]]
    app.test_client(use_cookies=False).get(
        path_of(urls.clicks[0]), headers={"User-Agent": BROWSER_UA}
    )
    drain(app)
    (event,) = events(app)
    assert event.is_machine and event.machine_reason == "early"


def test_script_in_user_agent_or_referrer_is_never_rendered(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    evil = '"><script>alert(1)</script>'
    public = app.test_client(use_cookies=False)
    urls = sent.urls[RECIPIENTS[0]]
    assert urls.beacon is not None
    with _later():
        for path in [path_of(urls.beacon), path_of(urls.clicks[0]), "/c/" + evil, "/o/" + evil]:
            response = public.get(path, headers={"User-Agent": evil, "Referer": evil})
            assert b"<script>" not in response.data
    drain(app)
    assert {e.ua_class for e in events(app)} == {"other"}
    from tests.factories import login

    client = app.test_client()
    login(client, sent.tenant.email)
    for page in [
        f"/campaigns/{sent.campaign_id}/report",
        "/reports",
        f"/campaigns/{sent.campaign_id}",
    ]:
        html = client.get(page).get_data(as_text=True)
        # The page may have scripts of its own (progress polling); the payload never renders.
        assert "<script>alert" not in html and "alert(1)" not in html and evil not in html
    csv_text = client.get(f"/campaigns/{sent.campaign_id}/report.csv").get_data(as_text=True)
    assert "<script>" not in csv_text


def test_a_valid_click_redirects_and_the_beacon_answers_with_the_database_down(
    app: Flask, smtp_sink: SMTPSink, app_factory: Any, tmp_path: Any
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    urls = sent.urls[RECIPIENTS[0]]
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = app_factory(
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{port}/none",
        TRACKING_SPOOL_DIR=str(tmp_path / "spool-down"),
    )
    public = down.test_client(use_cookies=False)
    click = public.get(path_of(urls.clicks[1]), headers={"User-Agent": BROWSER_UA})
    assert click.status_code == 302 and click.headers["Location"] == "https://shop.example/b"
    assert urls.beacon is not None
    beacon = public.get(path_of(urls.beacon))
    assert beacon.status_code == 200 and beacon.data == PIXEL
    from tracking import buffer

    assert buffer.get_buffer(down).pending() == 2  # held, not lost
    buffer.close(down)  # a graceful exit with the database still down: spooled to disk
    assert buffer.get_buffer(down).pending() == 0
    assert len(list((tmp_path / "spool-down").glob("hits-*.jsonl"))) == 1


def test_report_of_another_account_is_not_found(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=True)
    from tests.factories import login, make_tenant

    with app.app_context():
        intruder = make_tenant(email="intruder@other.example")
        core_db.session.remove()
    client = app.test_client()
    login(client, intruder.email)
    assert client.get(f"/campaigns/{sent.campaign_id}/report").status_code == 404
    assert client.get(f"/campaigns/{sent.campaign_id}/report.csv").status_code == 404


def test_reports_of_an_anonymous_campaign_and_its_csv(app: Flask, smtp_sink: SMTPSink) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=False)
    public = app.test_client(use_cookies=False)
    for address in RECIPIENTS:
        beacon = sent.urls[address].beacon
        assert beacon is not None
        public.get(path_of(beacon), headers={"User-Agent": BROWSER_UA})
    public.get(path_of(sent.urls[RECIPIENTS[0]].clicks[0]), headers={"User-Agent": "Mozilla/5.0"})
    drain(app)
    from tests.factories import login

    client = app.test_client()
    login(client, sent.tenant.email)
    page = client.get(f"/campaigns/{sent.campaign_id}/report").get_data(as_text=True)
    assert "Individual tracking is off" in page
    assert 'data-stat="opens">2<' in page and 'data-stat="machine-clicks">1<' in page
    assert "<svg" in page and "polyline" in page
    overview = client.get("/reports").get_data(as_text=True)
    assert f"/campaigns/{sent.campaign_id}/report" in overview
    exported = client.get(f"/campaigns/{sent.campaign_id}/report.csv")
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in exported.headers["Content-Disposition"]
    text = exported.get_data(as_text=True)
    assert "summary,opens,2,0," in text and "https://shop.example/a?x=1&y=2,0,0,1" in text
    assert "@" not in text  # domains at most, never an address


@pytest.mark.parametrize("individual", [True, False])
def test_evidence_in_a_later_batch_reclassifies_the_earlier_hits(
    app: Flask, smtp_sink: SMTPSink, individual: bool
) -> None:
    sent = send_campaign(app, smtp_sink, RECIPIENTS, individual=individual)
    urls = sent.urls[RECIPIENTS[0]]
    scanner = app.test_client(use_cookies=False)
    env = {"REMOTE_ADDR": "198.51.100.23"}
    headers = {"User-Agent": BROWSER_UA}
    with _later():
        for click in urls.clicks[:2]:  # two GETs, each ingested on its own
            scanner.get(path_of(click), headers=headers, environ_base=env)
            drain(app)
        # A person elsewhere clicks meanwhile.
        scanner.get(
            path_of(sent.urls[RECIPIENTS[1]].clicks[0]),
            headers=headers,
            environ_base={"REMOTE_ADDR": "192.0.2.5"},
        )
        drain(app)
        assert sum(not e.is_machine for e in events(app)) == 3  # nothing known yet
        scanner.get(sent.honeypot(RECIPIENTS[0]), headers=headers, environ_base=env)
        drain(app)
    stored = events(app)
    by_person = [e for e in stored if e.kind == "click" and e.is_machine is False]
    assert len(by_person) == 1
    assert sorted(e.machine_reason or "" for e in stored if e.is_machine) == [
        "burst",
        "burst",
        "honeypot",
    ]
    with app.app_context():
        from tracking import analytics

        stats = analytics.campaign_stats(sent.campaign_id)
        core_db.session.remove()
    assert (stats.clicks, stats.machine_clicks) == (1, 2)
    assert stats.unique_clicks == (1 if individual else 0)
    assert sum(n for _, n in stats.clicks_per_link) == 1
