"""CSV import of the files people actually export, and of hostile ones.

Every file is generated here: semicolon-separated Windows-1252 (European spreadsheets), Excel's
"Unicode text" (tab-separated UTF-16 LE with a BOM), UTF-8 with a BOM; and hostile files: a
50 MB single line, NUL bytes, undecodable bytes, a field over the CSV limit, uploads over the
limit. They go through the real interface (HTTP, the worker) and the outcome is read back:
contacts created, the error report, the job's state, and what stays on disk.
"""

from __future__ import annotations

import codecs
import io
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from core import db as core_db
from subscribers import csvformat, services
from subscribers.models import Contact, ImportJob, Subscription
from tests.conftest import drain
from tests.subscribers.helpers import logged_in, report_rows, tenant_with_list


@pytest.fixture
def imports_app(app_factory: Any, tmp_path: Path) -> Flask:
    """The app with its uploads in a directory of this test (to see what stays on disk)."""
    built: Flask = app_factory(IMPORT_DIR=str(tmp_path / "imports"))
    return built


def _uploads_left(app: Flask) -> list[str]:
    """Uploaded files still on disk (error reports are kept on purpose, until deletion)."""
    folder = Path(app.config["IMPORT_DIR"])
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".errors.csv"))


def _post_file(client: FlaskClient, list_id: int, data: bytes, filename: str) -> Any:
    return client.post(
        "/imports",
        data={"file": (io.BytesIO(data), filename), "list_id": str(list_id)},
        content_type="multipart/form-data",
    )


def _upload(client: FlaskClient, list_id: int, data: bytes, filename: str = "export.csv") -> int:
    response = _post_file(client, list_id, data, filename)
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def _start(app: Flask, client: FlaskClient, import_id: int, form: dict[str, str]) -> Any:
    response = client.post(f"/imports/{import_id}", data=form)
    assert response.status_code == 302
    drain(app)
    return client.get(f"/imports/{import_id}/status").get_json()


def _contacts(app: Flask, account_id: int) -> dict[str, Contact]:
    with app.app_context():
        found = core_db.session.scalars(select(Contact).where(Contact.account_id == account_id))
        return {contact.email: contact for contact in found}


# --- formats people export ----------------------------------------------------------------

EUROPEAN = (
    "E-Mail;Vorname;Nachname;Stadt\r\n"
    "zoe.mueller@example.de;Zoë;Müller;Köln\r\n"
    "nunez@example.es;Zoë;Ñúñez;Sevilla, Triana\r\n"
    "kein-at-zeichen;Ölaf;Groß;Wien\r\n"
    "francois@example.fr;François;;Besançon\r\n"
)


def test_a_semicolon_windows_1252_file_is_detected_and_first_and_last_names_are_joined(
    imports_app: Flask,
) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = _upload(client, list_id, EUROPEAN.encode("cp1252"), "Kontakte.csv")
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Detected: semicolon-separated, Windows-1252" in page
    # Four columns, each with its first non-empty values; the names were guessed.
    for column in ("E-Mail", "Vorname", "Nachname", "Stadt"):
        assert f"<strong>{column}</strong>" in page
    assert "<span>Müller</span><span>Ñúñez</span><span>Groß</span>" in page
    assert "<span>Köln</span><span>Sevilla, Triana</span><span>Wien</span>" in page
    assert 'value="first_name" selected' in page and 'value="last_name" selected' in page
    status = _start(app, client, import_id, {})  # the guessed mapping, as shown
    assert (status["status"], status["created"], status["errors"]) == ("done", 3, 1)
    contacts = _contacts(app, tenant.account_id)
    assert contacts["zoe.mueller@example.de"].name == "Zoë Müller"
    assert contacts["nunez@example.es"].name == "Zoë Ñúñez"
    assert contacts["nunez@example.es"].attributes == {"Stadt": "Sevilla, Triana"}
    assert contacts["francois@example.fr"].name == "François"  # no last name: no stray space
    assert [(r["row"], r["email"], r["problem"]) for r in report_rows(client, import_id)] == [
        ("4", "kein-at-zeichen", "invalid address")
    ]
    assert _uploads_left(app) == []


