"""Delivery that never stalls: one bad recipient fails alone, with its reason, and the campaign
finishes; international addresses go out per RFC 6531/6532 or, without SMTPUTF8, fail alone;
a campaign without progress says why. Everything is checked on what the real SMTP sink
received and through the campaign's pages."""

from __future__ import annotations

import csv
import io
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from campaigns import queries, senders, services
from campaigns.models import Bounce, Campaign, Message
from campaigns.sending import delivery
from core.db import utcnow
from core.mail import NO_SMTPUTF8
from subscribers import services as subscribers
from subscribers.models import Contact
from subscribers.suppression import suppression_reason
from tests import services_available
from tests.campaigns.fault_harness import OwnRedis, Worker, worker_env_like_tests
from tests.conftest import drain
from tests.factories import Tenant, login, make_tenant
from tests.smtp_sink import Received, SMTPSink

#: A-labels of 例子.广告 (IDNA 2008 / UTS 46).
IDN_ASCII = "xn--fsqu00a.xn--4rr70v"

HTML = (
    "<html><body><p>Hi {{ contact.first_name }}: "
    "{{ 300 // contact.attributes.visits if contact.attributes.visits is defined else 0 }}"
    " points a visit.</p>"
    '<a href="https://shop.example/offers">Offers</a></body></html>'
)


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    visits: int = 3
    #: Stored as it was before the import refused such addresses (written over a valid one).
    legacy_email: str = ""

    @property
    def stored(self) -> str:
        return self.legacy_email or self.email


#: Sent by any server: ASCII address; ASCII address with a Unicode name (RFC 2047 in the
#: phrase only); a name with RFC 5322 specials (a quoted string); an IDN domain with an ASCII
#: local part (A-labels in the envelope and the header, no SMTPUTF8).
PLAIN = [
    Person("ada@example.org", "Ada Lovelace"),
    Person("olga@example.org", "Ольга Петрова"),
    Person("obrien@example.org", 'O\'Brien, "Pat" (Sales)'),
    Person("bruce@例子.广告", "李小龍"),
]
#: Need SMTPUTF8: a UTF-8 local part with a display name, and one without.
INTERNATIONAL = [
    Person("zoë.ñúñez@example.org", "Zoë Ñúñez"),
    Person("用户@例子.广告", ""),
]
#: Fail alone, each with its reason.
EMOJI_DOMAIN = Person("emoji@example.org", "Emoji Domain", legacy_email="anna@💩.la")
ABSURDLY_LONG = Person("long@example.org", "Long Address", legacy_email="x" * 250 + "@example.org")
RAISES = Person("zero@example.org", "Zero Visits", visits=0)
REFUSED = Person("gone@example.org", "Gone Away")
BAD = [EMOJI_DOMAIN, ABSURDLY_LONG, RAISES, REFUSED]
EVERYONE = [*PLAIN, *INTERNATIONAL, *BAD]


@dataclass
class Audience:
    tenant: Tenant
    campaign_id: int


def international_campaign(people: list[Person] = EVERYONE) -> Audience:
    """A tenant, a list of ``people`` (legacy addresses written over valid ones) and a draft."""
    from core import db

    tenant = make_tenant()
    senders.add_sender(tenant.account_id, "news@shop.example", "Shop", verified=True)
    mailing_list = subscribers.create_list(tenant.account_id, "Everyone")
    for person in people:
        contact = subscribers.add_contact_to_list(
            tenant.account_id,
            mailing_list.id,
            person.email,
            name=person.name,
            attributes={"visits": person.visits},
        )
        if person.legacy_email:
            db.session.execute(
                update(Contact).where(Contact.id == contact.id).values(email=person.legacy_email)
            )
            db.session.commit()
    campaign = services.save_campaign(
        tenant.account_id,
        campaign_id=None,
        name="Spring offers",
        subject="Frühlingsangebote für {{ contact.first_name or 'dich' }} 🌸",
        from_name="Café Ñandú",
        from_email="news@shop.example",
        html_body=HTML,
        list_ids=[mailing_list.id],
    )
    return Audience(tenant, campaign.id)


