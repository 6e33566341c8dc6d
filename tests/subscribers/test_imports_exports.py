"""CSV import (mapping, skip or update, error report, progress) and CSV/JSON export."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from core import db as core_db
from subscribers import services
from subscribers.exports import neutralise
from subscribers.models import ConsentRecord, Contact, Subscription
from tests.subscribers.helpers import (
    logged_in,
    report_rows,
    run_import,
    tenant_with_list,
    upload_csv,
)

CSV = (
    "E-mail,Full name,City,Plan\n"
    "ada@example.org,Ada,Lisbon,pro\n"
    "not an address,Bad,Oslo,free\n"
    "\n"
    " ada@EXAMPLE.org ,Ada again,Porto,team\n"
    "bob@example.org,,Oslo,\n"
)


def _contact(app: Flask, email: str) -> Contact:
    with app.app_context():
        found = core_db.session.scalar(select(Contact).where(Contact.email == email))
        assert found is not None
        return found


def test_import_with_mapping_and_error_report(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = upload_csv(client, list_id, CSV)
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "What is in each column?" in page and "Full name" in page
    client.post(
        f"/imports/{import_id}",
        data={
            "column-0": "email",
            "column-1": "name",
            "column-2": "attribute",
            "column-3": "ignore",
        },
    )
    from tests.conftest import drain

    drain(app)
    status = client.get(f"/imports/{import_id}/status").get_json()
    assert status["status"] == "done" and status["percent"] == 100
    assert (status["created"], status["errors"]) == (2, 2)
    ada = _contact(app, "ada@example.org")
    assert ada.name == "Ada" and ada.attributes == {"City": "Lisbon"} and ada.source == "import"
    rows = report_rows(client, import_id)
    assert [(r["row"], r["problem"]) for r in rows] == [
        ("3", "invalid address"),
        ("5", "duplicate"),
    ]
    with app.app_context():
        consent = core_db.session.scalars(select(ConsentRecord.action)).all()
        assert consent == ["imported", "imported"]
        assert set(core_db.session.scalars(select(Subscription.status))) == {"subscribed"}
    done = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Download the error report" in done


def test_skip_or_update_existing_contacts(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        services.add_contact_to_list(
            tenant.account_id, list_id, "ada@example.org", "Old", {"a": "1"}
        )
        other = services.create_list(tenant.account_id, "Other").id
    client = logged_in(app, tenant)
    text = "email,name,city\nada@example.org,New,Lisbon\n"
    run_import(app, client, other, text)
    ada = _contact(app, "ada@example.org")
    assert (ada.name, ada.attributes) == ("Old", {"a": "1"})  # skipped, but now on "Other"
    with app.app_context():
        lists = core_db.session.scalars(
            select(Subscription.list_id).where(Subscription.contact_id == ada.id)
        ).all()
        assert sorted(lists) == sorted([list_id, other])
    run_import(app, client, other, text, update_existing=True)
    ada = _contact(app, "ada@example.org")
    assert (ada.name, ada.attributes) == ("New", {"a": "1", "city": "Lisbon"})


def test_import_never_resubscribes_someone_who_left(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        contact = services.add_contact_to_list(tenant.account_id, list_id, "left@example.org")
        services.unsubscribe_contact(tenant.account_id, contact.id, list_id, "manual")
    client = logged_in(app, tenant)
    run_import(app, client, list_id, "email\nleft@example.org\n")
    with app.app_context():
        status = core_db.session.scalar(
            select(Subscription.status).where(Subscription.contact_id == contact.id)
        )
    assert status == "unsubscribed"


def test_bad_uploads_are_refused_with_a_message(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    empty = client.post(
        "/imports",
        data={"file": (io.BytesIO(b""), "empty.csv"), "list_id": str(list_id)},
        content_type="multipart/form-data",
    )
    assert empty.status_code == 422 and "empty" in empty.get_data(as_text=True)
    missing = client.post("/imports", data={"list_id": str(list_id)})
    assert missing.status_code == 422 and "Choose a CSV file" in missing.get_data(as_text=True)
    import_id = upload_csv(client, list_id, "a,b\n1,2\n")
    client.post(f"/imports/{import_id}", data={"column-0": "name", "column-1": "ignore"})
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Map exactly one column to the email address." in page


@pytest.mark.parametrize("helpers", [1, 2])
def test_import_runs_in_the_worker_with_big_files_via_helpers(
    app_factory: Any, helpers: int
) -> None:
    # Always check in helper processes; with two, batches alternate and come back in order.
    app = app_factory(IMPORT_HELPER_MIN_BYTES=1, IMPORT_HELPERS=helpers)
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    lines = ["email,name"] + [f"user{i}@example.org,User {i}" for i in range(4500)]
    lines.append("user7@example.org,again")
    import_id = run_import(app, client, list_id, "\n".join(lines) + "\n")
    status = client.get(f"/imports/{import_id}/status").get_json()
    assert (status["status"], status["created"], status["errors"]) == ("done", 4500, 1)
    assert report_rows(client, import_id)[0]["problem"] == "duplicate"


def test_formula_injection_is_neutralised_in_csv(app: Flask) -> None:
    for value in ("=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert neutralise(value).startswith("'")
    assert neutralise("plain") == "plain"
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        services.add_contact_to_list(
            tenant.account_id,
            list_id,
            "evil@example.org",
            '=HYPERLINK("http://x")',
            {"note": "+cmd|' /C calc'!A0", "ok": "fine"},
        )
    client = logged_in(app, tenant)
    response = client.get(f"/lists/{list_id}/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["email", "name", "status", "source", "created_at", "attributes"]
    assert rows[1][1] == '\'=HYPERLINK("http://x")'
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in rows[1])
    exported = json.loads(client.get(f"/lists/{list_id}/export.json").get_data(as_text=True))
    assert exported[0]["name"] == '=HYPERLINK("http://x")'  # JSON is data, kept exact
    assert exported[0]["attributes"]["note"] == "+cmd|' /C calc'!A0"
    assert client.get(f"/lists/{list_id}/export.xml").status_code == 404


def test_contact_search_is_paginated_and_filters(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    lines = ["email,city"] + [
        f"p{i:03d}@example.org,{'Oslo' if i % 2 else 'Lima'}" for i in range(120)
    ]
    run_import(app, client, list_id, "\n".join(lines) + "\n")
    first = client.get("/contacts").get_data(as_text=True)
    assert "120 contacts" in first and "page 1 of 3" in first
    third = client.get("/contacts?page=3").get_data(as_text=True)
    assert "p000@example.org" in third
    found = client.get("/contacts?q=P007").get_data(as_text=True)
    assert "1 contact" in found and "p007@example.org" in found
    oslo = client.get("/contacts?attribute=city&value=oslo").get_data(as_text=True)
    assert "60 contacts" in oslo
    subscribed = client.get(f"/contacts?status=subscribed&list={list_id}").get_data(as_text=True)
    assert "120 contacts" in subscribed
    none = client.get("/contacts?status=unsubscribed").get_data(as_text=True)
    assert "No contact matches" in none


def test_a_search_counts_its_matches_up_to_a_limit(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SEARCH_COUNT_AT_MOST matches a search says "more than" and its pages stop there;
    the unfiltered list still counts every contact."""
    from subscribers import queries

    monkeypatch.setattr(queries, "SEARCH_COUNT_AT_MOST", 100)
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    lines = ["email,city"] + [f"p{i:03d}@example.org,Oslo" for i in range(120)]
    run_import(app, client, list_id, "\n".join(lines) + "\n")
    everyone = client.get("/contacts").get_data(as_text=True)
    assert "120 contacts" in everyone and "page 1 of 3" in everyone
    oslo = client.get("/contacts?attribute=city&value=Oslo").get_data(as_text=True)
    assert "More than 100 contacts match" in oslo and "page 1 of 2" in oslo
    assert "p119@example.org" in oslo  # newest first
    last = client.get("/contacts?attribute=city&value=Oslo&page=9").get_data(as_text=True)
    assert "page 2 of 2" in last and "p020@example.org" in last
    assert "p019@example.org" not in last  # past the counted matches
    exact = client.get("/contacts?q=p01").get_data(as_text=True)
    assert "10 contacts" in exact and "More than" not in exact


