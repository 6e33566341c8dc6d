"""In Chromium: an owner defines a custom role under Team > Roles, gives it to a member, and the
member sees only what the role allows (menu entries hidden, the 403 page for the rest); the
role cannot be deleted while the member holds it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import LiveServer, log_in, screenshot
from tests.factories import make_list_with_contacts, make_member, make_tenant

pytestmark = pytest.mark.browser


def test_owner_creates_a_custom_role_and_assigns_it(
    live_server: LiveServer, page: Any, browser: Any
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        tenant = make_tenant("owner@cafe.example", "Café Zoë")
        make_list_with_contacts(tenant, ["ana@example.org"])
        make_member(tenant, "li@cafe.example", "member")
    log_in(page, base, "owner@cafe.example")

    page.click("nav.mainnav >> text=Team")
    page.click("#manage-roles")
    page.wait_for_url(f"{base}/team/roles")
    assert "No roles of your own yet" in page.inner_text("main")
    page.click("#new-role")
    page.fill("#name", "Analyst")
    page.click("button:has-text('Create role')")
    assert "Choose at least one permission." in page.inner_text("#permissions")
    page.fill("#description", "Reads reports, nothing else")
    page.check("input[value='reports:view']")
    screenshot(page, "roles-new-role")
    page.click("button:has-text('Create role')")
    page.wait_for_url(f"{base}/team/roles")
    assert "Role “Analyst” saved." in page.inner_text(".flash")
    assert "View reports" in page.inner_text("#custom-roles")
    screenshot(page, "roles-list")

    page.goto(f"{base}/team")
    row = page.locator("#members tbody tr", has_text="li@cafe.example")
    row.locator("select[name=role]").select_option(label="Analyst")
    row.get_by_role("button", name="Change").click()
    page.wait_for_url(f"{base}/team")
    assert "Role changed." in page.inner_text(".flash")
    assert "Analyst" in page.locator("#members tbody tr", has_text="li@cafe.example").inner_text()
    screenshot(page, "roles-team-assigned")

    context = browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    phone.set_default_timeout(15_000)
    try:
        log_in(phone, base, "li@cafe.example")
        phone.click(".menu-toggle")
        menu = phone.inner_text("nav.mainnav")
        assert "Reports" in menu
        for hidden in ("Lists", "Contacts", "Team", "Settings", "Templates"):
            assert hidden not in menu, hidden
        screenshot(phone, "roles-analyst-menu-390")
        response = phone.goto(f"{base}/lists")
        assert response is not None and response.status == 403
        assert "Manage contacts and lists" in phone.inner_text("main")
        screenshot(phone, "roles-403-390")
    finally:
        context.close()

    page.goto(f"{base}/team/roles")
    page.get_by_role("link", name="Edit Analyst").click()
    assert "1 member holds this role" in page.inner_text("#role-in-use")
    assert page.locator("button:has-text('Delete role')").is_disabled()