def outcomes(campaign_id: int) -> dict[str, tuple[str, str]]:
    """Stored address -> (status, reason) of every message of the campaign."""
    from core import db

    db.session.expire_all()
    rows = db.session.execute(
        select(Contact.email, Message.status, Message.error)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign_id)
    ).all()
    return {email: (status, error or "") for email, status, error in rows}


def by_recipient(received: list[Received]) -> dict[str, Received]:
    return {r.recipients[0]: r for r in received}


def envelope(person: Person) -> str:
    return person.email.replace("例子.广告", IDN_ASCII)


def check_outcome(audience: Audience, sink: SMTPSink, smtputf8: bool) -> None:
    """What every bad-recipient scenario must show: each good recipient got exactly one
    message, each bad one failed with its own reason (naming no address), the campaign is
    sent, and only the refused address was suppressed."""
    from core import db

    sendable = PLAIN + (INTERNATIONAL if smtputf8 else [])
    received = by_recipient(sink.messages)
    assert len(sink.messages) == len(sendable)
    assert sorted(received) == sorted(envelope(p) for p in sendable)

    states = outcomes(audience.campaign_id)
    for person in sendable:
        assert states[person.stored] == ("sent", "")
    assert states[EMOJI_DOMAIN.stored][0] == "failed"
    assert "the address cannot be sent to" in states[EMOJI_DOMAIN.stored][1]
    assert "not allowed" in states[EMOJI_DOMAIN.stored][1]  # IDNA 2008 refuses emoji
    assert states[ABSURDLY_LONG.stored] == (
        "failed",
        "the address cannot be sent to: the part before the @ is 250 octets long; "
        "servers accept at most 64 (RFC 5321).",
    )
    assert states[RAISES.stored] == (
        "failed",
        "the personalisation failed for this contact "
        "(ZeroDivisionError: integer division or modulo by zero)",
    )
    assert states[REFUSED.stored] == ("failed", "refused by the receiving server (550 5.1.1)")
    for person in INTERNATIONAL:
        expected = ("sent", "") if smtputf8 else ("failed", NO_SMTPUTF8)
        assert states[person.stored] == expected
    for person in EVERYONE:  # reasons name no address and no name
        reason = states[person.stored][1]
        assert person.stored not in reason and person.email not in reason
        assert not person.name or person.name not in reason

    campaign = db.session.get(Campaign, audience.campaign_id)
    assert campaign is not None and campaign.status == "sent"
    assert campaign.pause_reason == "" and campaign.last_error == ""
    # Only the 5xx refusal is a bounce: an address the platform could not send is none.
    assert suppression_reason(audience.tenant.account_id, REFUSED.email) == "hard_bounce"
    for person in (*INTERNATIONAL, EMOJI_DOMAIN, ABSURDLY_LONG, RAISES):
        assert suppression_reason(audience.tenant.account_id, person.stored) is None
    assert db.session.scalar(select(Bounce.diagnostic)) == "550 5.1.1"


def check_headers(sink: SMTPSink, smtputf8: bool) -> None:
    """Parse what arrived: names and addresses as written, encoded words in phrases only,
    SMTPUTF8 and raw UTF-8 headers only where an address needs them."""
    received = by_recipient(sink.messages)
    for person in PLAIN:
        got = received[envelope(person)]
        assert "SMTPUTF8" not in got.mail_options
        assert got.data.split(b"\r\n\r\n", 1)[0].isascii()  # headers ASCII, RFC 5322
        to = got.message["To"].addresses[0]
        assert (to.display_name, to.username, to.domain) == (
            person.name,
            person.email.partition("@")[0],
            envelope(person).partition("@")[2],
        )
        assert got.message["From"].addresses[0].display_name == "Café Ñandú"
        assert str(got.message["Subject"]) == (f"Frühlingsangebote für {person.name.split()[0]} 🌸")
        raw_to = next(
            line for line in got.data.decode("ascii").split("\r\n") if line.startswith("To:")
        )
        address_part = raw_to.rpartition("<")[2] if "<" in raw_to else raw_to[4:]
        assert "=?" not in address_part  # an encoded word never stands for an address
    olga = received["olga@example.org"].data.decode("ascii")
    assert "To: =?utf-8?b?" in olga and "<olga@example.org>" in olga
    assert f"<bruce@{IDN_ASCII}>" in received[envelope(PLAIN[3])].data.decode("ascii")
    if not smtputf8:
        return
    for person in INTERNATIONAL:
        got = received[envelope(person)]
        assert "SMTPUTF8" in got.mail_options  # RFC 6531
        to = got.utf8_message["To"].addresses[0]
        assert (to.display_name, f"{to.username}@{to.domain}") == (person.name, person.email)
        assert person.email.encode() in got.data  # raw UTF-8 header (RFC 6532)
    zoe = received["zoë.ñúñez@example.org"].data
    assert "To: Zoë Ñúñez <zoë.ñúñez@example.org>".encode() in zoe
    assert "To: 用户@例子.广告\r\n".encode() in received[envelope(INTERNATIONAL[1])].data


