"""Logs hold no personal data (issue 13).

Each error path that logs is driven through its public interface with a distinctive address
(an international local part, an IDN domain, a plus tag) that the hostile side quotes back
wherever it can (SMTP replies naming the recipient, a statement's parameters); then every log
record, at every level and with its traceback, is searched for any form of the address.
"""

from __future__ import annotations

import http.client
import io
import logging
import smtplib
import threading
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import make_server

from campaigns import services as campaigns
from campaigns.models import Message
from core import db as core_db
from core import logsafe, scheduler
from subscribers.models import Contact
from tests.campaigns.helpers import campaign_with
from tests.conftest import drain
from tests.privacy.helpers import submit
from tests.smtp_sink import SMTPSink
from tests.subscribers.helpers import logged_in, tenant_with_list
from tracking import urls

ADDRESS = "Zoë.Ñúñez+logs@例え.jp"
NAME = "Zoë Ñúñez 李小龍"
A_LABEL = "例え".encode("idna").decode("ascii")
#: Every form the address (or the name) could take in a log line; compared case-folded.
FORMS = ("+logs@", "zoë.ñúñez", "ñúñez+logs", "例え", A_LABEL, "zo%c3%ab", "李小龍", "zoe.nunez")


#: The test's SMTP sink (aiosmtpd) logs what it receives: the other side, not Envoy.
SINK_LOGGERS = ("mail.log", "mail.debug")


def _forms_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The forms of the address found in Envoy's captured log (messages and tracebacks)."""
    assert caplog.handler.level <= logging.DEBUG
    found: set[str] = set()
    for record in caplog.records:
        if record.name in SINK_LOGGERS:
            continue
        logged = caplog.handler.format(record).casefold()
        leaked = {form for form in FORMS if form.casefold() in logged}
        if leaked:
            print("LEAK", record.name, record.levelname, logged[:300])  # shown on failure
        found |= leaked
    return sorted(found)