def test_excel_unicode_text_is_read_as_tab_separated_utf16(imports_app: Flask) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    text = (
        "Name\tEmail\tCity\r\n"
        "李小龍\tbruce@example.hk\t香港\r\n"
        "Ольга\tolga@пример.рф\tМосква\r\n"  # noqa: RUF001 - real Cyrillic on purpose
        "Zoë Ñúñez\tnot-an-address\tLima\r\n"
    )
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    import_id = _upload(client, list_id, data, "Unicode Text.txt")
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Detected: tab-separated, UTF-16 LE" in page
    assert "<span>李小龍</span><span>Ольга</span>" in page
    status = _start(app, client, import_id, {})
    assert (status["created"], status["errors"]) == (2, 1)
    contacts = _contacts(app, tenant.account_id)
    assert contacts["bruce@example.hk"].name == "李小龍"
    assert contacts["bruce@example.hk"].attributes == {"City": "香港"}
    assert contacts["olga@пример.рф"].name == "Ольга"


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (codecs.BOM_UTF8 + "email,name\r\nzoe@example.org,Zoë\r\n".encode(), "comma, UTF-8"),
        ("email\tname\nzoe@example.org\tZoë\n".encode("utf-16-be"), "tab, UTF-16 BE"),
        ("email;name\nzoe@example.org;Zoë\n".encode("utf-16-le"), "semicolon, UTF-16 LE"),
    ],
    ids=["utf8-bom", "utf16-be-no-bom", "utf16-le-no-bom"],
)
def test_a_bom_never_ends_up_in_the_first_column(
    imports_app: Flask, data: bytes, detected: str
) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = _upload(client, list_id, data)
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    separator, encoding = detected.split(", ")
    assert f"Detected: {separator}-separated, {encoding}" in page
    # The first column is recognised as the email (a BOM would have hidden its name).
    assert '<select name="column-0" id="column-0" aria-label="email">' in page
    assert 'value="email" selected' in page
    status = _start(app, client, import_id, {})
    assert (status["created"], status["errors"]) == (1, 0)
    assert _contacts(app, tenant.account_id)["zoe@example.org"].name == "Zoë"


def test_the_person_can_override_the_separator_and_encoding(imports_app: Flask) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = _upload(client, list_id, EUROPEAN.encode("cp1252"))
    # Read as comma-separated UTF-8: one column, names with replacement characters.
    response = client.post(
        f"/imports/{import_id}/format", data={"delimiter": "comma", "encoding": "utf-8"}
    )
    assert response.status_code == 302
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Read as: comma-separated, UTF-8</strong>" in page
    assert "(detected: semicolon-separated, Windows-1252)" in page
    assert "<strong>E-Mail;Vorname;Nachname;Stadt</strong>" in page and "column-1" not in page
    assert "Zo\ufffd" in page
    # Back to what the file is: four columns again, the samples read right.
    client.post(
        f"/imports/{import_id}/format", data={"delimiter": "semicolon", "encoding": "cp1252"}
    )
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "<strong>Nachname</strong>" in page and "<span>Müller</span>" in page
    bad = client.post(
        f"/imports/{import_id}/format",
        data={"delimiter": "pipe", "encoding": "ebcdic"},
        follow_redirects=True,
    )
    assert "Choose a separator and an encoding from the lists." in bad.get_data(as_text=True)
    assert "Detected: semicolon-separated, Windows-1252" in bad.get_data(as_text=True)
    # Once started, the format is fixed.
    _start(app, client, import_id, {})
    late = client.post(
        f"/imports/{import_id}/format",
        data={"delimiter": "comma", "encoding": "utf-8"},
        follow_redirects=True,
    )
    assert "This import has already started." in late.get_data(as_text=True)
    with app.app_context():
        job = core_db.session.get(ImportJob, import_id)
        assert job is not None and (job.encoding, job.delimiter) == ("cp1252", ";")