@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "no-smtputf8"])
@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_bad_recipients_fail_alone_and_the_campaign_finishes(
    app: Flask, db: Any, smtp_sink: SMTPSink, smtputf8: bool, chunking: bool
) -> None:
    smtp_sink.smtputf8 = smtputf8
    smtp_sink.chunking = chunking
    smtp_sink.reply_for(REFUSED.email, "550 5.1.1 no such user", stage="rcpt")
    audience = international_campaign()
    services.start(audience.tenant.account_id, audience.campaign_id)
    drain(app)
    check_outcome(audience, smtp_sink, smtputf8)
    check_headers(smtp_sink, smtputf8)


def test_one_recipient_per_claim_still_finishes(app_factory: Any, smtp_sink: SMTPSink) -> None:
    """The issue's shape: claims of one, so a bad row used to be the whole claim."""
    app = app_factory(SEND_BATCH_SIZE=1, SEND_CONNECTIONS=1)
    smtp_sink.reply_for(REFUSED.email, "550 5.1.1 no such user", stage="rcpt")
    with app.app_context():
        audience = international_campaign()
        services.start(audience.tenant.account_id, audience.campaign_id)
    drain(app)
    with app.app_context():
        check_outcome(audience, smtp_sink, smtputf8=True)


def test_a_refused_sender_pauses_the_campaign_and_blames_no_recipient(
    app: Flask, db: Any, smtp_sink: SMTPSink
) -> None:
    smtp_sink.reply_for("news@shop.example", "550 5.7.1 sender not allowed", stage="mail")
    audience = international_campaign([PLAIN[0], PLAIN[1]])
    services.start(audience.tenant.account_id, audience.campaign_id)
    drain(app)
    db.expire_all()
    campaign = db.get(Campaign, audience.campaign_id)
    assert campaign.status == "paused"
    assert "refused the sender address (550 5.7.1)" in campaign.pause_reason
    assert set(outcomes(audience.campaign_id).values()) == {("pending", "")}
    assert suppression_reason(audience.tenant.account_id, PLAIN[0].email) is None
    services.resume(audience.tenant.account_id, audience.campaign_id)
    drain(app)
    assert sorted(by_recipient(smtp_sink.messages)) == ["ada@example.org", "olga@example.org"]


# --------------------------------------------------------------------------- the page


