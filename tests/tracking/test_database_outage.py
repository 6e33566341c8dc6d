"""Issue 14: a public POST while the database is down answers 503 with ``Retry-After`` and
records nothing (never a 200 that recorded nothing, never a 500); once the database is back the
same POST succeeds. The outage is real: the app's connections are cut and new ones refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core import db as core_db
from core.db import make_engine
from subscribers.models import ConsentRecord, Subscription
from tests.factories import login
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink
from tests.tracking.test_unsubscribe import PEOPLE, _send
from tracking.models import MessageUnsubscribe

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@contextmanager
def database_down(app: Flask, tmp_path: Path) -> Iterator[None]:
    """Cut the app off its database for the block: PostgreSQL's server ends the app's
    connections and a closed port refuses new ones; SQLite's file cannot be opened."""
    real = app.extensions["db_engine"]
    if real.dialect.name == "postgresql":
        admin = create_engine(real.url, poolclass=NullPool)
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        admin.dispose()
        down = make_engine(real.url.set(host="127.0.0.1", port=1).render_as_string(False))
    else:
        down = make_engine(f"sqlite:///{tmp_path / 'no-such-directory' / 'envoy.db'}")
    app.extensions["db_engine"] = down
    try:
        yield
    finally:
        app.extensions["db_engine"] = real
        down.dispose()


State = tuple[list[tuple[int, str]], list[tuple[int, str]], list[tuple[str, str]]]


def _state(app: Flask) -> State:
    """(unsubscribe rows, subscription statuses, consent records other than subscribing)."""
    with app.app_context():
        session = core_db.session
        rows = sorted(
            session.execute(select(MessageUnsubscribe.message_id, MessageUnsubscribe.status)).all()
        )
        subs = sorted(session.execute(select(Subscription.contact_id, Subscription.status)).all())
        consent = [
            (action, detail)
            for action, detail in session.execute(
                select(ConsentRecord.action, ConsentRecord.detail).order_by(ConsentRecord.id)
            )
            if action != "subscribed"
        ]
        core_db.session.remove()
    return [tuple(r) for r in rows], [tuple(s) for s in subs], consent  # type: ignore[misc]


def _assert_unavailable(response: Any, said: str) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Cache-Control"] == "no-store"
    assert said in response.get_data(as_text=True)
    assert "try again" in response.get_data(as_text=True)


def test_unsubscribe_posts_answer_503_while_the_database_is_down_and_succeed_after(
    app: Flask, smtp_sink: SMTPSink, tmp_path: Path
) -> None:
    tenant, _campaign_id, mail = _send(app, smtp_sink)
    before = _state(app)
    assert before[0] == [] and {s for _, s in before[1]} == {"subscribed"}
    zoe = path_of(mail[PEOPLE[0]].unsubscribe_header)
    li = path_of(mail[PEOPLE[1]].unsubscribe_body or "")
    public = app.test_client(use_cookies=False)
    # The marketer, signed in, tries her own link: the answer must not need her session's row.
    member = app.test_client()
    login(member, tenant.email)

    with database_down(app, tmp_path):
        answer = public.post(zoe, data=ONE_CLICK)  # Zoë's mail client, RFC 8058
        _assert_unavailable(answer, "Your unsubscribe was not recorded")
        assert answer.mimetype == "text/plain" and "Location" not in answer.headers
        page = member.post(li)  # 李小龍 presses the page's button
        _assert_unavailable(page, "Your unsubscribe was not recorded")
        assert page.mimetype == "text/html" and "<main" in page.get_data(as_text=True)
        assert public.get(li).status_code == 503  # the page itself cannot be shown either
    assert _state(app) == before  # nothing was recorded

    # The database is back: the same requests are answered and recorded.
    assert public.post(zoe, data=ONE_CLICK).status_code == 200
    done = public.post(li)
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    rows, subs, consent = _state(app)
    assert [status for _, status in rows] == ["active", "active"]
    assert sorted(s for _, s in subs) == ["subscribed"] * 2 + ["unsubscribed"] * 2
    assert consent == [("unsubscribed", "one-click"), ("unsubscribed", "link")]

    # The undo form posted while the database is down: 503, and the unsubscribe stands.
    undo_token = re.search(r'name="undo" value="([^"]+)"', done.get_data(as_text=True))
    assert undo_token is not None
    recorded = _state(app)
    with database_down(app, tmp_path):
        undo = public.post(f"{li}/undo", data={"undo": undo_token.group(1)})
        _assert_unavailable(undo, "Your undo was not recorded")
    assert _state(app) == recorded
    again = public.post(f"{li}/undo", data={"undo": undo_token.group(1)})
    assert again.status_code == 200
    assert sorted(status for _, status in _state(app)[0]) == ["active", "undone"]


def test_the_preference_centre_post_answers_503_and_changes_nothing(
    app: Flask, smtp_sink: SMTPSink, tmp_path: Path
) -> None:
    _tenant, _campaign_id, mail = _send(app, smtp_sink)
    found = re.search(r'href="([^"]*/preferences/[^"]+)"', mail[PEOPLE[2]].html)
    assert found is not None
    path = path_of(found.group(1).replace("&amp;", "&"))
    person = app.test_client()
    assert person.get(path).status_code == 200
    before = _state(app)
    with database_down(app, tmp_path):
        answer = person.post(path, data={"action": "everything"})
        _assert_unavailable(answer, "Your choices were not saved")
    assert _state(app) == before
    after = person.post(path, data={"action": "everything"})
    assert "unsubscribed from everything" in after.get_data(as_text=True)
    _rows, subs, consent = _state(app)
    assert "unsubscribed_all" in [action for action, _ in consent]
    assert sorted(s for _, s in subs) == ["subscribed"] * 3 + ["unsubscribed"]


def test_a_commit_that_fails_mid_request_answers_503_and_records_nothing(
    app: Flask, smtp_sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tenant, _campaign_id, mail = _send(app, smtp_sink)
    before = _state(app)
    ольга = path_of(mail[PEOPLE[2]].unsubscribe_header)

    def lost(_session: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patched:
        patched.setattr(Session, "commit", lost)
        _assert_unavailable(
            app.test_client().post(ольга, data=ONE_CLICK), "Your unsubscribe was not recorded"
        )
    assert _state(app) == before
    assert app.test_client().post(ольга, data=ONE_CLICK).status_code == 200
    rows, _subs, consent = _state(app)
    assert [status for _, status in rows] == ["active"]
    assert consent == [("unsubscribed", "one-click")]


def test_a_failing_statement_is_still_a_bug_not_an_outage(
    app: Flask, smtp_sink: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tenant, _campaign_id, mail = _send(app, smtp_sink)
    ada = path_of(mail[PEOPLE[3]].unsubscribe_header)

    def broken(_session: Session) -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    monkeypatch.setattr(Session, "commit", broken)
    with pytest.raises(IntegrityError):  # TESTING propagates what would be a 500
        app.test_client().post(ada, data=ONE_CLICK)
