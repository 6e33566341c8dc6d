"""Shared steps of the privacy tests: links from received emails, a sent campaign with events."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import drain
from tests.factories import Tenant, make_campaign, make_list_with_contacts
from tests.mail_parsing import path_of, urls_of
from tests.smtp_sink import SMTPSink


def link_in(smtp_sink: SMTPSink, address: str, marker: str) -> str:
    """The path of the last link containing ``marker`` in mail sent to ``address``."""
    for received in reversed(smtp_sink.to(address)):
        body = received.message.get_body(preferencelist=("plain",))
        assert body is not None
        found = re.findall(r"https?://\S+", body.get_content())
        for url in found:
            if marker in url:
                return path_of(url)
    raise AssertionError(f"no {marker} link sent to {address}")


def token_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[1]


def submit(client: FlaskClient, email: str, kind: str, **extra: str) -> Any:
    return client.post("/privacy/request", data={"email": email, "kind": kind, **extra})


def send_and_track(app: Flask, smtp_sink: SMTPSink, tenant: Tenant, addresses: list[str]) -> int:
    """Send a campaign to ``addresses`` with identified tracking on, open and click it once
    per recipient; return the campaign id."""
    from accounts import services as accounts
    from campaigns import services as campaigns

    with app.app_context():
        accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
        list_id = make_list_with_contacts(tenant, addresses, name=f"List {tenant.account_id}")
        campaign_id = make_campaign(tenant, list_id)
        campaigns.start(tenant.account_id, campaign_id)
    drain(app)
    client = app.test_client(use_cookies=False)
    for address in addresses:
        message = [m.message for m in smtp_sink.to(address) if m.message["List-Unsubscribe"]][-1]
        urls = urls_of(message)
        client.get(path_of(urls.beacon), headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
        client.get(path_of(urls.clicks[0]), headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    drain(app)
    return campaign_id