def test_campaign_page_lists_failed_recipients_with_reasons_and_a_csv(
    app: Flask, client: Any, smtp_sink: SMTPSink, monkeypatch: Any
) -> None:
    smtp_sink.smtputf8 = False
    smtp_sink.reply_for(REFUSED.email, "550 5.1.1 no such user", stage="rcpt")
    formula = Person("formula@example.org", '=HYPERLINK("http://evil.example","x")', visits=0)
    with app.app_context():
        audience = international_campaign([*EVERYONE, formula])
        services.start(audience.tenant.account_id, audience.campaign_id)
        other = make_tenant(email="other@other.example")
    drain(app)
    login(client, audience.tenant.email)
    monkeypatch.setattr(queries, "FAILED_PAGE_SIZE", 4)
    page = client.get(f"/campaigns/{audience.campaign_id}").get_data(as_text=True)
    assert "Failed recipients" in page and "(7)" in page and "Page 1 of 2" in page
    second = client.get(f"/campaigns/{audience.campaign_id}?failed_page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second
    tables = [html.split('id="failed-table"')[1].split("</table>")[0] for html in (page, second)]
    assert [table.count("<tr>") - 1 for table in tables] == [4, 3]  # less the header row
    both = "".join(tables)
    for text in (
        "zoë.ñúñez@example.org",
        "用户@例子.广告",
        "The server does not support international addresses (SMTPUTF8)",
        "Refused by the receiving server (550 5.1.1)",
        "ZeroDivisionError",
        "the part before the @ is 250 octets long",
        "=HYPERLINK(&#34;http://evil.example&#34;,&#34;x&#34;)",  # the name, escaped
    ):
        assert text in both, text

    response = client.get(f"/campaigns/{audience.campaign_id}/failed.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="campaign-{audience.campaign_id}-failed.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 7
    reasons = {row["email"]: row["reason"] for row in rows}
    assert reasons["用户@例子.广告"] == NO_SMTPUTF8
    assert reasons[REFUSED.email] == "refused by the receiving server (550 5.1.1)"
    assert reasons[ABSURDLY_LONG.stored].startswith("the address cannot be sent to")
    names = {row["email"]: row["name"] for row in rows}
    assert names["formula@example.org"] == "'" + formula.name  # shown as text by spreadsheets

    stranger = app.test_client()
    login(stranger, other.email)
    assert stranger.get(f"/campaigns/{audience.campaign_id}/failed.csv").status_code == 404
    assert stranger.get(f"/campaigns/{audience.campaign_id}").status_code == 404


def test_no_failed_table_when_nothing_failed(
    app: Flask, db: Any, client: Any, smtp_sink: SMTPSink
) -> None:
    audience = international_campaign(PLAIN)
    services.start(audience.tenant.account_id, audience.campaign_id)
    drain(app)
    login(client, audience.tenant.email)
    page = client.get(f"/campaigns/{audience.campaign_id}").get_data(as_text=True)
    assert 'id="failed"' not in page and "0</span> failed" in page


# --------------------------------------------------------------------------- stalls


def _progress(client: Any, campaign_id: int) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"/campaigns/{campaign_id}/progress.json").get_json()
    return data


def test_a_campaign_no_worker_picks_up_is_flagged_with_the_cause(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(SEND_STALL_SECONDS=300)
    client = app.test_client()
    with app.app_context():
        audience = international_campaign(PLAIN)
        started = services.start(audience.tenant.account_id, audience.campaign_id).started_at
        assert started is not None  # and nobody drains the queue
    login(client, audience.tenant.email)
    assert _progress(client, audience.campaign_id)["stalled"] == ""
    with time_machine.travel(started + timedelta(seconds=299), tick=False):
        assert _progress(client, audience.campaign_id)["stalled"] == ""
    with time_machine.travel(started + timedelta(seconds=301), tick=False):
        stalled = _progress(client, audience.campaign_id)["stalled"]
        page = client.get(f"/campaigns/{audience.campaign_id}").get_data(as_text=True)
    expected = f"No progress since {started:%H:%M} UTC: {queries.NO_WORKER}"
    assert stalled == expected
    assert expected in page
    drain(app)  # a worker comes: the campaign finishes and the flag is gone
    client = app.test_client()  # (the session above was last seen in the future)
    login(client, audience.tenant.email)
    done = _progress(client, audience.campaign_id)
    assert (done["status"], done["sent"], done["stalled"]) == ("sent", len(PLAIN), "")


def test_a_transport_error_is_the_stall_cause(app_factory: Any, smtp_sink: SMTPSink) -> None:
    app = app_factory(SEND_STALL_SECONDS=120, SEND_MAX_TRANSPORT_ERRORS=50)
    client = app.test_client()
    with app.app_context():
        audience = international_campaign(PLAIN)
        senders.save_smtp_server(
            audience.tenant.account_id,
            name="down",
            url="smtp://127.0.0.1:1?starttls=0&timeout=2",
            max_per_second=0,
            max_connections=1,
        )
        services.start(audience.tenant.account_id, audience.campaign_id)
        assert delivery.send_batch(audience.campaign_id, claims=1) == 0
    login(client, audience.tenant.email)
    with time_machine.travel(utcnow() + timedelta(minutes=3), tick=False):
        stalled = _progress(client, audience.campaign_id)["stalled"]
    assert stalled.startswith("No progress since ")
    assert "SMTP transport error: cannot connect to 127.0.0.1:1" in stalled


def test_a_platform_error_is_the_stall_cause_without_its_text(
    app_factory: Any, smtp_sink: SMTPSink, monkeypatch: Any
) -> None:
    app = app_factory(SEND_STALL_SECONDS=120)
    client = app.test_client()
    with app.app_context():
        audience = international_campaign(PLAIN)
        services.start(audience.tenant.account_id, audience.campaign_id)

        def broken(*args: Any) -> Any:
            raise OperationalError("SELECT ... WHERE email = 'ada@example.org'", {}, Exception())

        monkeypatch.setattr(delivery, "eligible_recipients", broken)
        with pytest.raises(OperationalError):
            delivery.send_batch(audience.campaign_id, claims=1)
    login(client, audience.tenant.email)
    with time_machine.travel(utcnow() + timedelta(minutes=3), tick=False):
        stalled = _progress(client, audience.campaign_id)["stalled"]
    assert stalled.endswith(
        "a database error in the worker (OperationalError); see the worker's log"
    )
    assert "ada@" not in stalled


def test_waiting_for_a_retry_or_sending_slowly_is_no_stall(
    app_factory: Any, smtp_sink: SMTPSink
) -> None:
    app = app_factory(SEND_STALL_SECONDS=120, SEND_RETRY_BASE_SECONDS=3600)
    smtp_sink.reply_for("ada@example.org", "451 4.7.1 greylisted", stage="rcpt")
    with app.app_context():
        from core import db

        audience = international_campaign(PLAIN)
        services.start(audience.tenant.account_id, audience.campaign_id)
        delivery.send_batch(audience.campaign_id, claims=1)
        campaign = db.session.get(Campaign, audience.campaign_id)
        assert campaign is not None and campaign.status == "sending"
        later = utcnow() + timedelta(minutes=30)
        assert queries.stall(campaign, later) is None  # the retry is due in an hour
        # A live claim that handles nothing for too long is flagged as such.
        db.session.execute(
            update(Message)
            .where(Message.campaign_id == campaign.id, Message.status == "pending")
            .values(status="claimed", claim_token="live", claimed_at=later, due_at=utcnow())
        )
        db.session.commit()
        found = queries.stall(campaign, later)
        assert found is not None and found.cause == queries.SLOW_WORKER


# --------------------------------------------------------------------------- real workers


@pytest.mark.redis
def test_bad_recipients_fail_alone_with_real_dramatiq_workers(
    app_factory: Any, database_url: str, smtp_sink: SMTPSink, tmp_path: Path
) -> None:
    """The same audience sent by a ``dramatiq core.worker`` process over its own Redis."""
    services_available.require("redis")
    own = OwnRedis().start()
    namespace = f"delivery-{secrets.token_hex(3)}"
    timing = {"SEND_BATCH_SIZE": 3, "SEND_CONNECTIONS": 2}
    app = app_factory(REDIS_URL=own.url, REDIS_NAMESPACE=namespace, **timing)
    env = worker_env_like_tests(database_url, own.url, namespace, smtp_sink.url, tmp_path, **timing)
    smtp_sink.reply_for(REFUSED.email, "550 5.1.1 no such user", stage="rcpt")
    log = tmp_path / "worker.log"
    worker = Worker(env, log).start()
    try:
        with app.app_context():
            from core import db

            audience = international_campaign()
            services.start(audience.tenant.account_id, audience.campaign_id)
            deadline = time.monotonic() + 90
            status = ""
            while time.monotonic() < deadline:
                db.session.expire_all()
                status = str(
                    db.session.scalar(
                        select(Campaign.status).where(Campaign.id == audience.campaign_id)
                    )
                )
                if status == "sent":
                    break
                time.sleep(0.3)
            assert status == "sent", log.read_text()[-3000:]
            time.sleep(0.3)  # the sink's last transaction
            check_outcome(audience, smtp_sink, smtputf8=True)
            check_headers(smtp_sink, smtputf8=True)
    finally:
        worker.stop()
        own.kill()


# --------------------------------------------------------------------------- test send, preview


def test_a_test_send_says_why_an_address_cannot_be_sent(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    smtp_sink.smtputf8 = False
    with app.app_context():
        audience = international_campaign([PLAIN[0], RAISES, EMOJI_DOMAIN])
        zero = services_contact_id(RAISES.email)
        legacy = services_contact_id(EMOJI_DOMAIN.stored)
    login(client, audience.tenant.email)
    url = f"/campaigns/{audience.campaign_id}/test"
    refused = client.post(url, data={"addresses": "zoë@example.org", "contact_id": 0})
    assert refused.status_code == 400
    assert NO_SMTPUTF8 in refused.get_data(as_text=True)
    idn = client.post(url, data={"addresses": "me@例子.广告", "contact_id": 0})
    assert idn.status_code == 302  # an IDN domain needs no SMTPUTF8
    assert smtp_sink.wait_for(1)[0].recipients == [f"me@{IDN_ASCII}"]
    raising = client.post(url, data={"addresses": "me@shop.example", "contact_id": zero})
    assert raising.status_code == 400
    assert "ZeroDivisionError" in raising.get_data(as_text=True)
    preview = client.get(f"/campaigns/{audience.campaign_id}/preview?contact_id={legacy}")
    assert preview.status_code == 200
    assert "the address cannot be sent to" in preview.get_data(as_text=True)


def services_contact_id(email: str) -> int:
    from core import db

    found = db.session.scalar(select(Contact.id).where(Contact.email == email))
    assert found is not None
    return int(found)


def test_an_erased_contact_stays_counted_without_its_address(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    from privacy import services as privacy

    with app.app_context():
        audience = international_campaign([PLAIN[0], RAISES])
        services.start(audience.tenant.account_id, audience.campaign_id)
    drain(app)
    with app.app_context():
        privacy.erase_contact(
            audience.tenant.account_id, services_contact_id(RAISES.email), audience.tenant.user_id
        )
    login(client, audience.tenant.email)
    page = client.get(f"/campaigns/{audience.campaign_id}").get_data(as_text=True)
    table = page.split('id="failed-table"')[1].split("</table>")[0]
    assert "Erased contact" in table and "The reason was erased with the contact" in table
    assert RAISES.email not in page and RAISES.name not in page
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/campaigns/{audience.campaign_id}/failed.csv").text)
        )
    )
    assert [(row["email"], row["name"]) for row in rows] == [("", "")]


def test_an_idn_sender_domain_needs_no_smtputf8(app: Flask, db: Any, smtp_sink: SMTPSink) -> None:
    smtp_sink.smtputf8 = False
    audience = international_campaign([PLAIN[0]])
    senders.add_sender(audience.tenant.account_id, "news@münchen.de", "Café", verified=True)
    campaign = services.get_campaign(audience.tenant.account_id, audience.campaign_id)
    services.save_campaign(
        audience.tenant.account_id,
        campaign_id=campaign.id,
        name=campaign.name,
        subject="Grüße",
        from_name="Café Ñandú",
        from_email="news@münchen.de",
        reply_to="hilfe@münchen.de",
        html_body="<p>Hallo</p>",
        list_ids=services.campaign_list_ids(campaign.id),
    )
    services.start(audience.tenant.account_id, audience.campaign_id)
    drain(app)
    got = smtp_sink.wait_for(1)[0]
    assert got.envelope_from == "news@xn--mnchen-3ya.de" and "SMTPUTF8" not in got.mail_options
    assert got.data.split(b"\r\n\r\n")[0].isascii()
    message = got.message
    assert str(message["Message-ID"]).endswith("@xn--mnchen-3ya.de>")
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.domain) == ("Café Ñandú", "xn--mnchen-3ya.de")
    assert str(message["Reply-To"]) == "hilfe@xn--mnchen-3ya.de"


def test_a_verp_return_path_on_an_idn_domain_is_an_ascii_envelope() -> None:
    from campaigns.render import parse_verp, verp_address

    address = verp_address("bounces@münchen.de", 42, "verp-key")
    assert address.isascii() and address.endswith("@xn--mnchen-3ya.de")
    assert parse_verp(address, "verp-key") == 42
