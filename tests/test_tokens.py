"""Signed tracking tokens: ids only, one purpose each, tampering and rotation."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from core import db as core_db
from core.signing import BadTokenError, Purpose, sign, sign_timed, unsign, unsign_timed
from tests.conftest import TEST_KEYS, drain
from tests.factories import make_campaign, make_list_with_contacts, make_tenant
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink
from tracking import urls
from tracking.models import TrackingEvent
from tracking.views import PIXEL


@pytest.fixture
def sent(app: Flask, smtp_sink: SMTPSink) -> dict[str, Any]:
    with app.app_context():
        tenant = make_tenant()
        list_id = make_list_with_contacts(tenant, ["zoe@example.org"])
        campaign_id = make_campaign(tenant, list_id)
        from campaigns import services

        services.start(tenant.account_id, campaign_id)
    drain(app)
    message = smtp_sink.wait_for(1)[0].message
    return {"campaign_id": campaign_id, "urls": urls_of(message)}


def _events(app: Flask) -> int:
    with app.app_context():
        return int(core_db.session.scalar(select(func.count()).select_from(TrackingEvent)) or 0)


def _tamper(token: str) -> str:
    head, _, signature = token.rpartition(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{head}.{flipped}{signature[1:]}"


def test_payloads_carry_ids_only(app: Flask, sent: dict[str, Any]) -> None:
    import base64
    import json

    for url in [sent["urls"].beacon, *sent["urls"].clicks, sent["urls"].unsubscribe_header]:
        token = url.rsplit("/", 1)[1].removesuffix(".gif")
        payload_part = token.split(".")[0]
        payload = json.loads(
            base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4))
        )
        assert "zoe" not in json.dumps(payload)
        assert all(isinstance(v, int) for v in payload if not str(v).startswith("http"))


def test_tampered_beacon_still_returns_the_gif_and_records_nothing(
    app: Flask, sent: dict[str, Any]
) -> None:
    client = app.test_client(use_cookies=False)
    before = _events(app)
    beacon_path = path_of(sent["urls"].beacon).removesuffix(".gif")
    for path in [_tamper(beacon_path) + ".gif", "/o/garbage.gif", "/o/" + "x" * 300]:
        response = client.get(path)
        assert response.status_code == 200 and response.data == PIXEL
    assert _events(app) == before


def test_click_and_unsubscribe_refuse_tampered_tokens(app: Flask, sent: dict[str, Any]) -> None:
    client = app.test_client(use_cookies=False)
    click_path = path_of(sent["urls"].clicks[0])
    unsub_path = path_of(sent["urls"].unsubscribe_header)
    assert client.get(_tamper(click_path)).status_code == 404
    assert client.get(_tamper(unsub_path)).status_code == 404
    assert (
        client.post(_tamper(unsub_path), data={"List-Unsubscribe": "One-Click"}).status_code == 404
    )
    assert _events(app) == 0


def test_a_token_for_one_purpose_fails_for_another(app: Flask, sent: dict[str, Any]) -> None:
    client = app.test_client(use_cookies=False)
    beacon_token = path_of(sent["urls"].beacon).rsplit("/", 1)[1].removesuffix(".gif")
    click_token = path_of(sent["urls"].clicks[0]).rsplit("/", 1)[1]
    unsub_token = path_of(sent["urls"].unsubscribe_header).rsplit("/", 1)[1]
    assert client.get(f"/c/{beacon_token}").status_code == 404
    assert client.get(f"/u/{click_token}").status_code == 404
    assert (
        client.post(f"/u/{beacon_token}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
    )
    assert client.get(f"/o/{unsub_token}.gif").data == PIXEL
    assert _events(app) == 0


def test_unknown_ids_are_refused(app: Flask, sent: dict[str, Any]) -> None:
    client = app.test_client(use_cookies=False)
    with app.test_request_context():
        ghost_open = urls.open_url(999_999, 888_888)
        ghost_unsub = urls.unsubscribe_url(888_888)
        other_campaign_click = urls.click_url(999_999, 1, "https://x.example/", 888_888)
    assert client.get(path_of(ghost_open)).data == PIXEL
    assert (
        client.post(path_of(ghost_unsub), data={"List-Unsubscribe": "One-Click"}).status_code == 404
    )
    assert client.get(path_of(ghost_unsub)).status_code == 200  # the page shows; nothing changes
    # An unknown campaign still redirects (the destination is signed) but records nothing.
    assert client.get(path_of(other_campaign_click)).status_code == 302
    assert _events(app) == 0


def test_rotation_old_key_verifies_new_key_signs(app: Flask) -> None:
    with app.app_context():
        token = sign(Purpose.OPEN, [1])
    old_only = Flask("old")
    old_only.config["SECRET_KEYS"] = [TEST_KEYS[0]]
    with old_only.app_context():
        made_with_old = sign(Purpose.OPEN, [2])
        with pytest.raises(BadTokenError):
            unsign(Purpose.OPEN, token)  # signed by the newer key, unknown here
    with app.app_context():
        assert unsign(Purpose.OPEN, made_with_old) == [2]  # older key still in the list
    retired = Flask("retired")
    retired.config["SECRET_KEYS"] = [TEST_KEYS[1], "a-brand-new-key-0123456789"]
    with retired.app_context(), pytest.raises(BadTokenError):
        unsign(Purpose.OPEN, made_with_old)  # the old key left the rotation list


def test_timed_tokens_expire(app: Flask) -> None:
    import time_machine

    with app.app_context():
        with time_machine.travel("2026-01-01 12:00:00", tick=False):
            token = sign_timed(Purpose.PASSWORD_RESET, [5, "abc"])
        with time_machine.travel("2026-01-01 12:59:00", tick=False):
            assert unsign_timed(Purpose.PASSWORD_RESET, token, max_age=3600) == [5, "abc"]
        with time_machine.travel("2026-01-01 13:00:02", tick=False), pytest.raises(BadTokenError):
            unsign_timed(Purpose.PASSWORD_RESET, token, max_age=3600)


@pytest.mark.parametrize(
    "payload",
    [[7], [7, 123456], [7, 3, "https://shop.example/" + "long/path/" * 30, 99], {"k": "v"}],
    ids=["short", "two-ids", "compressed-click", "object"],
)
def test_tokens_are_stock_itsdangerous_tokens(app: Flask, payload: Any) -> None:
    """The cached signers make byte-identical tokens, verified both ways, with every key."""
    from itsdangerous import URLSafeSerializer

    stock = URLSafeSerializer(list(TEST_KEYS), salt=Purpose.CLICK.value)
    old_key_only = URLSafeSerializer([TEST_KEYS[0]], salt=Purpose.CLICK.value)
    with app.app_context():
        for _ in range(2):  # the second time through the cached signer
            ours = sign(Purpose.CLICK, payload)
            assert ours == stock.dumps(payload)
            assert stock.loads(ours) == payload
            assert unsign(Purpose.CLICK, old_key_only.dumps(payload)) == payload
            with pytest.raises(BadTokenError):
                unsign(Purpose.OPEN, ours)
