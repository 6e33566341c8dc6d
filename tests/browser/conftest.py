"""A live server in a thread and a real headless Chromium driven by Playwright."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests import services_available

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(app_factory: Any) -> Iterator[LiveServer]:
    """The real app (CSRF on) with its in-process worker, served on loopback."""
    app = app_factory(WTF_CSRF_ENABLED=True, BASE_URL="http://127.0.0.1:0")
    server = LiveServer(app)
    app.config["BASE_URL"] = server.url
    app.extensions["queue"].start_worker()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    services_available.require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=services_available.CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def _browser_window(browser: Any, width: int, height: int) -> Iterator[Any]:
    """A page in its own browser context (its own cookies), closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from _browser_window(browser, 1280, 900)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A second browser (its own cookies) with a phone-sized window, 390 x 844."""
    yield from _browser_window(browser, 390, 844)


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Any, base: str, email: str, password: str | None = None) -> None:
    """Log in through the login page and wait for the page it leads to."""
    from tests.factories import PASSWORD

    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", password or PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/**")
