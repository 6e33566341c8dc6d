"""Previews over HTTP: desktop and mobile widths, dark mode, the plain-text part, and as a
contact found with the search picker."""

from __future__ import annotations

import html
import re
from typing import Any

from flask import Flask

from subscribers import services as subscribers
from tests.campaigns.helpers import campaign_with
from tests.factories import login

BODY = (
    '<html><head><title>x</title></head><body style="background:#ffffff;color:#111">'
    "<p>Hallo {{ contact.first_name or 'du' }} aus {{ contact.attributes.city or '?' }}</p>"
    '<img src="https://shop.example/a.png" alt="Garten">'
    '<a href="https://shop.example/a">A</a></body></html>'
)


def _set_up(app: Flask, body: str = BODY) -> tuple[Any, Any, int]:
    with app.app_context():
        setup = campaign_with(["ana@example.org"], html=body)
        contact = subscribers.add_contact_to_list(
            setup.tenant.account_id, setup.list_id, "zoë@bücher.example", "Zoë Ñúñez",
            attributes={"city": "Köln"},
        )  # fmt: skip
    client = app.test_client()
    login(client, setup.tenant.email)
    return setup, client, contact.id


def test_views_desktop_mobile_dark_and_text(app: Flask, db: Any) -> None:
    setup, client, contact_id = _set_up(app)
    page_url = f"/campaigns/{setup.campaign_id}"
    desktop = client.get(page_url).get_data(as_text=True)
    assert 'data-view="desktop"' in desktop and "width:100%" in desktop
    mobile = client.get(page_url + "?view=mobile").get_data(as_text=True)
    frame = re.search(r'<iframe id="preview"[^>]*>', mobile, re.S)
    assert frame and "width:375px" in frame.group(0) and 'sandbox=""' in frame.group(0)
    dark = client.get(page_url + "?view=dark").get_data(as_text=True)
    frame = re.search(r'<iframe id="preview"[^>]*src="([^"]+)"', dark, re.S)
    assert frame and "dark=1" in frame.group(1)
    shown = client.get(html.unescape(frame.group(1)))
    body = shown.get_data(as_text=True)
    assert "sandbox" in shown.headers["Content-Security-Policy"]
    assert "filter:invert(1)" in body and body.index("filter:invert") < body.index("<body")
    assert "Hallo Sample aus ?" in body
    text = client.get(page_url + f"?view=text&contact_id={contact_id}").get_data(as_text=True)
    part = re.search(r'<pre id="preview-text"[^>]*>(.*?)</pre>', text, re.S)
    assert part, text
    shown_text = html.unescape(part.group(1))
    assert "Hallo Zoë aus Köln" in shown_text and "Unsubscribe: " in shown_text
    assert "<p>" not in shown_text and "1 Main St" in shown_text
    assert '<iframe id="preview"' not in text


def test_an_emails_own_dark_styles_are_applied_unconditionally(app: Flask, db: Any) -> None:
    own = BODY.replace(
        "<title>x</title>",
        "<style>@media (prefers-color-scheme: dark) { body { background:#000 !important } }"
        "</style>",
    )
    setup, client, _ = _set_up(app, own)
    body = client.get(f"/campaigns/{setup.campaign_id}/preview?dark=1").get_data(as_text=True)
    assert "@media all { body { background:#000" in body and "invert" not in body
    plain = client.get(f"/campaigns/{setup.campaign_id}/preview").get_data(as_text=True)
    assert "prefers-color-scheme: dark" in plain


def _picker(page: str) -> str:
    """The preview's contact select."""
    found = re.search(r'<select[^>]*id="preview_contact".*?</select>', page, re.S)
    assert found, page
    return found.group(0)


def test_preview_as_a_contact_found_by_search(app: Flask, db: Any) -> None:
    setup, client, contact_id = _set_up(app)
    found = _picker(client.get(f"/campaigns/{setup.campaign_id}?q=zoë").get_data(as_text=True))
    options = re.findall(r'<option[^>]*value="(\d+)"[^>]*>([^<]*)</option>', found)
    assert [(int(v), html.unescape(label)) for v, label in options] == [
        (0, "A sample contact"),
        (contact_id, "Zoë Ñúñez <zoë@bücher.example>"),
    ]
    nobody = client.get(f"/campaigns/{setup.campaign_id}?q=%25_nobody").get_data(as_text=True)
    assert re.findall(r"<option[^>]*>([^<]*)<", _picker(nobody)) == ["A sample contact"]
    shown = client.get(f"/campaigns/{setup.campaign_id}/preview?contact_id={contact_id}")
    assert "Hallo Zoë aus Köln" in shown.get_data(as_text=True)
