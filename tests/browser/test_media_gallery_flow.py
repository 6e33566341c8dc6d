"""A marketer uploads an image on the Media page (progress, then the thumbnail), sees a refused
file explained, and starts a campaign from a gallery layout; at 1280 and 390 px, in headless
Chromium. Every request the pages make goes to the platform itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveServer, log_in, screenshot
from tests.factories import make_tenant
from tests.media.images import jpeg_with_gps, png

pytestmark = pytest.mark.browser


def test_upload_an_image_then_start_a_campaign_from_the_gallery(
    live_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    with live_server.app.app_context():
        make_tenant("ines@atelier.example", "Atelier Inês")
    base = live_server.url
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log_in(page, base, "ines@atelier.example")

    page.goto(f"{base}/media")
    page.get_by_text("No images yet").wait_for()
    photo = tmp_path / "Fachada São Paulo.jpg"
    photo.write_bytes(jpeg_with_gps(1200, 800))
    page.set_input_files("#file", str(photo))
    page.click('button:has-text("Upload")')
    thumb = page.locator('.media-item img[alt="Fachada São Paulo.jpg"]')
    thumb.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.media-item img')].every(i => i.naturalWidth > 0)"
    )
    assert thumb.evaluate("img => img.naturalWidth") == 320  # the thumbnail, not the photo
    assert "1200 \u00d7 800 px" in page.locator(".media-item").inner_text()
    screenshot(page, "media-library-1280")

    # A file that only claims to be an image is refused, with the reason, on the page.
    fake = tmp_path / "invoice.png"
    fake.write_text("<html><body>not an image</body></html>")
    page.set_input_files("#file", str(fake))
    page.click('button:has-text("Upload")')
    page.get_by_text("This file is not an image we accept").wait_for()
    assert page.locator(".media-item").count() == 1
    screenshot(page, "media-library-refused")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    thumb.wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    screenshot(page, "media-library-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # A second image, deleted again after the browser asks to confirm.
    extra = tmp_path / "old banner.png"
    extra.write_bytes(png(600, 200))
    page.set_input_files("#file", str(extra))
    page.click('button:has-text("Upload")')
    page.locator('.media-item img[alt="old banner.png"]').wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('.media-item:has-text("old banner.png") button:has-text("Delete")').click()
    page.get_by_text("Image deleted.").wait_for()
    assert page.locator(".media-item").count() == 1

    page.goto(f"{base}/campaigns")
    page.click("#from-gallery")
    page.wait_for_url(re.compile(r".*/templates/gallery"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.gallery-item img')].every(i => i.naturalWidth > 0)"
    )
    assert page.locator(".gallery-item").count() == 6
    screenshot(page, "template-gallery-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    screenshot(page, "template-gallery-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.locator("#gallery-newsletter button").click()
    page.wait_for_url(re.compile(r".*/campaigns/\d+/edit"))
    page.get_by_text("Draft created from the gallery").wait_for()
    assert page.locator("#name").input_value() == "Newsletter"
    assert "viewport" in page.locator("#html_body").input_value()
    screenshot(page, "campaign-from-gallery")

    own = {base}
    foreign = [url for url in requested if not any(url.startswith(o) for o in own)]
    assert foreign == [], foreign
