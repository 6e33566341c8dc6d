"""Bounces and complaints after sending: DSN and ARF from a Maildir, Amazon SES via SNS with a
verified signature, and the generic HMAC webhook, all mapped back to the message."""

from __future__ import annotations

import base64
import json
import mailbox
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from campaigns import bounces, queries, services
from campaigns.models import Bounce
from subscribers.suppression import suppression_reason
from tests.campaigns.helpers import (
    SAMPLES,
    campaign_account_id,
    message_to,
    sample_report,
    sent_campaign,
)
from tests.conftest import drain


def test_envelope_sender_is_a_verp_address_naming_the_message(sending_app: Any) -> None:
    sent = sent_campaign(sending_app, ["ada@example.org"])
    _message_id, verp = sent["ada@example.org"]
    assert verp.startswith("bounces+") and verp.endswith("@shop.example")
    key = sending_app.config["SECRET_KEY"]
    from campaigns.render import parse_verp

    assert parse_verp(verp, key) == message_to("ada@example.org").id
    forged = verp.replace("bounces+", "bounces+9") if "+9" not in verp else verp
    assert parse_verp(forged, key) is None


def test_dsn_and_arf_reports_from_a_maildir(sending_app: Any, tmp_path: Path) -> None:
    sent = sent_campaign(
        sending_app,
        ["gone@example.org", "full@example.net", "later@example.org", "angry@hotmail.com"],
    )
    box = mailbox.Maildir(str(tmp_path / "bounces"), create=True)
    for name, address in [
        ("dsn_hard_postfix.eml", "gone@example.org"),
        ("dsn_soft_exim.eml", "full@example.net"),
        ("dsn_delayed.eml", "later@example.org"),
        ("arf_complaint.eml", "angry@hotmail.com"),
    ]:
        message_id, verp = sent[address]
        box.add(sample_report(name, address, message_id, verp))
    box.add(b"From: someone@example.org\r\nSubject: Thanks!\r\n\r\nNot a report.\r\n")
    recorded = bounces.process_maildir(str(tmp_path / "bounces"))
    assert recorded == 3
    assert message_to("gone@example.org").bounce_kind == "hard"
    assert message_to("full@example.net").bounce_kind == "soft"
    assert message_to("later@example.org").bounce_kind is None  # "delayed" is not a bounce
    assert message_to("angry@hotmail.com").bounce_kind == "complaint"
    from core import db

    account_id = campaign_account_id()
    assert suppression_reason(account_id, "gone@example.org") == "hard_bounce"
    assert suppression_reason(account_id, "angry@hotmail.com") == "complaint"
    assert suppression_reason(account_id, "full@example.net") is None  # one soft bounce
    diagnostics = sorted(db.session.scalars(select(Bounce.diagnostic)))
    assert diagnostics == ["452 4.2.2", "550 5.1.1", "arf abuse"]  # codes only, no text
    campaign_id = message_to("gone@example.org").campaign_id
    assert queries.bounce_counts(campaign_id) == {"hard": 1, "soft": 1, "complaint": 1}
    # Recorded reports are deleted; the others are kept for a person, marked seen.
    left = mailbox.Maildir(str(tmp_path / "bounces"), create=False)
    assert len(left) == 2
    assert all(m.get_subdir() == "cur" for m in left)
    # Reading again changes nothing.
    assert bounces.process_maildir(str(tmp_path / "bounces")) == 0


def test_dsn_matched_by_verp_when_the_message_id_is_unknown(sending_app: Any) -> None:
    sent = sent_campaign(sending_app, ["gone@example.org"])
    _message_id, verp = sent["gone@example.org"]
    raw = sample_report("dsn_hard_postfix.eml", "gone@example.org", "<unknown@elsewhere>", verp)
    assert bounces.record(bounces.parse_report(raw)) == 1
    assert message_to("gone@example.org").bounce_kind == "hard"


def _signed_sns(
    key: rsa.RSAPrivateKey, cert_url: str, body: dict[str, Any], version: str = "1"
) -> dict[str, Any]:
    envelope = {
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "Timestamp": "2026-11-22T08:10:13.000Z",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-bounces",
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
        **body,
    }
    fields = bounces._SIGNED_FIELDS[envelope["Type"]]
    payload = "".join(f"{k}\n{envelope[k]}\n" for k in fields if k in envelope).encode()
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()  # noqa: S303
    envelope["Signature"] = base64.b64encode(
        key.sign(payload, padding.PKCS1v15(), algorithm)
    ).decode()
    return envelope