def test_name_mapping_rules(imports_app: Flask) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    data = "mail,full,given,family\nolga@example.org,Olga Petrova,Ольга,Петрова\n".encode()
    import_id = _upload(client, list_id, data)
    both = {"column-0": "email", "column-1": "name", "column-2": "first_name"}
    client.post(f"/imports/{import_id}", data=both)
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Map either one name column or first and last name columns, not both." in page
    twice = {"column-0": "email", "column-2": "last_name", "column-3": "last_name"}
    client.post(f"/imports/{import_id}", data=twice)
    assert "Map at most one column to the last name." in client.get(
        f"/imports/{import_id}"
    ).get_data(as_text=True)
    # The last name alone is the name; first and last in either column order are joined.
    _start(app, client, import_id, {"column-0": "email", "column-3": "last_name"})
    assert _contacts(app, tenant.account_id)["olga@example.org"].name == "Петрова"
    again = _upload(client, list_id, data)
    form = {"column-0": "email", "column-2": "first_name", "column-3": "last_name"}
    _start(app, client, again, {**form, "update_existing": "1"})
    assert _contacts(app, tenant.account_id)["olga@example.org"].name == "Ольга Петрова"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Vorname;Name;E-Mail", ["first_name", "last_name", "email"]),
        ("Prénom;Nom;Courriel", ["first_name", "last_name", "email"]),
        ("Full name;First name;Email", ["name", "attribute", "email"]),
        ("Email;Mail", ["attribute", "attribute"]),
    ],
)
def test_the_mapping_is_guessed_from_the_column_names(
    imports_app: Flask, header: str, expected: list[str]
) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = _upload(client, list_id, f"{header}\n".encode("cp1252"))
    with app.app_context():
        job = core_db.session.get(ImportJob, import_id)
        assert job is not None
        assert [job.mapping[str(i)] for i in range(len(expected))] == expected


def test_the_file_size_is_shown_in_decimal_units(imports_app: Flask) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    head = b"email,note\nzoe@example.org,"
    data = head + b"x" * (1_234_567 - len(head) - 1) + b"\n"
    assert len(data) == 1_234_567
    import_id = _upload(client, list_id, data)
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert '<span id="file-size">1.2 MB</span>' in page
    assert services.human_size(999) == "999 Bytes" and services.human_size(1500) == "1.5 kB"


def test_detection_is_quick_on_hostile_heads() -> None:
    # csv.Sniffer's regular expression took 16 s on this 60 kB sample.
    started = time.perf_counter()
    assert csvformat.detect_delimiter(',"' * 30_000) == ","
    assert csvformat.detect_delimiter("a" * 65_536) == ","
    assert csvformat.detect_delimiter('email;"name; with ; inside"\na@x.org;"b;c"\n') == ";"
    assert csvformat.detect_delimiter("email\na@example.org\n") == ","
    assert time.perf_counter() - started < 1
    assert csvformat.detect_encoding("Zoë".encode("cp1252")) == "cp1252"
    assert csvformat.detect_encoding("Zoë".encode()) == "utf-8"
    # A sample cut in the middle of a character is still UTF-8.
    assert csvformat.detect_encoding("ab Zoë".encode()[:-1], whole=False) == "utf-8"


# --- hostile files ------------------------------------------------------------------------


def test_a_50_mb_single_line_is_refused_clearly_and_leaves_nothing(imports_app: Flask) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    line = b"email," + b"x" * (50 * 1024 * 1024)
    response = _post_file(client, list_id, line, "bomb.csv")
    assert response.status_code == 422
    assert "The first row is longer than 1,048,576 characters." in response.get_data(as_text=True)
    assert _uploads_left(app) == []
    with app.app_context():
        assert core_db.session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_reading_a_50_mb_line_keeps_memory_bounded(imports_app: Flask, tmp_path: Path) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    path = tmp_path / "bomb.csv"
    with path.open("wb") as out:
        out.write(b"email,name\n")
        out.write(b"zoe@example.org," + b"y" * (50 * 1024 * 1024) + b"\n")
        out.write("olga@example.org,Ольга\n".encode())
    with app.app_context(), path.open("rb") as upload:
        tracemalloc.start()
        try:
            job = services.create_import(tenant.account_id, list_id, upload, "bomb.csv", False)
            services.start_import(tenant.account_id, job.id, {"0": "email", "1": "name"}, False)
            app.config["IMPORT_HELPER_MIN_BYTES"] = 10**12  # inline: measured here
            drain(app)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, f"peak {peak:,} bytes"
    with app.app_context():
        done = core_db.session.get(ImportJob, job.id)
        assert done is not None
        assert (done.status, done.created_count, done.error_count) == ("done", 1, 1)
    assert _uploads_left(app) == []


