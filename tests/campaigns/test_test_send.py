"""A test send's links work and record nothing (issue 19): followed one by one from the message
the SMTP sink received, with the test client."""

from __future__ import annotations

import html
import re
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from campaigns.models import Message
from core import db as core_db
from subscribers.models import ConsentRecord, Subscription
from tests.campaigns.helpers import campaign_with
from tests.conftest import drain
from tests.factories import login
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink
from tracking import analytics
from tracking.models import DailyCampaignStat, MessageUnsubscribe, TrackingEvent

BODY = (
    "<html><body><p>Hallo {{ contact.first_name }}, новые товары!</p>"
    '<a href="https://shop.example/a?x=1&amp;y=2">A</a> '
    '<a href="https://bücher.example/straße">Bücher</a></body></html>'
)


def _nothing_recorded(app: Flask, campaign_id: int) -> None:
    drain(app)
    with app.app_context():
        session = core_db.session
        for model in (TrackingEvent, DailyCampaignStat, MessageUnsubscribe, Message):
            assert session.scalar(select(func.count()).select_from(model)) == 0, model
        assert set(session.scalars(select(Subscription.status))) == {"subscribed"}
        assert (
            session.scalar(
                select(func.count())
                .select_from(ConsentRecord)
                .where(ConsentRecord.action != "subscribed")
            )
            == 0
        )
        stats = analytics.campaign_stats(campaign_id)
        assert (stats.opens, stats.clicks, stats.unsubscribes, stats.total) == (0, 0, 0, 0)
        session.remove()


def test_every_link_of_a_test_message_works_and_records_nothing(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        setup = campaign_with(["zoë@example.org", "李小龍@example.cn"], html=BODY)
        core_db.session.remove()
    client = app.test_client()
    login(client, setup.tenant.email)
    sent = client.post(
        f"/campaigns/{setup.campaign_id}/test",
        data={"addresses": "marketer@shop.example", "contact_id": 0},
    )
    assert sent.status_code == 302
    (received,) = smtp_sink.wait_for(1)
    message = received.message
    assert str(message["Subject"]).startswith("[Test] ")
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    body, text = html_part.get_content(), text_part.get_content()
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', body)]
    assert "/o/" not in body and "/h/" not in body  # no beacon, no honeypot
    clicks = [h for h in hrefs if "/c/" in h]
    assert len(clicks) == 2  # the text part keeps destinations as written, as in a real send
    public = app.test_client(use_cookies=False)
    locations = [public.get(path_of(c)).headers["Location"] for c in clicks]
    assert locations == [
        "https://shop.example/a?x=1&y=2",
        "https://xn--bcher-kva.example/stra%C3%9Fe",
    ]

    header = re.match(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    assert header and message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = [h for h in hrefs if "/u/" in h]
    assert unsubscribe == [header.group(1)] and header.group(1) in text
    page = public.get(path_of(header.group(1)))
    shown = " ".join(page.get_data(as_text=True).split())
    assert page.status_code == 200 and 'id="test-notice"' in shown
    assert "test message" in shown and "Unsubscribe from Shop?" in shown and "News" in shown
    pressed = public.post(path_of(header.group(1))).get_data(as_text=True)
    assert "Test: nothing changed" in pressed
    one_click = public.post(path_of(header.group(1)), data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and "Test message" in one_click.get_data(as_text=True)
    assert public.post(path_of(header.group(1)) + "/undo", data={"undo": "x"}).status_code == 404

    preferences = [h for h in hrefs if "/preferences/" in h]
    assert len(preferences) == 1
    shown = public.get(path_of(preferences[0])).get_data(as_text=True)
    assert 'id="test-notice"' in shown and "News" in shown
    answer = public.post(path_of(preferences[0]), data={"action": "everything"})
    assert "nothing was changed" in answer.get_data(as_text=True)
    _nothing_recorded(app, setup.campaign_id)


def test_a_test_click_token_cannot_be_bent_into_a_tracked_one(app: Flask, db: Any) -> None:
    from core.signing import Purpose, sign
    from tracking import urls

    setup = campaign_with([])
    token = urls.test_click_url(setup.campaign_id, "https://shop.example/a").rsplit("/", 1)[1]
    assert urls.parse_click(token).test
    # Link 0 is the test marker's; a "test" payload naming a real link is not a test token.
    forged = sign(Purpose.CLICK, [setup.campaign_id, 5, "https://shop.example/a", "test"])
    import pytest

    from core.signing import BadTokenError

    with pytest.raises(BadTokenError):
        urls.parse_click(forged)
