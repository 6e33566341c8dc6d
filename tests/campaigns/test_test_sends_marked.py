"""A test send to several addresses (commas and lines, international ones), marked as a test,
from a verified sender only, received through the real SMTP sink, its links working and
counted nowhere."""

from __future__ import annotations

import html
import re
from typing import Any

from flask import Flask
from sqlalchemy import func, select, update

from campaigns.models import Message, Sender
from core import db as core_db
from tests.campaigns.helpers import campaign_with
from tests.conftest import drain
from tests.factories import login
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink
from tracking import analytics

ADDRESSES = (
    "marketer@shop.example,\r\nzoë@bücher.example ; 李小龍@example.cn\r\nMarketer@Shop.example"
)


def _logged_in(app: Flask) -> tuple[Any, Any]:
    """A campaign ready for tests, and a client logged in as its owner."""
    with app.app_context():
        setup = campaign_with(["ana@example.org"])
        core_db.session.remove()
    client = app.test_client()
    login(client, setup.tenant.email)
    return setup, client


def test_several_addresses_get_a_marked_test_whose_links_work(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    setup, client = _logged_in(app)
    sent = client.post(
        f"/campaigns/{setup.campaign_id}/test", data={"addresses": ADDRESSES, "contact_id": 0}
    )
    assert sent.status_code == 302
    received = smtp_sink.wait_for(3)
    assert sorted(r.unicode_recipients[0] for r in received) == [
        "marketer@shop.example",
        "zoë@bücher.example",
        "李小龍@example.cn",
    ]  # each once
    for message in (r.message for r in received):
        assert str(message["Subject"]) == "[Test] Hello Sample"
        assert message["X-Envoy-Test"] == "yes"
    body = received[0].message.get_body(preferencelist=("html",))
    assert body is not None
    clicks = [html.unescape(h) for h in re.findall(r'href="([^"]+/c/[^"]+)"', body.get_content())]
    public = app.test_client(use_cookies=False)
    assert [public.get(path_of(c)).headers["Location"] for c in clicks] == [
        "https://shop.example/a"
    ]
    drain(app)
    with app.app_context():
        stats = analytics.campaign_stats(setup.campaign_id)
        assert (stats.total, stats.sent, stats.clicks, stats.machine_clicks) == (0, 0, 0, 0)
        assert core_db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_too_many_or_bad_addresses_are_refused_inline_and_nothing_is_sent(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    setup, client = _logged_in(app)
    many = "\n".join(f"p{i}@example.org" for i in range(11))
    refused = client.post(f"/campaigns/{setup.campaign_id}/test", data={"addresses": many})
    assert refused.status_code == 400
    assert "At most 10 addresses per test." in refused.get_data(as_text=True)
    assert "p10@example.org" in refused.get_data(as_text=True)  # what was typed is kept
    bad = client.post(
        f"/campaigns/{setup.campaign_id}/test", data={"addresses": "ok@example.org, not-an-address"}
    )
    assert bad.status_code == 400 and "not-an-address:" in bad.get_data(as_text=True)
    assert smtp_sink.messages == []


def test_tests_go_from_verified_senders_only(app_factory: Any, smtp_sink: SMTPSink) -> None:
    app = app_factory(REQUIRE_VERIFIED_SENDER=True)
    setup, client = _logged_in(app)
    with app.app_context():
        core_db.session.execute(update(Sender).values(verified_at=None))
        core_db.session.commit()
        core_db.session.remove()
    refused = client.post(
        f"/campaigns/{setup.campaign_id}/test", data={"addresses": "me@shop.example"}
    )
    assert refused.status_code == 400
    assert "Verify the sender address news@shop.example first" in refused.get_data(as_text=True)
    assert smtp_sink.messages == []