def _certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_notifications_via_sns_with_verified_signature(sending_app: Any, version: str) -> None:
    sent = sent_campaign(sending_app, ["gone@example.org", "angry@example.org"])
    key, pem = _certificate()
    cert_url = (
        f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-{secrets.token_hex(4)}.pem"
    )
    fetched: list[str] = []

    def fake_get(url: str) -> bytes:  # the test serves the certificate: no network
        fetched.append(url)
        return pem if url == cert_url else b"ok"

    sending_app.config["SNS_HTTP_GET"] = fake_get
    client = sending_app.test_client()

    def notification(sample: str, address: str) -> dict[str, Any]:
        message_id, verp = sent[address]
        text = (SAMPLES / sample).read_text().replace("{{RECIPIENT}}", address)
        text = text.replace("{{MESSAGE_ID}}", message_id).replace("{{VERP}}", verp)
        return _signed_sns(key, cert_url, {"Type": "Notification", "Message": text}, version)

    bounce = notification("ses_bounce.json", "gone@example.org")
    response = client.post("/webhooks/ses", data=json.dumps(bounce), content_type="text/plain")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"result": "recorded 1"}
    complaint = notification("ses_complaint.json", "angry@example.org")
    assert client.post("/webhooks/ses", data=json.dumps(complaint)).status_code == 200
    assert message_to("gone@example.org").bounce_kind == "hard"
    assert message_to("angry@example.org").bounce_kind == "complaint"
    assert fetched == [cert_url]  # fetched once, then cached

    tampered = dict(bounce, Message=bounce["Message"].replace("Permanent", "Transient"))
    assert client.post("/webhooks/ses", data=json.dumps(tampered)).status_code == 403
    elsewhere = dict(bounce, SigningCertURL="https://attacker.example/cert.pem")
    assert client.post("/webhooks/ses", data=json.dumps(elsewhere)).status_code == 403
    assert client.post("/webhooks/ses", data="not json").status_code == 400

    confirm = _signed_sns(
        key,
        cert_url,
        {
            "Type": "SubscriptionConfirmation",
            "Message": "You have chosen to subscribe to the topic",
            "Token": "2336412f37fb687f5d51e6e2425c464de",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        },
        version,
    )
    assert client.post("/webhooks/ses", data=json.dumps(confirm)).get_json() == {
        "result": "subscribed"
    }
    assert fetched[-1].startswith("https://sns.eu-west-1.amazonaws.com/?Action=Confirm")


def test_generic_webhook_with_hmac_and_soft_bounce_threshold(sending_app: Any) -> None:
    first = sent_campaign(sending_app, ["tired@example.org"])
    client = sending_app.test_client()

    def post(events: list[dict[str, Any]], secret: str = "webhook-secret") -> Any:  # noqa: S107
        body = json.dumps({"events": events}).encode()
        return client.post(
            "/webhooks/bounces",
            data=body,
            headers={"X-Envoy-Signature": bounces.generic_signature(secret, body)},
            content_type="application/json",
        )

    event = {
        "type": "soft",
        "message_id": first["tired@example.org"][0],
        "status": "421 4.7.0 try later, and some free text",
        "occurred_at": "2026-11-22T10:00:00Z",
    }
    assert post([event], secret="wrong").status_code == 403
    assert post([{"type": "nonsense"}]).status_code == 400
    response = post([event])
    assert response.get_json() == {"recorded": 1}
    from core import db

    stored = db.session.scalar(select(Bounce))
    assert stored is not None and stored.diagnostic == "421 4.7.0"
    assert stored.occurred_at == datetime(2026, 11, 22, 10, 0)
    account_id = campaign_account_id()
    assert suppression_reason(account_id, "tired@example.org") is None
    # A second soft bounce of the same contact, from another campaign, reaches the limit (2).
    campaign = services.save_campaign(
        account_id,
        campaign_id=None,
        name="Again",
        subject="Again",
        from_name="Shop",
        from_email="news@shop.example",
        html_body="<p>again</p>",
        list_ids=[services.campaign_list_ids(message_to("tired@example.org").campaign_id)[0]],
    )
    services.start(account_id, campaign.id)
    drain(sending_app)
    second = sending_app.extensions["test_sink"].messages[-1]
    assert post([dict(event, message_id=str(second.message["Message-ID"]))]).status_code == 200
    assert suppression_reason(account_id, "tired@example.org") == "hard_bounce"


def test_webhooks_need_no_csrf_token_but_a_signature(app_factory: Any) -> None:
    client = app_factory(WTF_CSRF_ENABLED=True).test_client()
    assert client.post("/webhooks/ses", data="{}").status_code == 403
    body = b'{"type": "hard", "message_id": "<x@y>"}'
    response = client.post(
        "/webhooks/bounces",
        data=body,
        headers={"X-Envoy-Signature": bounces.generic_signature("", body)},
    )
    assert response.status_code == 403
