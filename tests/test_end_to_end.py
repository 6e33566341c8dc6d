"""One campaign all the way through, over HTTP and a real SMTP server.

Sign up, create a list, add contacts, write and send a campaign; parse each received message;
follow its beacon, click and unsubscribe URLs; read the counts on the campaign page. Runs with
the in-process queue and with the Redis broker, on the run's database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import drain
from tests.factories import PASSWORD, id_from_location
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink
from tracking.views import PIXEL

RECIPIENTS = ["ada@example.org", "grace@example.net", "linus@example.com"]
BODY = (
    "<html><body><h1>News</h1>"
    '<p><a href="https://shop.example/sale?id=7&amp;ref=mail">Sale</a> and '
    '<a href="https://shop.example/blog">blog</a></p></body></html>'
)


def _stat(page: str, name: str) -> int:
    match = re.search(rf'data-stat="{name}">(\d+)<', page)
    assert match, f"no {name} on the page"
    return int(match.group(1))


@pytest.mark.parametrize("broker", ["inprocess", "redis"])
def test_campaign_flows_end_to_end(app_factory: Any, smtp_sink: SMTPSink, broker: str) -> None:
    app = app_factory(broker=broker)
    client = app.test_client()

    response = client.post(
        "/signup",
        data={
            "account_name": "Shop",
            "name": "Ann",
            "email": "ann@shop.example",
            "password": PASSWORD,
            "of_age": "y",
        },
    )
    assert response.status_code == 302
    response = client.post(
        "/settings?tab=general",
        data={"general-name": "Shop", "general-postal_address": "1 Main Street, Springfield"},
    )
    assert response.status_code == 302
    response = client.post("/lists", data={"name": "Customers"})
    list_id = id_from_location(response.headers["Location"], "/lists")
    for address in RECIPIENTS:
        response = client.post(f"/lists/{list_id}", data={"email": address, "name": ""})
        assert response.status_code == 302
    response = client.post(
        "/campaigns/new",
        data={
            "name": "Spring",
            "subject": "Spring sale",
            "from_name": "Shop",
            "from_email": "news@shop.example",
            "list_ids": list_id,
            "html_body": BODY,
            "track_opens": "y",
            "track_clicks": "y",
        },
    )
    campaign_id = id_from_location(response.headers["Location"], "/campaigns")
    confirm = client.get(f"/campaigns/{campaign_id}/send").get_data(as_text=True)
    assert f"Send now to {len(RECIPIENTS)} recipients" in confirm
    response = client.post(f"/campaigns/{campaign_id}/send", data={"expected": len(RECIPIENTS)})
    assert response.status_code == 302

    drain(app)
    received = smtp_sink.wait_for(len(RECIPIENTS))
    assert sorted(r.recipients[0] for r in received) == sorted(RECIPIENTS)

    by_recipient = {r.recipients[0]: urls_of(r.message) for r in received}
    for address, urls in by_recipient.items():
        message = next(r.message for r in received if r.recipients[0] == address)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Message-ID"]
        assert urls.beacon is not None
        assert len(urls.clicks) == 2
        assert urls.unsubscribe_body == urls.unsubscribe_header
        assert "1 Main Street, Springfield" in urls.html
        assert address not in urls.beacon and address not in "".join(urls.clicks)

    # Open and click, by the first recipient. Public links get no cookie.
    public = app.test_client(use_cookies=False)
    first = by_recipient[RECIPIENTS[0]]
    assert first.beacon is not None
    pixel = public.get(path_of(first.beacon))
    assert pixel.status_code == 200
    assert pixel.data == PIXEL and len(pixel.data) == 43
    assert pixel.headers["Content-Type"] == "image/gif"
    assert "no-store" in pixel.headers["Cache-Control"]
    assert "Set-Cookie" not in pixel.headers
    click = public.get(path_of(first.clicks[0]))
    assert click.status_code == 302
    assert click.headers["Location"] == "https://shop.example/sale?id=7&ref=mail"
    assert click.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in click.headers

    # RFC 8058 one-click unsubscribe by the second: POST, no cookie, no CSRF, no redirect.
    second = by_recipient[RECIPIENTS[1]]
    one_click = public.post(
        path_of(second.unsubscribe_header), data={"List-Unsubscribe": "One-Click"}
    )
    assert one_click.status_code == 200
    assert "Location" not in one_click.headers

    # The third: GET shows a page and changes nothing; the page's button unsubscribes.
    third = by_recipient[RECIPIENTS[2]]
    assert third.unsubscribe_body is not None
    page = public.get(path_of(third.unsubscribe_body))
    assert page.status_code == 200 and "Unsubscribe from Shop?" in page.get_data(as_text=True)
    head = public.head(path_of(third.unsubscribe_body))
    assert head.status_code == 200
    list_page = client.get(f"/lists/{list_id}").get_data(as_text=True)
    assert list_page.count("badge unsubscribed") == 1  # only the one-click one so far
    done = public.post(path_of(third.unsubscribe_body))
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)

    drain(app)
    report = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert _stat(report, "sent") == 3
    assert _stat(report, "opens") == 1
    assert _stat(report, "clicks") == 1
    assert _stat(report, "unsubscribes") == 2
    assert 'id="campaign-status">sent<' in report
    list_page = client.get(f"/lists/{list_id}").get_data(as_text=True)
    assert list_page.count("badge unsubscribed") == 2
