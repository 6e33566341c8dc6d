"""The compose page's editors (issue 18) in headless Chromium: a campaign built in the visual
editor (a block dragged in, text typed, a personalisation field picked, a button given a link, an
image picked from the media library),
saved, reloaded intact, previewed at phone width and sent as a test; the same for markdown and
rich text. Every request the page makes goes to the app's own origin."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from campaigns import senders
from campaigns.models import Campaign, ContentFormat
from core import db as core_db
from media import services as media
from subscribers import services as subscribers
from tests.browser.a11y import assert_no_axe_violations
from tests.browser.conftest import LiveServer, log_in, screenshot
from tests.factories import make_tenant
from tests.mail_parsing import urls_of
from tests.media.images import png
from tests.smtp_sink import SMTPSink

pytestmark = pytest.mark.browser

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


class Origins:
    """Every URL the page (and its frames) asked for."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))

    def assert_only(self, base: str) -> None:
        own = urlsplit(base).netloc
        foreign = [
            url
            for url in self.urls
            if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != own
        ]
        assert self.urls and foreign == [], f"requests left the app's origin: {foreign[:10]}"


def _tenant(app: Any) -> int:
    with app.app_context():
        tenant = make_tenant(email="ann@shop.example")
        senders.add_sender(tenant.account_id, "news@shop.example", "Shop", verified=True)
        customers = subscribers.create_list(tenant.account_id, "Customers")
        subscribers.add_contact_to_list(
            tenant.account_id,
            customers.id,
            "zoe@example.org",
            "Zoë Ångström",
            attributes={"city": "Kraków", "favourite colour": "teal"},
        )
        # An image in the account's media library, for the visual editor's asset manager.
        media.upload(tenant.account_id, None, "spring-flowers.png", png(300, 200))
        return tenant.account_id


def _start(live_server: LiveServer, page: Any, name: str, fmt: str) -> tuple[str, Origins]:
    """A tenant with a contact, logged in on a new campaign whose format is ``fmt``; the
    requests the page makes from now on are recorded."""
    base = live_server.url
    _tenant(live_server.app)
    origins = Origins(page)
    log_in(page, base, "ann@shop.example")
    _new_campaign(page, base, name, fmt)
    return base, origins


def _send_and_preview(
    page: Any, phone: Any, base: str, campaign_id: int, smtp_sink: SMTPSink, name: str
) -> Any:
    """A test send from the campaign page (its received message's URLs), and the preview
    at phone width."""
    page.goto(f"{base}/campaigns/{campaign_id}")
    urls = urls_of(_test_send(page, smtp_sink).message)
    _phone_preview(phone, base, campaign_id, name)
    return urls


def _new_campaign(page: Any, base: str, name: str, fmt: str) -> None:
    page.goto(f"{base}/campaigns/new")
    page.wait_for_selector("#content-editor[data-ready=yes]")
    page.fill("#name", name)
    page.select_option("#list_ids", label="Customers")
    page.fill("#subject", "News for {{ contact.first_name }}")
    page.fill("#from_email", "news@shop.example")
    page.once("dialog", lambda dialog: dialog.accept())  # the starter HTML is not carried over
    page.select_option("#content_format", fmt)


def _add_block(page: Any, canvas: Any, block: str, kind: str, setting: str, value: str) -> None:
    """Drag the ``block`` block into the canvas, select it and type ``value`` into its
    ``setting`` in the settings (trait) panel."""
    page.click(".gjs-pn-btn[title='Open Blocks']")
    dropped = canvas.locator(f"[data-gjs-type={kind}]").first
    _drag(page, page.locator(".gjs-block", has_text=block), canvas.locator("body"), dropped)
    dropped.click()
    page.click(".gjs-pn-btn[title='Settings']")
    field = page.locator(".gjs-trt-trait", has_text=setting).locator("input")
    field.fill(value)
    field.press("Tab")  # (Enter would submit the compose form, as in any form field)


def _spaces(text: str) -> str:
    """``text`` with no-break spaces (what a browser types at the end of a line) as spaces."""
    return text.replace("\xa0", " ").replace("&nbsp;", " ").replace("&#160;", " ")


