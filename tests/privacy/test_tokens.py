"""Confirmation, download and account-deletion tokens: expired, reused, wrong purpose, signed
with a key rotated out, and signed with an older key still in the rotation list."""

from __future__ import annotations

import re
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from core import db as core_db
from core.signing import Purpose, sign_timed
from privacy.models import DataRequest
from tests.conftest import TEST_KEYS
from tests.factories import login, make_tenant
from tests.privacy.helpers import link_in, submit, token_of
from tests.smtp_sink import SMTPSink

ADDRESS = "tess@example.org"
OLD_KEY, CURRENT_KEY = TEST_KEYS
NEWER_KEY = "newer-test-key-0123456789abcdef"


def _request_link(app: Flask, smtp_sink: SMTPSink, kind: str = "export") -> str:
    submit(app.test_client(), ADDRESS, kind)
    return link_in(smtp_sink, ADDRESS, "/privacy/confirm/")


def _downloads(page: str) -> list[str]:
    return re.findall(r'action="(/privacy/download/[^"]+)"', page)


def test_confirmation_link_expires_after_24_hours(app: Flask, smtp_sink: SMTPSink) -> None:
    with time_machine.travel("2026-05-01 09:00:00", tick=False):
        path = _request_link(app, smtp_sink)
    client = app.test_client()
    with time_machine.travel("2026-05-02 09:00:05", tick=False):
        assert client.get(path).status_code == 410
        assert client.post(path).status_code == 410
    with app.app_context():
        assert core_db.session.scalar(select(DataRequest.status)) == "received"


def test_confirmation_link_works_once(app: Flask, smtp_sink: SMTPSink) -> None:
    path = _request_link(app, smtp_sink, "restrict")
    client = app.test_client()
    assert client.post(path).status_code == 200
    assert client.post(path).status_code == 410
    assert client.get(path).status_code == 410


def test_download_expires_and_works_once(app: Flask, smtp_sink: SMTPSink) -> None:
    with time_machine.travel("2026-05-01 09:00:00", tick=False):
        path = _request_link(app, smtp_sink)
        client = app.test_client()
        json_path, csv_path = _downloads(client.post(path).get_data(as_text=True))
        assert client.post(json_path).status_code == 200
        assert client.post(json_path).status_code == 410
    with time_machine.travel("2026-05-02 09:00:05", tick=False):
        assert client.post(csv_path).status_code == 410  # never used, but expired


def test_a_token_for_another_purpose_is_refused(app: Flask, smtp_sink: SMTPSink) -> None:
    path = _request_link(app, smtp_sink)
    with app.app_context():
        request_id = core_db.session.scalar(select(DataRequest.id))
        as_download = sign_timed(Purpose.DOWNLOAD, [request_id])
        as_reset = sign_timed(Purpose.PASSWORD_RESET, [request_id])
        confirm_as_download = token_of(path)
    client = app.test_client()
    assert client.get(f"/privacy/confirm/{as_download}").status_code == 410
    assert client.post(f"/privacy/confirm/{as_reset}").status_code == 410
    assert client.post(f"/privacy/download/{confirm_as_download}").status_code == 410
    assert client.post(f"/account/delete/confirm/{token_of(path)}").status_code == 410
    assert client.post(path).status_code == 200  # the real one still works


def test_a_key_rotated_out_no_longer_verifies(app_factory: Any, smtp_sink: SMTPSink) -> None:
    before = app_factory(SECRET_KEYS=[OLD_KEY])
    path = _request_link(before, smtp_sink)
    after = app_factory(SECRET_KEYS=[CURRENT_KEY, NEWER_KEY])
    assert after.test_client().post(path).status_code == 410


def test_an_older_key_still_in_the_rotation_verifies(app_factory: Any, smtp_sink: SMTPSink) -> None:
    before = app_factory(SECRET_KEYS=[OLD_KEY])
    path = _request_link(before, smtp_sink, "access")
    rotated = app_factory(SECRET_KEYS=[OLD_KEY, CURRENT_KEY])  # oldest first, last one signs
    page = rotated.test_client().post(path)
    assert page.status_code == 200
    download = _downloads(page.get_data(as_text=True))[0]
    # The download was signed with the current key; the old-key-only app cannot read it.
    assert before.test_client().post(download).status_code == 410
    assert rotated.test_client().post(download).status_code == 200


@pytest.mark.parametrize("case", ["expired", "reused", "rotated-out", "older-key"])
def test_account_deletion_link(app_factory: Any, smtp_sink: SMTPSink, case: str) -> None:
    signing_keys = [OLD_KEY] if case in ("rotated-out", "older-key") else list(TEST_KEYS)
    first = app_factory(SECRET_KEYS=signing_keys)
    with time_machine.travel("2026-05-01 09:00:00", tick=False):
        with first.app_context():
            tenant = make_tenant()
        client = first.test_client()
        login(client, tenant.email)
        client.post("/account/delete")
        path = link_in(smtp_sink, tenant.email, "/account/delete/confirm/")
    verify_keys = {
        "expired": list(TEST_KEYS),
        "reused": list(TEST_KEYS),
        "rotated-out": [CURRENT_KEY, NEWER_KEY],
        "older-key": [OLD_KEY, CURRENT_KEY],
    }[case]
    verifier = app_factory(SECRET_KEYS=verify_keys).test_client()
    when = "2026-05-02 09:00:05" if case == "expired" else "2026-05-01 10:00:00"
    with time_machine.travel(when, tick=False):
        status = verifier.post(path).status_code
        if case == "older-key":
            assert status == 200
        elif case == "reused":
            assert status == 200
            with first.app_context():
                from accounts import services

                services.reactivate_account(tenant.account_id, tenant.user_id, "owner")
            assert verifier.post(path).status_code == 410  # spent, even after reactivation
        else:
            assert status == 410


def test_two_simultaneous_confirmations_fulfil_once(app: Flask, smtp_sink: SMTPSink) -> None:
    import threading

    path = _request_link(app, smtp_sink, "access")
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def click() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post(path).status_code)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 410]
    with app.app_context():
        from privacy.models import Download

        assert len(core_db.session.scalars(select(Download)).all()) == 1