def _hostile_rows(count: int, bad_row: int) -> bytes:
    """``count`` valid rows; the data row ``bad_row`` (1-based) holds a NUL byte."""
    out = io.BytesIO()
    out.write(b"email,name\n")
    for i in range(1, count + 1):
        name = "Zoë\x00Ñúñez" if i == bad_row else f"Person {i}"
        out.write(f"p{i}@example.org,{name}\n".encode())
    return out.getvalue()


def test_a_nul_byte_fails_its_row_only(imports_app: Flask) -> None:
    # On PostgreSQL a NUL used to stop the job after 4,000 rows; every other row must land.
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = _upload(client, list_id, _hostile_rows(5000, 4001))
    status = _start(app, client, import_id, {"column-0": "email", "column-1": "name"})
    assert (status["status"], status["created"], status["errors"]) == ("done", 4999, 1)
    assert report_rows(client, import_id) == [
        {
            "row": "4002",
            "email": "p4001@example.org",
            "problem": "unreadable",
            "detail": "the row contains a NUL byte (0x00)",
        }
    ]
    contacts = _contacts(app, tenant.account_id)
    assert "p4001@example.org" not in contacts and contacts["p5000@example.org"].name == (
        "Person 5000"
    )
    assert _uploads_left(app) == []


def test_unreadable_rows_are_reported_and_the_rest_imported(imports_app: Flask) -> None:
    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    rows = [
        b"email,name",
        "zoe@example.org,Zoë Ñúñez".encode(),
        b"long@example.org," + b"z" * (2 * 1024 * 1024),  # a line over the limit
        b'field@example.org,"' + b"q" * 200_000 + b'"',  # a field over the CSV limit
        b"bytes@example.org,Caf\xe9",  # Windows-1252 in a UTF-8 file (after the 1 MiB head)
        "li@example.cn,李小龍".encode(),
        b"nul@example.org\x00,x",
        "olga@example.org,Ольга".encode(),
    ]
    import_id = _upload(client, list_id, b"\n".join(rows) + b"\n")
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Detected: comma-separated, UTF-8" in page
    status = _start(app, client, import_id, {"column-0": "email", "column-1": "name"})
    assert (status["status"], status["created"], status["errors"]) == ("done", 3, 4)
    report = {
        r["row"]: (r["email"], r["problem"], r["detail"]) for r in report_rows(client, import_id)
    }
    assert report == {
        "3": ("", "unreadable", "the line is longer than 1,048,576 characters"),
        "4": (
            "",
            "unreadable",
            "a field is longer than 131,072 characters (an unclosed quote?)",
        ),
        "5": ("bytes@example.org", "unreadable", "some bytes are not valid UTF-8"),
        "7": ("nul@example.org", "unreadable", "the row contains a NUL byte (0x00)"),
    }
    assert set(_contacts(app, tenant.account_id)) == {
        "zoe@example.org",
        "li@example.cn",
        "olga@example.org",
    }
    assert _uploads_left(app) == []


