"""International addresses everywhere mail leaves or enters: the CSV import accepts what can be
sent and refuses, with a reason per row, what no server can take; system mail (the double
opt-in) goes out in A-labels or with SMTPUTF8; long Unicode headers are folded with CRLF."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from campaigns import services as campaigns
from campaigns.models import Campaign, Message
from core.mail import NO_SMTPUTF8, UnsupportedByServerError, send_system_mail
from tests.conftest import drain
from tests.smtp_sink import SMTPSink
from tests.subscribers.helpers import (
    confirm_link,
    contact_emails,
    logged_in,
    report_rows,
    run_import,
    signup_key,
    tenant_with_list,
)

IDN_ASCII = "xn--fsqu00a.xn--4rr70v"  # 例子.广告

CSV = (
    "email,name\n"
    "zoë.ñúñez@example.org,Zoë Ñúñez\n"  # 2  accepted: SMTPUTF8
    "用户@例子.广告,李小龍\n"  # 3  accepted: SMTPUTF8, IDN
    "olga@почта.рф,Ольга\n"  # 4  accepted: IDN only, sendable anywhere
    f"{'é' * 33}@example.org,Too Long In Octets\n"  # 5  33 characters, 66 octets
    f"{'x' * 65}@example.org,Too Long\n"  # 6
    f"{'x' * 64}@{'.'.join(['a' * 60] * 3)}.example.org,Longer Than 254\n"  # 7
    "anna@💩.la,Emoji Domain\n"  # 8  not IDNA 2008
    "bob@xn--ab.com,Bad Punycode\n"  # 9
)


def test_import_accepts_what_can_be_sent_and_refuses_the_rest_with_a_reason(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    tenant, list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    import_id = run_import(app, client, list_id, CSV, {0: "email", 1: "name"})
    rows = {row["row"]: row for row in report_rows(client, import_id)}
    assert sorted(rows, key=int) == ["5", "6", "7", "8", "9"]
    assert {row["problem"] for row in rows.values()} == {"invalid address"}
    details = {number: row["detail"] for number, row in rows.items()}
    assert "66 octets long; servers accept at most 64 (RFC 5321)" in details["5"]
    assert "65 octets long" in details["6"]
    assert "longer than 254 octets" in details["7"]
    assert "not allowed" in details["8"]
    assert "not valid IDNA" in details["9"]
    accepted = contact_emails(app, tenant.account_id)
    assert accepted == {"zoë.ñúñez@example.org", "用户@例子.广告", "olga@почта.рф"}

    # Accepted means sendable: a campaign to the list reaches every one of them.
    with app.app_context():
        from core import db

        campaign = campaigns.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Welcome",
            subject="Willkommen, {{ contact.first_name }}",
            from_name="Shop",
            from_email="news@shop.example",
            html_body="<p>Hello {{ contact.name }}</p>",
            list_ids=[list_id],
        )
        campaigns.start(tenant.account_id, campaign.id)
    drain(app)
    with app.app_context():
        statuses = set(db.session.scalars(select(Message.status)))
        assert statuses == {"sent"}
        assert db.session.scalar(select(Campaign.status)) == "sent"
    assert sorted(r.recipients[0] for r in smtp_sink.messages) == sorted(
        ["zoë.ñúñez@example.org", f"用户@{IDN_ASCII}", "olga@xn--80a1acny.xn--p1ai"]
    )


@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "no-smtputf8"])
def test_system_mail_to_international_addresses(
    app: Flask, smtp_sink: SMTPSink, smtputf8: bool
) -> None:
    smtp_sink.smtputf8 = smtputf8
    with app.app_context():
        send_system_mail("bruce@例子.广告", "Grüße", "Hallo Bruce")
        if smtputf8:
            send_system_mail("用户@例子.广告", "你好", "你好")
        else:
            with pytest.raises(UnsupportedByServerError, match=re.escape(NO_SMTPUTF8)):
                send_system_mail("用户@例子.广告", "你好", "你好")
    received = {r.recipients[0]: r for r in smtp_sink.wait_for(2 if smtputf8 else 1)}
    bruce = received[f"bruce@{IDN_ASCII}"]
    assert "SMTPUTF8" not in bruce.mail_options
    assert str(bruce.message["To"]) == f"bruce@{IDN_ASCII}"
    assert str(bruce.message["Subject"]) == "Grüße"
    if smtputf8:
        yonghu = received[f"用户@{IDN_ASCII}"]
        assert "SMTPUTF8" in yonghu.mail_options
        assert str(yonghu.utf8_message["To"]) == "用户@例子.广告"


def test_double_opt_in_reaches_an_idn_address(app: Flask, smtp_sink: SMTPSink) -> None:
    smtp_sink.smtputf8 = False  # an IDN domain needs no SMTPUTF8
    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    response = client.post(f"/subscribe/{key}", data={"email": "Olga@Почта.РФ", "name": "Ольга"})
    assert response.status_code == 200
    drain(app)
    arrived = smtp_sink.wait_for(1)[0]
    assert arrived.recipients == ["Olga@xn--80a1acny.xn--p1ai"]
    assert arrived.data.split(b"\r\n\r\n")[0].isascii()
    assert str(arrived.message["To"]) == "Olga@xn--80a1acny.xn--p1ai"
    link = confirm_link(smtp_sink, "Olga@xn--80a1acny.xn--p1ai")
    done = client.post(link)
    assert done.status_code == 200 and "You are subscribed" in done.get_data(as_text=True)


def test_long_unicode_headers_are_folded_with_crlf(
    app: Flask, db: Any, smtp_sink: SMTPSink
) -> None:
    tenant, list_id = tenant_with_list(app)
    from subscribers import services as subscribers

    subscribers.add_contact_to_list(tenant.account_id, list_id, "zoe@example.org", name="Zoë")
    subject = "Ünsere größten Angebote des Jahres für {{ contact.first_name }} \u2013 " * 3
    campaign = campaigns.save_campaign(
        tenant.account_id,
        campaign_id=None,
        name="Long",
        subject=subject.strip(),
        from_name="Ωμέγα " * 20,
        from_email="news@shop.example",
        html_body="<p>x</p>",
        list_ids=[list_id],
    )
    campaigns.start(tenant.account_id, campaign.id)
    drain(app)
    data = smtp_sink.wait_for(1)[0].data
    head = data.split(b"\r\n\r\n")[0]
    assert b"\n" not in head.replace(b"\r\n", b"")  # no bare LF (RFC 5322 2.2)
    assert b"\r" not in head.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    message = smtp_sink.messages[0].message
    assert str(message["Subject"]) == subject.strip().replace("{{ contact.first_name }}", "Zoë")
