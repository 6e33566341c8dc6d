"""Trusted proxy hops (issue 15): with ``TRUSTED_PROXY_HOPS=0`` a client's X-Forwarded-For is
ignored and every per-client limit keys on the socket address; with ``1`` the client the
reverse proxy names is the one the login throttle, the data-request limit, the session record
and the tracking hot path reduce and count. Through HTTP with ``REMOTE_ADDR`` set."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts.models import UserSession
from core import db as core_db
from core.db import utcnow
from core.settings import load_config
from privacy.models import DataRequest
from tests.conftest import drain
from tests.factories import PASSWORD, make_tenant
from tests.mail_parsing import path_of
from tests.smtp_sink import SMTPSink
from tests.tracking.helpers import BROWSER_UA, events, send_campaign

PROXY = "10.20.30.40"  # the reverse proxy's own address, as the app's socket sees it
START = datetime(2026, 3, 2, 9, 0, 0)
OWNER = "zoë.ñúñez@ejemplo.es"
WRONG = "not Zoë's passphrase"


def _client(app: Flask, remote_addr: str = PROXY) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote_addr
    return client


def _forwarded(client_ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": client_ip, "X-Forwarded-Proto": "https"}


def _login(client: FlaskClient, email: str, forwarded_for: str, password: str = WRONG) -> Any:
    return client.post(
        "/login",
        data={"email": email, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )


def _data_request(client: FlaskClient, email: str, forwarded_for: str) -> Any:
    return client.post(
        "/privacy/request",
        data={"email": email, "kind": "access"},
        headers=_forwarded(forwarded_for),
    )


def _prefixes(app: Flask, model: Any, column: Any) -> list[str | None]:
    with app.app_context():
        found = list(core_db.session.scalars(select(column).order_by(model.id)))
        core_db.session.remove()
        return found


def test_the_setting_defaults_to_no_trust_and_refuses_nonsense(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRUSTED_PROXY_HOPS", raising=False)
    assert load_config()["TRUSTED_PROXY_HOPS"] == 0
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "2")
    assert load_config()["TRUSTED_PROXY_HOPS"] == 2
    for bad in ("-1", "11"):
        monkeypatch.setenv("TRUSTED_PROXY_HOPS", bad)
        with pytest.raises(ValueError, match="TRUSTED_PROXY_HOPS"):
            load_config()
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "one")
    with pytest.raises(ValueError):
        load_config()


# --- 0 hops: forwarded headers are anyone's to forge ------------------------------------------


def test_without_trusted_proxies_a_forged_forwarded_for_does_not_escape_the_login_throttle(
    app_factory: Any,
) -> None:
    app = app_factory(LOGIN_LIMITS_PER_NETWORK="3/minute")
    attacker = _client(app, "203.0.113.7")
    with time_machine.travel(START, tick=False):
        for n in range(3):
            answer = _login(attacker, f"guess{n}@ejemplo.es", f"198.51.{n}.1")
            assert answer.status_code == 422
        # A fresh forged "client" each time: still the same socket network, still limited.
        assert _login(attacker, "Ольга@пример.рф", "192.0.2.99").status_code == 429
        assert _login(_client(app, "203.0.113.250"), "x@ejemplo.es", "192.0.2.1").status_code == 429
        assert (
            _login(_client(app, "198.51.100.1"), "x@ejemplo.es", "203.0.113.7").status_code == 422
        )


def test_without_trusted_proxies_the_data_request_limit_and_prefix_use_the_socket(
    app_factory: Any,
) -> None:
    app = app_factory(DATA_REQUEST_LIMIT_PER_CLIENT=2)
    client = _client(app, "203.0.113.77")
    assert _data_request(client, "a@example.org", "198.51.100.1").status_code == 200
    assert _data_request(client, "b@example.org", "192.0.2.1").status_code == 200
    assert _data_request(client, "c@example.org", "2001:db8::1").status_code == 429
    assert _prefixes(app, DataRequest, DataRequest.client_prefix) == ["203.0.113.0/24"] * 2


# --- 1 hop: the proxy's X-Forwarded-For names the client ---------------------------------------


def test_behind_one_proxy_the_login_throttle_limits_the_forwarded_client_network(
    app_factory: Any,
) -> None:
    app = app_factory(TRUSTED_PROXY_HOPS=1, LOGIN_LIMITS_PER_NETWORK="3/minute")
    with app.app_context():
        make_tenant(OWNER, "Zoë Ñúñez SL")
    proxy = _client(app)
    with time_machine.travel(START, tick=False):
        for n in range(3):
            assert _login(proxy, f"guess{n}@ejemplo.es", "203.0.113.7").status_code == 422
        assert _login(proxy, "guess9@ejemplo.es", "203.0.113.7").status_code == 429
        assert _login(proxy, OWNER, "203.0.113.200", PASSWORD).status_code == 429  # same /24
        # The client prepends a forged address; the proxy appends the real one, which counts.
        assert _login(proxy, OWNER, "198.51.100.9, 203.0.113.7", PASSWORD).status_code == 429
        # Everyone else behind the same proxy is unaffected.
        assert _login(proxy, OWNER, "198.51.100.9", PASSWORD).status_code == 302


def test_behind_one_proxy_data_requests_count_and_keep_the_forwarded_client_prefix(
    app_factory: Any,
) -> None:
    app = app_factory(TRUSTED_PROXY_HOPS=1, DATA_REQUEST_LIMIT_PER_CLIENT=2)
    proxy = _client(app)
    assert _data_request(proxy, "li@例子.cn", "203.0.113.77").status_code == 200
    assert _data_request(proxy, "zoe@ejemplo.es", "203.0.113.78").status_code == 200
    assert _data_request(proxy, "olga@пример.рф", "203.0.113.79").status_code == 429
    assert _data_request(proxy, "olga@пример.рф", "2001:db8:1:2::9").status_code == 200
    prefixes = _prefixes(app, DataRequest, DataRequest.client_prefix)
    assert prefixes == ["203.0.113.0/24", "203.0.113.0/24", "2001:db8:1::/48"]
    assert not any(p and p.startswith("10.") for p in prefixes)


@pytest.mark.parametrize(
    ("hops", "expected"), [(0, "10.20.30.0/24"), (1, "198.51.100.0/24")], ids=["0", "1"]
)
def test_the_login_session_records_the_reduced_client_behind_trusted_proxies(
    app_factory: Any, hops: int, expected: str
) -> None:
    app = app_factory(TRUSTED_PROXY_HOPS=hops)
    with app.app_context():
        make_tenant(OWNER, "Zoë Ñúñez SL")
    assert _login(_client(app), OWNER, "198.51.100.23", PASSWORD).status_code == 302
    assert _prefixes(app, UserSession, UserSession.ip_prefix) == [expected]


def test_behind_one_proxy_tracking_hits_reduce_the_forwarded_client(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(TRUSTED_PROXY_HOPS=1)
    sent = send_campaign(app, smtp_sink, ["ada@example.org"], individual=True)
    urls = sent.urls["ada@example.org"]
    assert urls.beacon is not None
    public = app.test_client(use_cookies=False)
    # A client in Gmail's image-proxy network: only the forwarded address tells it apart.
    headers = {"User-Agent": BROWSER_UA, **_forwarded("66.102.1.77")}
    with time_machine.travel(utcnow() + timedelta(minutes=1), tick=True):
        pixel = public.get(
            path_of(urls.beacon), headers=headers, environ_base={"REMOTE_ADDR": PROXY}
        )
    assert pixel.status_code == 200
    drain(app)
    (event,) = events(app)
    assert event.machine_reason == "network:google"  # classified on the forwarded client