@pytest.fixture
def everything(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every level of every logger, the engine's statement log included."""
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_a_database_error_quotes_no_parameter(app: Flask, everything: Any) -> None:
    with app.app_context():
        tenant, _list_id = tenant_with_list(app)
        contact = Contact(account_id=tenant.account_id, email=ADDRESS, name=NAME)
        core_db.session.add(contact)
        core_db.session.commit()
        with pytest.raises(IntegrityError) as raised:
            core_db.session.execute(
                text("INSERT INTO contacts (id, account_id, email, name) VALUES (:i, :a, :e, :n)"),
                {"i": contact.id, "a": tenant.account_id, "e": ADDRESS, "n": NAME},
            )
        core_db.session.rollback()
    error = str(raised.value)
    assert "[SQL parameters hidden due to hide_parameters=True]" in error
    if app.config["DATABASE_URL"].startswith("sqlite"):
        assert not [form for form in FORMS if form.casefold() in error.casefold()]
    # PostgreSQL's own text may quote the row ("DETAIL: Failing row contains ..."): that is why
    # no log line carries a database error's text (next test).
    # The statement log ran (so the check below means something) and hid the parameters.
    assert any("INSERT INTO contacts" in r.getMessage() for r in everything.records)
    assert _forms_in(everything) == []


def test_an_unhandled_database_error_in_a_request_is_logged_without_its_text_or_path_token(
    app: Flask, everything: Any
) -> None:
    token = "eyJabc.Zm9vYmFyYmF6cXV4cXV1eC1sb25nLXRva2Vu.c2lnbmF0dXJlLWJ5dGVz"
    tenant, _list_id = tenant_with_list(app)

    def failing(token: str) -> str:
        contact = Contact(account_id=tenant.account_id, email=ADDRESS, name=NAME)
        core_db.session.add(contact)
        core_db.session.commit()
        core_db.session.execute(
            text("INSERT INTO contacts (id, account_id, email, name) VALUES (:i, :a, :e, :n)"),
            {"i": contact.id, "a": tenant.account_id, "e": ADDRESS, "n": NAME},
        )
        return token

    # A route that fails as a view would on a constraint; Flask logs it (not re-raised).
    app.add_url_rule("/preferences-failing/<token>", "failing", failing)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get(f"/preferences-failing/{token}")
    assert response.status_code == 500
    logged = [r for r in everything.records if r.name == app.logger.name]
    assert logged, "Flask logged the error"
    line = everything.handler.format(logged[0])
    assert "/preferences-failing/<token>" in line and "IntegrityError" in line
    assert "in failing" in line  # where it failed is kept
    assert token not in line
    assert _forms_in(everything) == []


def test_debug_logging_does_not_turn_on_the_statement_log(app_factory: Any) -> None:
    app_factory(LOG_LEVEL="DEBUG")
    # At DEBUG the engine would log result rows, addresses included.
    assert logging.getLogger("sqlalchemy.engine").getEffectiveLevel() == logging.WARNING


def test_an_smtp_refusal_quoting_the_recipient_is_logged_without_it(
    app: Flask, db: Any, smtp_sink: SMTPSink, everything: Any
) -> None:
    setup = campaign_with([ADDRESS, "ok@example.org"])
    quoted = f"550 5.1.1 <{ADDRESS}>: no such user (Zoë Ñúñez)"
    for form in (ADDRESS, ADDRESS.split("@")[0] + "@" + A_LABEL + ".jp"):
        smtp_sink.reply_for(form, quoted, stage="rcpt")
        smtp_sink.reply_for(form, quoted)
    campaigns.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    db.expire_all()
    failed = db.scalars(select(Message).where(Message.status == "failed")).all()
    assert len(failed) == 1  # the refusal happened
    assert _forms_in(everything) == []


def test_a_transport_error_quoting_an_address_is_logged_by_kind_and_code(
    app: Flask, everything: Any
) -> None:
    # What smtplib raises when a server refuses the recipients of a whole connection.
    refused = smtplib.SMTPRecipientsRefused({ADDRESS: (550, f"<{ADDRESS}> unknown".encode())})
    assert logsafe.error_summary(refused) == "SMTPRecipientsRefused (SMTP 550)"
    sender = smtplib.SMTPSenderRefused(553, f"<{ADDRESS}> not allowed".encode(), ADDRESS)
    assert logsafe.error_summary(sender) == "SMTPSenderRefused (SMTP 553)"
    assert _forms_in(everything) == []


def test_a_data_request_mail_failure_quoting_the_address_is_logged_without_it(
    client: Any, smtp_sink: SMTPSink, everything: Any
) -> None:
    for form in (ADDRESS, ADDRESS.split("@")[0] + "@" + A_LABEL + ".jp"):
        smtp_sink.reply_for(form, f"451 4.2.0 <{form}> greylisted, try later")
    response = submit(client, ADDRESS, "access")
    assert response.status_code == 422  # the failure happened and was logged
    assert any("not sent" in r.getMessage() for r in everything.records)
    assert _forms_in(everything) == []


def test_import_row_failures_are_not_logged_with_their_data(
    app_factory: Any, tmp_path: Any, everything: Any
) -> None:
    app = app_factory(IMPORT_DIR=str(tmp_path / "imports"))
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    rows = (
        "email,name\n"
        f"{ADDRESS.replace('@', '@@')},{NAME}\n"  # not an address: refused by email-validator
        f"{ADDRESS},{NAME}\x00\n"  # unreadable
        f"{ADDRESS},{NAME}\n"
        f"{ADDRESS},{NAME}\n"  # a duplicate
    ).encode()
    response = client.post(
        "/imports",
        data={"file": (io.BytesIO(rows), "export.csv"), "list_id": str(list_id)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"].rstrip("/")
    assert client.post(location, data={"column-0": "email", "column-1": "name"}).status_code == 302
    drain(app)
    status = client.get(f"{location}/status").get_json()
    assert status["status"] == "done" and status["created"] == 1 and status["errors"] >= 2
    assert _forms_in(everything) == []


def test_a_failing_scheduled_job_logs_its_frames_and_kind_not_its_text(
    app: Flask, everything: Any, monkeypatch: Any
) -> None:
    def failing(_now: Any) -> str:
        raise smtplib.SMTPRecipientsRefused({ADDRESS: (550, f"<{ADDRESS}> no".encode())})

    monkeypatch.setattr(scheduler, "resolve", lambda _job: failing)
    results = scheduler.run_jobs(app, only=["personal-data-retention"])
    assert results["personal-data-retention"] == "SMTPRecipientsRefused"
    logged = [r for r in everything.records if "scheduled job" in r.getMessage()]
    assert logged and "in failing" in logged[0].getMessage()  # where it failed is kept
    assert "SMTP 550" in logged[0].getMessage()
    assert _forms_in(everything) == []


# --- the embedded server's request log -------------------------------------------------------


def test_the_request_log_holds_no_client_address_token_or_query(
    app: Flask, everything: Any
) -> None:
    with app.app_context():
        setup = campaign_with([ADDRESS])
        campaigns.start(setup.tenant.account_id, setup.campaign_id)
        drain(app)
        message = core_db.session.scalars(select(Message)).first()
        assert message is not None
        beacon = urls.open_url(setup.campaign_id, message.id)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = "eyJabc.Zm9vYmFyYmF6cXV4cXV1eC1sb25nLXRva2Vu.c2lnbmF0dXJlLWJ5dGVz"
    paths = [f"/o/{token}", f"/c/{token}", f"/u/{token}", f"/preferences/{token}"]
    paths.append(f"/contacts?q={urllib.request.quote(ADDRESS)}")
    paths.append(beacon.removeprefix(app.config["BASE_URL"].rstrip("/")))
    try:
        for path in paths:
            connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    lines = [r.getMessage() for r in everything.records if r.name == "werkzeug"]
    assert len(lines) >= len(paths), lines  # every request was logged
    joined = "\n".join(lines)
    assert "127.0.0.1" not in joined
    assert token not in joined and "Zm9vYmFy" not in joined
    for kind in ("o", "c", "u"):
        assert f"/{kind}/<token>" in joined
    assert "/preferences/<token>" in joined and "/contacts?<query>" in joined
    assert '"GET /o/<token> HTTP/1.1" 200' in joined
    assert _forms_in(everything) == []


def test_redact_path_keeps_ordinary_paths() -> None:
    assert logsafe.redact_path("GET /campaigns/12/edit HTTP/1.1") == (
        "GET /campaigns/12/edit HTTP/1.1"
    )
    assert logsafe.redact_path("GET /o/x HTTP/1.1") == "GET /o/<token> HTTP/1.1"
    assert logsafe.redact_path("/static/app.css") == "/static/app.css"


# --- gunicorn's access log in production -----------------------------------------------------


@pytest.mark.parametrize(
    "log_format",
    [
        None,  # gunicorn's default, which starts with the client address
        '%(h)s %(r)s %(q)s %(U)s "%(f)s" "%(a)s" %({x-forwarded-for}i)s %({remote_addr}e)s',
    ],
)
def test_gunicorn_access_lines_hold_no_client_address_token_or_query(
    tmp_path: Any, log_format: str | None
) -> None:
    from gunicorn.config import Config

    from core.gunicorn_log import AccessLogger

    config = Config()
    access_file = tmp_path / "access.log"
    config.set("accesslog", str(access_file))
    if log_format:
        config.set("access_log_format", log_format)
    logger = AccessLogger(config)
    token = "eyJabc.Zm9vYmFyYmF6cXV4cXV1eC1sb25nLXRva2Vu.c2lnbmF0dXJlLWJ5dGVz"
    query = f"email={urllib.request.quote(ADDRESS)}"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/o/{token}?{query}",
        "PATH_INFO": f"/o/{token}",
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.77",
        "HTTP_REFERER": f"https://mail.example/u/{token}",
        "HTTP_USER_AGENT": f"Agent ({ADDRESS})",
    }
    response = SimpleNamespace(status="200 OK", sent=43, headers=[("Content-Type", "image/gif")])
    request = SimpleNamespace(headers=[("X-FORWARDED-FOR", "198.51.100.9")])
    logger.access(response, request, environ, timedelta(microseconds=1500))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = access_file.read_text(encoding="utf-8")
    assert "/o/<token>" in line
    if log_format is None:
        assert line.startswith("- - - [") and '"GET /o/<token> HTTP/1.1" 200 43 "-" "-"' in line
    for leaked in ("203.0.113.77", "198.51.100.9", token, "Zm9vYmFy", "+logs", "%2Blogs"):
        assert leaked not in line, line


def test_a_failed_task_in_dramatiqs_log_keeps_its_frames_and_kind_not_its_text(
    app: Flask, everything: Any
) -> None:
    def deliver() -> None:
        raise smtplib.SMTPRecipientsRefused({ADDRESS: (550, f"<{ADDRESS}> unknown".encode())})

    try:
        deliver()
    except smtplib.SMTPRecipientsRefused:
        # What dramatiq's worker thread does with an actor's unhandled exception.
        logging.getLogger("dramatiq.worker.WorkerThread").error(
            "Failed to process message send_batch(7) with unhandled exception.", exc_info=True
        )
    text = everything.text
    assert "Failed to process message" in text and "in deliver" in text
    assert "SMTPRecipientsRefused (SMTP 550)" in text
    assert _forms_in(everything) == []