def test_an_upload_over_the_limit_is_refused_while_streaming(
    app_factory: Any, tmp_path: Path
) -> None:
    app = app_factory(IMPORT_DIR=str(tmp_path / "imports"), IMPORT_MAX_BYTES=1000)
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    page = client.get("/imports").get_data(as_text=True)
    assert 'data-max-bytes="1000"' in page and "Up to 1.0 kB." in page
    rows = "".join(f"person{i}@example.org,Zoë\n" for i in range(10_000)).encode()
    # Far over: refused from its Content-Length, before the body is read.
    big = _post_file(client, list_id, b"email,name\n" + rows, "big.csv")
    assert big.status_code == 413
    assert "The file is larger than 1.0 kB; split it." in big.get_data(as_text=True)
    # Over the limit but within the form's margin: refused while copying.
    small = _post_file(client, list_id, b"email,name\n" + rows[:5000], "small.csv")
    assert small.status_code == 422
    assert "The file is larger than 1.0 kB; split it." in small.get_data(as_text=True)
    # No Content-Length (a chunked upload): the stream is cut at the limit.
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(
        method="POST",
        data={"file": (io.BytesIO(b"email\n" + rows), "chunked.csv"), "list_id": str(list_id)},
    ).get_environ()
    chunked = client.post(
        "/imports",
        input_stream=io.BytesIO(environ["wsgi.input"].read()),
        content_type=environ["CONTENT_TYPE"],
        # Werkzeug ignores any Content-Length of a chunked request.
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert chunked.status_code == 413
    assert _uploads_left(app) == []
    with app.app_context():
        assert core_db.session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_the_limit_applies_before_the_csrf_check_reads_the_form(
    app_factory: Any, tmp_path: Path
) -> None:
    app = app_factory(IMPORT_DIR=str(tmp_path / "imports"), IMPORT_MAX_BYTES=1000)
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    app.config["WTF_CSRF_ENABLED"] = True  # CSRFProtect now reads the form of every POST
    big = b"email\n" + b"a@example.org\n" * 20_000
    response = _post_file(client, list_id, big, "big.csv")
    assert response.status_code == 413
    assert "The file is larger than 1.0 kB; split it." in response.get_data(as_text=True)
    # Signed out: refused all the same, before anything else.
    assert _post_file(app.test_client(), list_id, big, "big.csv").status_code == 413


def test_a_batch_the_database_refuses_is_rolled_back_whole_and_reported(
    imports_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from subscribers import importer

    app = imports_app
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = _upload(client, list_id, _hostile_rows(5000, 0))
    insert_consent = importer._Writer.insert_consent
    calls = []

    def refuse_second_batch(self: Any, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:  # after the batch's contacts and subscriptions were written
            raise importer.DATA_ERRORS[0]("value refused")
        insert_consent(self, *args)

    monkeypatch.setattr(importer._Writer, "insert_consent", refuse_second_batch)
    status = _start(app, client, import_id, {"column-0": "email", "column-1": "name"})
    assert (status["status"], status["created"], status["rows"]) == ("failed", 2000, 2000)
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "The database refused rows 2,002 to 4,001 (DataError)." in page
    assert "None of them was imported, nor any row after them; the rows before them were." in page
    with app.app_context():
        assert core_db.session.scalar(select(func.count()).select_from(Contact)) == 2000
        assert core_db.session.scalar(select(func.count()).select_from(Subscription)) == 2000
    assert _uploads_left(app) == []


def test_uploads_left_at_the_mapping_step_are_removed_after_a_day(imports_app: Flask) -> None:
    import time_machine

    from core import scheduler

    app = imports_app
    tenant, list_id = tenant_with_list(app)
    start = datetime(2026, 12, 1, 9, 0)
    with time_machine.travel(start, tick=False):
        abandoned = _upload(logged_in(app, tenant), list_id, EUROPEAN.encode("cp1252"))
    with time_machine.travel(start + timedelta(hours=20), tick=False):
        recent = _upload(logged_in(app, tenant), list_id, EUROPEAN.encode("cp1252"))
    assert len(_uploads_left(app)) == 2
    with time_machine.travel(start + timedelta(hours=24, minutes=1), tick=False):
        # Not before the day is over; the later upload is kept.
        results = scheduler.run_jobs(app, only=["personal-data-retention"])
        again = scheduler.run_jobs(app, only=["personal-data-retention"])
    assert results["personal-data-retention"]["import_files"] == 1
    assert again["personal-data-retention"]["import_files"] == 0
    assert len(_uploads_left(app)) == 1
    client = logged_in(app, tenant)
    page = client.get(f"/imports/{abandoned}").get_data(as_text=True)
    assert "The columns were not mapped within 24 hours, so the file was deleted." in page
    # The recent one is still there to be mapped and imported.
    status = _start(app, client, recent, {})
    assert (status["status"], status["created"]) == ("done", 3)
    assert _uploads_left(app) == []
