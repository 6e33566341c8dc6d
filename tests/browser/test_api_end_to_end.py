"""Issue 16 end to end, as a platform engineer meets it: an owner creates an API key in the
browser; a program then, through the API alone, adds a webhook endpoint (a local receiver),
creates a list and two contacts, sends a campaign to them and one transactional receipt; all
three messages arrive at the real SMTP sink (the campaign's with tracked links and the
one-click unsubscribe, the receipt without either), and the receiver gets the matching events,
each signed as the Standard Webhooks specification says (checked here with an HMAC computed
from the spec, not by the code under test)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.browser.conftest import LiveServer, log_in, screenshot
from tests.factories import make_tenant
from tests.smtp_sink import SMTPSink
from tests.webhooks.receiver import Receiver, verifies

pytestmark = pytest.mark.browser

OWNER = "owner@laden.example"
SCOPES = ("contacts:manage", "campaigns:manage", "campaigns:send", "sending:manage")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


def _key_from_the_settings_page(page: Any, base: str) -> str:
    page.goto(f"{base}/settings/api-keys")
    page.fill("#name", "Shop back office")
    for scope in SCOPES:
        page.check(f"input[name=scopes][value='{scope}']")
    page.click("#key-form button[type=submit]")
    secret: str = page.inner_text("#new-key-secret").strip()
    screenshot(page, "api-end-to-end-key")
    return secret


def _wait(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def test_key_api_campaign_receipt_and_signed_webhooks(
    live_server: LiveServer, page: Any, smtp_sink: SMTPSink, receiver: Receiver
) -> None:
    base = live_server.url
    live_server.app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = True  # the receiver is local
    with live_server.app.app_context():
        make_tenant(OWNER, "Laden Ünal")
    log_in(page, base, OWNER)
    key = _key_from_the_settings_page(page, base)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"

    def call(method: str, path: str, **kwargs: Any) -> Any:
        answer = api.request(method, f"{base}/api/v1{path}", timeout=15, **kwargs)
        assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    endpoint = call(
        "POST",
        "/webhooks/endpoints",
        json={
            "url": receiver.url,
            "description": "back office",
            "event_types": [
                "contact.subscribed",
                "campaign.started",
                "campaign.finished",
                "message.sent",
            ],
        },
    )
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")

    mailing_list = call(
        "POST", "/lists", json={"name": "Kunden"}, headers={"Idempotency-Key": "l1"}
    )
    people = {"zoë@example.org": "Zoë Ørsted", "jürgen@example.de": "Jürgen Groß"}
    for email, name in people.items():
        subscribed = call(
            "POST",
            f"/lists/{mailing_list['id']}/subscriptions",
            json={"email": email, "name": name},
        )
        assert subscribed["status"] == "subscribed"

    campaign = call(
        "POST",
        "/campaigns",
        json={
            "name": "Frühling",
            "subject": "Hallo {{ contact.name }}",
            "from_name": "Laden",
            "from_email": "news@laden.example",
            "html_body": '<p>Neu: <a href="https://laden.example/neu">unsere Auswahl</a></p>',
            "list_ids": [mailing_list["id"]],
        },
    )
    audience = call("GET", f"/campaigns/{campaign['id']}/audience")
    assert audience["recipients"] == 2
    call("POST", f"/campaigns/{campaign['id']}/send", json={"expected_recipients": 2})
    _wait(
        "the campaign to be sent",
        lambda: call("GET", f"/campaigns/{campaign['id']}/progress")["status"] == "sent",
    )

    receipt = call(
        "POST",
        "/messages",
        json={
            "to": "ada@example.org",
            "to_name": "Ada Lovelace",
            "from_email": "orders@laden.example",
            "subject": "Ihre Quittung {{ data.order }}",
            "html": "<p>Danke! Bestellung {{ data.order }}: {{ data.total }}.</p>",
            "data": {"order": "1042", "total": "12,50 €"},
        },
        headers={"Idempotency-Key": "order-1042"},
    )
    _wait(
        "the receipt to be sent",
        lambda: call("GET", f"/messages/{receipt['id']}")["status"] == "sent",
    )

    # The messages, as received by the SMTP server.
    smtp_sink.wait_for(3)
    for email, name in people.items():
        [received] = smtp_sink.to(email)
        message = received.utf8_message
        assert message["Subject"] == f"Hallo {name}"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = message.get_body(("html",)).get_content()
        assert "https://laden.example/neu" not in html  # the link is tracked
        assert f"{base}/c/" in html
    [receipt_mail] = smtp_sink.to("ada@example.org")
    receipt_message = receipt_mail.utf8_message
    assert receipt_message["Subject"] == "Ihre Quittung 1042"
    assert receipt_message["List-Unsubscribe"] is None  # a receipt is not marketing
    assert "12,50 €" in receipt_message.get_body(("html",)).get_content()
    assert f"{base}/c/" not in receipt_message.get_body(("html",)).get_content()

    # The webhooks, each signed with the endpoint's secret.
    def arrived() -> bool:
        return (
            len(receiver.of_type("contact.subscribed")) >= 2
            and len(receiver.of_type("message.sent")) >= 3
            and len(receiver.of_type("campaign.finished")) >= 1
        )

    _wait("the webhooks", arrived)
    assert all(verifies(secret, request) for request in receiver.requests)
    assert {r.json["data"]["email"] for r in receiver.of_type("contact.subscribed")} == set(people)
    sent = [r.json["data"] for r in receiver.of_type("message.sent")]
    assert {d["email"] for d in sent} == {*people, "ada@example.org"}
    assert [d["transactional_message_id"] for d in sent if "transactional_message_id" in d] == [
        receipt["id"]
    ]
    [started] = receiver.of_type("campaign.started")
    assert started.json["data"]["campaign_id"] == campaign["id"]
    [finished] = receiver.of_type("campaign.finished")
    assert finished.json["data"]["counts"] == {"sent": 2}

    # The delivery log in the browser shows them delivered.
    page.goto(f"{base}/settings/webhooks/{endpoint['id']}")
    assert page.locator("#delivery-log tr[data-status='succeeded']").count() >= 7
    screenshot(page, "api-end-to-end-deliveries")