def _drag(page: Any, source: Any, target: Any, dropped: Any) -> None:
    """Drag ``source`` into ``target`` with the mouse, as a person does (the blocks are native
    drag and drop into the canvas frame), until ``dropped`` is there (a second try if the first
    gesture was too quick for the browser to start a drag)."""
    for _attempt in range(3):
        page.evaluate("document.querySelector('#visual-panel').scrollIntoView()")
        start = source.bounding_box()
        end = target.bounding_box()
        assert start and end
        x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + 5, y0 + 5, steps=5)
        x, y = end["x"] + end["width"] / 2, end["y"] + 40
        page.mouse.move(x, y - 20, steps=15)
        page.mouse.move(x, y, steps=10)
        page.wait_for_timeout(200)
        page.mouse.up()
        try:
            dropped.wait_for(timeout=3000)
            return
        except Exception:  # noqa: S112 - the drag did not start: try the gesture again
            continue
    raise AssertionError("the block could not be dragged into the canvas")


def _pick_field(page: Any, name: str) -> None:
    page.select_option("#field-picker", name)
    page.click("#insert-field")


def _stored(app: Any, name: str) -> Campaign:
    with app.app_context():
        from sqlalchemy import select

        found = core_db.session.scalar(select(Campaign).where(Campaign.name == name))
        assert found is not None
        core_db.session.expunge(found)
        core_db.session.remove()
        return found


def _test_send(page: Any, smtp_sink: SMTPSink) -> Any:
    page.fill("#addresses", "check@shop.example")
    page.select_option("form:has(#addresses) select", label="Zoë Ångström <zoe@example.org>")
    page.click("button:has-text('Send test')")
    page.wait_for_selector("text=Test sent to 1 address.")
    return smtp_sink.wait_for(1)[0]


def _phone_preview(phone: Any, base: str, campaign_id: int, name: str) -> None:
    log_in(phone, base, "ann@shop.example")
    phone.goto(f"{base}/campaigns/{campaign_id}/preview")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the email scrolls sideways on a phone ({width}px)"
    screenshot(phone, name)


def test_visual_editor_builds_saves_reloads_previews_and_sends(
    live_server: LiveServer, page: Any, phone: Any, smtp_sink: SMTPSink
) -> None:
    base, origins = _start(live_server, page, "Visual spring", "visual")
    page.wait_for_selector("#content-editor[data-visual-ready=yes]")
    assert page.is_hidden("#html_body") and page.is_hidden("#content_source")
    canvas = page.frame_locator("#visual-editor iframe.gjs-frame")
    canvas.locator("body").wait_for()

    # A button with a link, and an image (the platform's own placeholder) described for
    # screen readers: each block dragged in, then given its setting.
    _add_block(
        page, canvas, "Button", "mj-button", "Href", "https://shop.example/sale?from=mail&x=1"
    )
    _add_block(page, canvas, "Image", "mj-image", "Alt", "Spring flowers")
    # The image itself comes from the media library: a double click opens the asset manager,
    # which lists the account's images (GET /media.json); a double click on one picks it.
    page.wait_for_selector("#content-editor[data-media-available=yes]")
    canvas.locator("img[alt='Spring flowers']").dblclick()
    library_image = page.locator(".gjs-am-asset", has_text="spring-flowers").first
    library_image.wait_for()
    screenshot(page, "editor-visual-media-library")
    library_image.dblclick()
    canvas.locator("img[alt='Spring flowers'][src*='/img/']").wait_for()

    # Type into the text block, then pick a personalisation field at the caret.
    text = canvas.locator("[data-gjs-type=mj-text] td > div").first
    text.dblclick()
    page.keyboard.press("Control+A")
    page.keyboard.type("Spring sale in ")
    _pick_field(page, "contact.attributes.city")
    assert "Inserted" in page.inner_text("#field-status")
    screenshot(page, "editor-visual-building")

    page.click("button:has-text('Save draft')")
    page.wait_for_selector("text=Campaign saved.")
    stored = _stored(live_server.app, "Visual spring")
    assert stored.content_format is ContentFormat.VISUAL
    assert "<mj-button" in stored.content_source
    assert "https://shop.example/sale?from=mail&x=1" in stored.content_source
    assert re.search(r'<mj-image[^>]+src="[^"]+/img/', stored.content_source)
    assert "Spring sale in {{ contact.attributes.city }}" in _spaces(stored.content_source)
    assert VIEWPORT in stored.html_body

    # Reload the editor: the same blocks, the same text, the same link.
    page.goto(f"{base}/campaigns/{stored.id}/edit")
    page.wait_for_selector("#content-editor[data-visual-ready=yes]")
    canvas = page.frame_locator("#visual-editor iframe.gjs-frame")
    assert "Spring sale in {{ contact.attributes.city }}" in _spaces(
        canvas.locator("body").inner_text()
    )
    assert canvas.locator("a[href^='https://shop.example/sale']").count() == 1
    assert canvas.locator("img[alt='Spring flowers']").count() == 1
    screenshot(page, "editor-visual-reloaded")
    assert_no_axe_violations(page, "editor-visual-reloaded")

    urls = _send_and_preview(page, phone, base, stored.id, smtp_sink, "editor-visual-phone")
    assert VIEWPORT in urls.html and "mj-column-per-100" in urls.html
    assert "Spring sale in Kraków" in _spaces(urls.html)
    image_tag = r'<img alt="Spring flowers"[^>]* src="(http[^"]+/img/[^"]+)"'
    found = re.search(image_tag, urls.html)
    assert found and found.group(1).startswith(base)  # the library's public address
    assert len(urls.clicks) == 1 and ">Unsubscribe</a>" in urls.html
    assert re.search(r'<a href="[^"]+/c/[^"]+"[^>]* style="[^"]*background:#1a5fb4', urls.html)
    origins.assert_only(base)


