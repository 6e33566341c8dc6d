"""Sending a campaign through the real pipeline and reading what tracking stored."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from accounts import services as accounts
from campaigns import services as campaigns
from core import db as core_db
from tests.conftest import drain
from tests.factories import Tenant, make_campaign, make_list_with_contacts, make_tenant
from tests.mail_parsing import MessageUrls, path_of, urls_of
from tests.smtp_sink import SMTPSink
from tracking.models import TrackingEvent

BROWSER_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
BODY = (
    '<html><body><p>Hi</p><a href="https://shop.example/a?x=1&amp;y=2">A</a> '
    '<a href="https://shop.example/b">B</a> <a href="https://shop.example/c">C</a></body></html>'
)


@dataclass
class Sent:
    tenant: Tenant
    campaign_id: int
    list_id: int
    urls: dict[str, MessageUrls]  # by recipient address

    def honeypot(self, address: str) -> str:
        match = re.search(r'href="([^"]*/h/[^"]+)"', self.urls[address].html)
        assert match, "no honeypot link in the message"
        return path_of(match.group(1))


def send_campaign(
    app: Flask,
    smtp_sink: SMTPSink,
    recipients: list[str],
    individual: bool,
    email: str = "owner@shop.example",
    ip_handling: str = "truncate",
) -> Sent:
    """Sign up, set the privacy settings, send a campaign and parse every received message."""
    with app.app_context():
        tenant = make_tenant(email=email)
        accounts.update_privacy_settings(tenant.account_id, individual, ip_handling, 180)
        list_id = make_list_with_contacts(tenant, recipients)
        campaign_id = make_campaign(tenant, list_id, html=BODY)
        campaigns.start(tenant.account_id, campaign_id)
        core_db.session.remove()
    drain(app)
    received = smtp_sink.wait_for(len(recipients))
    by_address = {r.unicode_recipients[0]: urls_of(r.message) for r in received}
    smtp_sink.clear()
    return Sent(tenant, campaign_id, list_id, by_address)


def token_payload(url: str) -> Any:
    """The readable payload of a signed token in a URL."""
    token = url.rsplit("/", 1)[1].removesuffix(".gif").split("?")[0]
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def events(app: Flask) -> list[TrackingEvent]:
    with app.app_context():
        found = list(core_db.session.scalars(select(TrackingEvent).order_by(TrackingEvent.id)))
        core_db.session.remove()
        return found


def event_count(app: Flask) -> int:
    with app.app_context():
        count = core_db.session.scalar(select(func.count()).select_from(TrackingEvent))
        core_db.session.remove()
        return int(count or 0)
