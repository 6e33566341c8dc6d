"""The browser fixtures (live server, Chromium page) for the engine's browser test."""

from tests.browser.conftest import browser, live_server, page  # noqa: F401