def test_markdown_with_live_preview_saves_reloads_and_sends(
    live_server: LiveServer, page: Any, phone: Any, smtp_sink: SMTPSink
) -> None:
    base, origins = _start(live_server, page, "Markdown news", "markdown")
    page.fill("#content_source", "# Hello \n\nOur [spring sale](https://shop.example/sale) ")
    page.click("#content_source")
    page.keyboard.press("End")
    _pick_field(page, 'contact.attributes["favourite colour"]')
    preview = page.frame_locator("#markdown-preview")
    preview.locator("h1").wait_for()
    page.wait_for_function(
        "document.querySelector('#markdown-preview').srcdoc.includes('favourite colour')"
    )
    assert preview.locator("a[href='https://shop.example/sale']").count() == 1
    screenshot(page, "editor-markdown")
    assert_no_axe_violations(page, "editor-markdown")
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("text=Campaign saved.")
    stored = _stored(live_server.app, "Markdown news")
    assert stored.content_format is ContentFormat.MARKDOWN
    assert stored.content_source.endswith('{{ contact.attributes["favourite colour"] }}')
    page.goto(f"{base}/campaigns/{stored.id}/edit")
    assert page.input_value("#content_source") == stored.content_source
    assert page.is_visible("#markdown-preview")
    urls = _send_and_preview(page, phone, base, stored.id, smtp_sink, "editor-markdown-phone")
    assert VIEWPORT in urls.html and "teal" in urls.html and len(urls.clicks) == 1
    origins.assert_only(base)


def test_rich_text_saves_sanitised_reloads_and_sends(
    live_server: LiveServer, page: Any, phone: Any, smtp_sink: SMTPSink
) -> None:
    base, origins = _start(live_server, page, "Rich news", "richtext")
    page.wait_for_selector("#content-editor[data-richtext-ready=yes]")
    editor = page.locator("#richtext-editor .ql-editor")
    editor.click()
    page.keyboard.type("Dear ")
    _pick_field(page, "contact.first_name")
    page.keyboard.type(", the sale is on.")
    page.keyboard.press("Shift+Home")
    page.keyboard.press("Control+B")
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.keyboard.type("Shop now")
    page.keyboard.press("Shift+Home")
    page.click(".ql-toolbar button.ql-link")
    page.fill(".ql-tooltip input[type=text]", "https://shop.example/now")
    page.keyboard.press("Enter")
    screenshot(page, "editor-richtext")
    assert_no_axe_violations(page, "editor-richtext")
    page.click("button:has-text('Save draft')")
    page.wait_for_selector("text=Campaign saved.")
    stored = _stored(live_server.app, "Rich news")
    assert stored.content_format is ContentFormat.RICHTEXT
    written = "<strong>Dear {{ contact.first_name }}, the sale is on.</strong>"
    assert written in stored.content_source
    page.goto(f"{base}/campaigns/{stored.id}/edit")
    page.wait_for_selector("#content-editor[data-richtext-ready=yes]")
    assert "Dear {{ contact.first_name }}, the sale is on." in editor.inner_text()
    assert page.locator("#richtext-editor a[href='https://shop.example/now']").count() == 1
    urls = _send_and_preview(page, phone, base, stored.id, smtp_sink, "editor-richtext-phone")
    assert "Dear Zoë, the sale is on." in urls.html and len(urls.clicks) == 1
    assert VIEWPORT in urls.html
    origins.assert_only(base)
