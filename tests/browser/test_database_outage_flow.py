"""In Chromium, on a phone: the database goes down between opening the unsubscribe page and
pressing its button; the person is told nothing was recorded and to try again, and the retry
once the database is back unsubscribes (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import LiveServer, screenshot
from tests.browser.test_unsubscribe_flow import PEOPLE, _send
from tests.smtp_sink import SMTPSink
from tests.tracking.test_database_outage import database_down

pytestmark = pytest.mark.browser


def test_unsubscribe_while_the_database_is_down_then_again(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink, tmp_path: Path
) -> None:
    mail = _send(live_server, smtp_sink)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(mail[PEOPLE[0]].unsubscribe_body)
    with database_down(live_server.app, tmp_path):
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click("#unsubscribe")
        answer = posted.value
        assert answer.status == 503 and answer.headers["retry-after"] == "30"
        text = page.locator("main").inner_text()
        assert "Your unsubscribe was not recorded" in text and "try again" in text
        assert page.locator(".topbar").count() == 0
        screenshot(page, "unsubscribe-database-down-390")
    page.go_back()
    page.click("#unsubscribe")
    page.wait_for_selector("#unsubscribe-done")
    screenshot(page, "unsubscribe-after-outage-390")
