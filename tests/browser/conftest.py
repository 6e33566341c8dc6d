"""A live server in a thread and a real headless Chromium driven by Playwright."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services_available
from tests.conftest import LiveServer  # noqa: F401 - shared with tests/api (the live_server fixture)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


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


def reload_until(page: Any, shown: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Reload ``page`` until ``shown()`` is true: for state a background worker records.

    The worker commits after its side effect (a message in the sink, a request at a receiver), so
    the page can lag the effect a test waits for; fail with the page's text after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        page.reload()
        if shown():
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} not shown within {timeout:.0f} s: {page.inner_text('main')}"
            )
        time.sleep(0.3)


def log_in(page: Any, base: str, email: str, password: str | None = None) -> None:
    """Log in through the login page and wait for the page it leads to."""
    from tests.factories import PASSWORD

    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", password or PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/**")
