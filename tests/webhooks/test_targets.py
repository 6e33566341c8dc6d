"""The platform is not an SSRF relay: loopback, private, link-local, multicast and reserved
targets are refused when an endpoint is saved and again at delivery time (a name that later
resolves elsewhere), IPv4 and IPv6 alike, unless the operator allows private targets."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from core import db as core_db
from core.errors import ValidationError
from tests.factories import make_tenant
from tests.webhooks.receiver import Receiver
from webhooks import delivery, endpoints, targets
from webhooks.events import emit
from webhooks.models import DeliveryStatus, EventType, WebhookDelivery

REFUSED = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.1.2.3:8080/hook", "loopback"),
    ("http://10.0.0.5/hook", "private"),
    ("http://172.16.3.4/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://100.64.0.1/hook", "not public"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[::ffff:10.1.2.3]/hook", "private"),
    ("http://[64:ff9b::7f00:1]/hook", "loopback"),
    ("http://[2002:7f00:1::]/hook", "loopback"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[fc00::1]/hook", "private"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://localhost:9/hook", "loopback"),
]


def _fake_dns(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, str], port: int, lookups: list[str]
) -> None:
    """Resolve the names of ``answers`` to their address (what it says at each lookup),
    recording every name looked up in ``lookups``."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def strict_app(app_factory: Any) -> Flask:
    built: Flask = app_factory(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
    return built


@pytest.mark.parametrize(("url", "words"), REFUSED)
def test_private_targets_are_refused_when_saved(strict_app: Flask, url: str, words: str) -> None:
    with strict_app.app_context():
        tenant = make_tenant()
        with pytest.raises(ValidationError) as refused:
            endpoints.create_endpoint(tenant.account_id, None, url, ["message.sent"])
        assert refused.value.field == "url"
        assert words in refused.value.message
        assert "Webhooks cannot be sent to" in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https://user:pw@example.com/x",
        "https://",
        "not a url",
        "http://[::1",
    ],
)
def test_malformed_urls_get_a_clear_error(strict_app: Flask, url: str) -> None:
    with strict_app.app_context():
        tenant = make_tenant()
        with pytest.raises(ValidationError) as refused:
            endpoints.create_endpoint(tenant.account_id, None, url, ["message.sent"])
        assert refused.value.field == "url"


def test_public_addresses_pass_the_rule() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8"):
        assert targets.refusal(ipaddress.ip_address(address)) is None


def test_a_name_resolving_to_loopback_is_refused_at_delivery_time(
    app_factory: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saved while the name pointed to a public address, then it points to 127.0.0.1 (DNS
    rebinding): the delivery checks again, refuses, and never connects."""
    app = app_factory(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False)
    port = receiver.server.server_address[1]
    answers = {"hooks.shop.example": "93.184.216.34"}
    _fake_dns(monkeypatch, answers, port, [])
    with app.app_context():
        tenant = make_tenant()
        endpoints.create_endpoint(
            tenant.account_id, None, f"http://hooks.shop.example:{port}/hooks", ["import.finished"]
        )
        answers["hooks.shop.example"] = "127.0.0.1"
        emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 1})
        core_db.session.commit()
        delivery_id = core_db.session.scalars(select(WebhookDelivery.id)).one()
        assert delivery.attempt(delivery_id) == DeliveryStatus.PENDING
        row = core_db.session.get(WebhookDelivery, delivery_id)
        assert row is not None
        assert "loopback" in row.last_error and row.last_status_code is None
    assert receiver.requests == []


def test_allowed_when_the_operator_setting_is_on(app: Flask, receiver: Receiver) -> None:
    """(The tests' app allows private targets, as a development machine would.)"""
    with app.app_context():
        tenant = make_tenant()
        created = endpoints.create_endpoint(
            tenant.account_id, None, receiver.url, ["import.finished"]
        )
        assert created.endpoint.url == receiver.url
        emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 1})
        core_db.session.commit()
        delivery_id = core_db.session.scalars(select(WebhookDelivery.id)).one()
        assert delivery.attempt(delivery_id) == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 1


def test_the_delivery_connects_to_the_address_it_checked(
    app: Flask, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lookup per attempt: the connection goes to the checked address, with the name in
    the Host header, not through a second resolution."""
    port = receiver.server.server_address[1]
    lookups: list[str] = []
    _fake_dns(monkeypatch, {"hooks.shop.example": "127.0.0.1"}, port, lookups)
    with app.app_context():
        tenant = make_tenant()
        endpoints.create_endpoint(
            tenant.account_id, None, f"http://hooks.shop.example:{port}/in", ["import.finished"]
        )
        lookups.clear()
        emit(tenant.account_id, EventType.IMPORT_FINISHED, {"import_id": 1})
        core_db.session.commit()
        delivery_id = core_db.session.scalars(select(WebhookDelivery.id)).one()
        assert delivery.attempt(delivery_id) == DeliveryStatus.SUCCEEDED
    assert lookups.count("hooks.shop.example") == 1
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.shop.example:{port}"
    assert request.path == "/in"