def test_contact_page_shows_everything_held(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        contact = services.add_contact_to_list(
            tenant.account_id, list_id, "full@example.org", "Full", {"city": "Lima"}
        )
    client = logged_in(app, tenant)
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    for expected in ("full@example.org", "city = Lima", "News", "subscribed", "Consent history"):
        assert expected in page
    saved = client.post(
        f"/contacts/{contact.id}", data={"name": "Fuller", "attributes": "city = Cusco\nvip = yes"}
    )
    assert saved.status_code == 302
    assert _contact(app, "full@example.org").attributes == {"city": "Cusco", "vip": "yes"}
    bad = client.post(f"/contacts/{contact.id}", data={"name": "x", "attributes": "no equals"})
    assert "name = value" in bad.get_data(as_text=True)


def test_a_redelivered_import_resumes_without_false_duplicates(app: Flask) -> None:
    from sqlalchemy import update as sql_update

    from subscribers.models import ImportJob

    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    text = "email\n" + "".join(f"r{i}@example.org\n" for i in range(30))
    import_id = run_import(app, client, list_id, text)
    with app.app_context():
        # The worker died after writing every row but before marking the job done; Dramatiq
        # delivers the message again.
        core_db.session.execute(
            sql_update(ImportJob).where(ImportJob.id == import_id).values(status="running")
        )
        core_db.session.commit()
        stored = core_db.session.get(ImportJob, import_id)
        assert stored is not None
        with open(stored.stored_path, "w") as upload:  # the upload is still there then
            upload.write(text)
        job = services.run_import(import_id)
        assert job is not None and job.status == "done"
        assert (job.created_count, job.skipped_count, job.error_count) == (0, 30, 0)


def test_names_and_attributes_with_quotes_backslashes_and_braces_are_kept_exactly(
    app: Flask,
) -> None:
    awkward = ['O"Brien', "back\\slash", "{curly,comma}", "NULL", "line\nbreak", "Zoë ✉"]
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["email", "name", "note"])
    for i, text in enumerate(awkward):
        writer.writerow([f"person{i}@example.org", text, text])
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    run_import(app, client, list_id, rows.getvalue(), {"0": "email", "1": "name", "2": "attribute"})
    for i, text in enumerate(awkward):
        contact = _contact(app, f"person{i}@example.org")
        assert (contact.name, contact.attributes) == (text, {"note": text})
    # A second run finds every one of them as held (the lookup by address), and updates them.
    run_import(
        app,
        client,
        list_id,
        rows.getvalue().replace('O""Brien', "O'Brien"),
        {"0": "email", "1": "name"},
        update_existing=True,
    )
    assert _contact(app, "person0@example.org").name == "O'Brien"
