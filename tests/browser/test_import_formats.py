"""Browser: importing a semicolon-separated Windows-1252 export, as European spreadsheets
write it: detection shown, the separator changed and changed back, first and last names
joined, on a desktop and a 390 px wide screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import db as core_db
from subscribers import services
from subscribers.models import Contact, ImportJob
from tests.browser.conftest import LiveServer, screenshot
from tests.browser.test_subscribers_flows import _log_in
from tests.factories import make_tenant

EXPORT = (
    "E-Mail;Vorname;Nachname;Stadt;Kundennummer\r\n"
    "zoe.mueller@example.de;Zoë;Müller;Köln;K-1001\r\n"
    "nunez@example.es;Zoë;Ñúñez;Sevilla, Triana;K-1002\r\n"
    "kein-at-zeichen;Ölaf;Groß;Wien;K-1003\r\n"
    "francois@example.fr;François;Lefèvre;Besançon;K-1004\r\n"
)


def test_import_a_semicolon_windows_1252_export(
    live_server: LiveServer, page: Any, browser: Any, tmp_path: Path
) -> None:
    base = live_server.url
    with live_server.app.app_context():
        tenant = make_tenant("owner@verein.example", "Verein")
        services.create_list(tenant.account_id, "Mitglieder")
    upload = tmp_path / "Mitglieder.csv"
    upload.write_bytes(EXPORT.encode("cp1252"))

    _log_in(page, base, tenant.email)
    page.click("nav >> text=Imports")
    page.set_input_files("#file", str(upload))
    screenshot(page, "subscribers-import-semicolon-upload")
    page.click("button:has-text('Upload and map columns')")
    page.wait_for_selector("#mapping-form")
    assert page.inner_text("#detected-format") == "Detected: semicolon-separated, Windows-1252"
    assert page.inner_text("#file-size") == f"{len(EXPORT.encode('cp1252'))} Bytes"
    samples = page.locator("[data-samples='2'] span").all_inner_texts()
    assert samples == ["Müller", "Ñúñez", "Groß"]
    assert page.input_value("#column-0") == "email"
    assert page.input_value("#column-1") == "first_name"
    assert page.input_value("#column-2") == "last_name"
    screenshot(page, "subscribers-import-semicolon-mapping")

    # Read it as comma-separated: one column; the select re-reads the file at once.
    page.select_option("#delimiter", "comma")
    page.wait_for_selector("text=Read as: comma-separated, Windows-1252")
    assert page.locator("#mapping-form select").count() == 1
    screenshot(page, "subscribers-import-semicolon-as-comma")
    page.select_option("#delimiter", "semicolon")
    page.wait_for_selector("text=Detected: semicolon-separated, Windows-1252")
    assert page.locator("#mapping-form select").count() == 5
    page.select_option("#column-4", "ignore")

    mobile = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        small = mobile.new_page()
        _log_in(small, base, tenant.email)
        small.goto(page.url)
        small.wait_for_selector("#mapping-form")
        screenshot(small, "subscribers-import-semicolon-mapping-390")
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide"
    finally:
        mobile.close()

    page.click("button:has-text('Start the import')")
    page.wait_for_selector("#import-result", timeout=60_000)
    assert page.inner_text("[data-stat=created]") == "3"
    assert page.inner_text("[data-stat=errors]") == "1"
    screenshot(page, "subscribers-import-semicolon-done")
    with live_server.app.app_context():
        names = dict(
            core_db.session.execute(
                select(Contact.email, Contact.name).where(Contact.account_id == tenant.account_id)
            ).all()
        )
        kept = core_db.session.scalar(
            select(Contact.attributes).where(Contact.email == "nunez@example.es")
        )
    assert names == {
        "zoe.mueller@example.de": "Zoë Müller",
        "nunez@example.es": "Zoë Ñúñez",
        "francois@example.fr": "François Lefèvre",
    }
    assert kept == {"Stadt": "Sevilla, Triana"}


def test_a_file_over_the_limit_is_refused_before_it_is_sent(
    live_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    base = live_server.url
    live_server.app.config["IMPORT_MAX_BYTES"] = 2000
    with live_server.app.app_context():
        tenant = make_tenant("owner@verein.example", "Verein")
        services.create_list(tenant.account_id, "Mitglieder")
    upload = tmp_path / "Alle.csv"
    upload.write_bytes(
        ("E-Mail;Name\r\n" + "".join(f"p{i}@example.de;Zoë {i}\r\n" for i in range(200))).encode()
    )
    _log_in(page, base, tenant.email)
    page.goto(f"{base}/imports")
    assert "Up to 2.0 kB." in page.inner_text("form[enctype]")
    page.set_input_files("#file", str(upload))
    page.click("button:has-text('Upload and map columns')")
    message = page.eval_on_selector("#file", "input => input.validationMessage")
    assert message == "The file is larger than 2.0 kB; split it."
    assert page.url == f"{base}/imports"  # nothing was sent
    screenshot(page, "subscribers-import-too-large")
    # Without the page's script the server refuses it the same way, and keeps nothing
    # (form.submit() fires no submit event).
    page.eval_on_selector("form[enctype]", "form => form.submit()")
    page.wait_for_selector("p.error")
    assert page.inner_text("p.error") == "The file is larger than 2.0 kB; split it."
    screenshot(page, "subscribers-import-too-large-server")
    with live_server.app.app_context():
        jobs = core_db.session.scalars(
            select(ImportJob.id).where(ImportJob.account_id == tenant.account_id)
        ).all()
    assert jobs == []
