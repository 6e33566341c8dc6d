"""Before "Send now": the exact recipient count, shown on the campaign page and on a
confirmation step whose POST carries it; the count equals the messages the SMTP sink receives."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, literal, select

from campaigns import services
from campaigns.audience_count import changed_materially, count_audience
from campaigns.models import Campaign, Message
from core import db as core_db
from core.sqlhash import hmac_sha256_hex
from engine.services import engine_hash, engine_hash_sql
from privacy import engine_gate
from privacy import services as privacy
from subscribers import services as subscribers
from subscribers.models import Contact
from subscribers.suppression import (
    BLOCKED_DOMAIN,
    suppress,
    suppressed_emails,
    suppressed_hash_condition,
)
from tests.conftest import drain
from tests.factories import (
    Tenant,
    login,
    make_engine_suppressed,
    make_tenant,
)
from tests.smtp_sink import SMTPSink

#: Who must get the campaign: each once, whatever lists they are on.
EXPECTED = [
    "zoe.nunez@example.org",
    "li.xiaolong@example.cn",
    "ADA.Lovelace@example.org",
    "olga@example.ru",
    "josé@correo.example",
    "bob@example.org",
]


def _count_on_page(page: str, pattern: str) -> int:
    found = re.search(pattern, page)
    assert found, page
    return int(found.group(1).replace(",", ""))


def _audience(app: Flask) -> tuple[Tenant, int]:
    """A campaign to two overlapping lists holding duplicates, suppressed addresses (by the
    account, a blocked domain, the engine; ASCII and not), an unsubscribed and a restricted
    contact. Returns the tenant and the campaign id."""
    with app.app_context():
        tenant = make_tenant()
        other = make_tenant("owner@other.example", "Other")
        first = subscribers.create_list(tenant.account_id, "Nouvelles").id
        second = subscribers.create_list(tenant.account_id, "Второй список").id
        names = {
            "zoe.nunez@example.org": "Zoë Ñúñez",
            "li.xiaolong@example.cn": "李小龍",
            "olga@example.ru": "Ольга",
        }
        for address in [
            *EXPECTED[:5],
            "suppressed@example.org",
            "ñandú@correo.example",
            "someone@mail.blocked.example",
            "dead@engine.example",
            "restricted@example.org",
            "leaver@example.org",
        ]:
            subscribers.add_contact_to_list(
                tenant.account_id, first, address, name=names.get(address, "")
            )
        for address in ["zoe.nunez@example.org", "ADA.Lovelace@example.org", "bob@example.org"]:
            subscribers.add_contact_to_list(tenant.account_id, second, address)
        suppress(tenant.account_id, "suppressed@example.org", "manual")
        suppress(None, "ñandú@correo.example", "erased")
        core_db.session.commit()
        subscribers.block_domain("blocked.example")
        make_engine_suppressed(other, "dead@engine.example")
        by_email = dict(core_db.session.execute(select(Contact.email, Contact.id)).all())
        privacy.restrict_contact(tenant.account_id, by_email["restricted@example.org"], 1)
        subscribers.unsubscribe_contact(
            tenant.account_id, by_email["leaver@example.org"], first, "manual"
        )
        campaign = services.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Rentrée",
            subject="Bonjour {{ contact.first_name }}",
            from_name="Shop",
            from_email="news@shop.example",
            html_body="<html><body><p>Salut</p></body></html>",
            list_ids=[first, second],
        )
        return tenant, campaign.id


def test_the_count_shown_is_the_number_of_messages_received(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id = _audience(app)
    login(client, tenant.email)

    detail = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    on_detail = _count_on_page(detail, r"Will be sent to ([\d,]+) recipients")
    assert "4 more on the lists are suppressed" in detail
    # "Send now" is a link to the confirmation, not a form that sends.
    assert f'href="/campaigns/{campaign_id}/send" id="send-now"' in detail

    confirm = client.get(f"/campaigns/{campaign_id}/send")
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    shown = _count_on_page(page, r"Send now to ([\d,]+) recipients")
    assert shown == on_detail == len(EXPECTED)
    assert 'name="expected" type="hidden" value="6"' in page
    with app.app_context():  # looking changed nothing
        assert core_db.session.scalar(select(func.count()).select_from(Message)) == 0

    response = client.post(f"/campaigns/{campaign_id}/send", data={"expected": shown})
    assert response.status_code == 302
    assert "Sending started to 6 recipients (4 suppressed addresses are skipped)." in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    drain(app)
    received = smtp_sink.wait_for(shown)
    assert len(smtp_sink.messages) == shown
    assert sorted(r.recipients[0] for r in received) == sorted(EXPECTED)

    # Confirming again (a second tab, a resubmitted form) sends nothing more.
    again = client.post(f"/campaigns/{campaign_id}/send", data={"expected": shown})
    assert again.headers["Location"].endswith(f"/campaigns/{campaign_id}")
    assert client.get(f"/campaigns/{campaign_id}/send").status_code == 302
    drain(app)
    assert len(smtp_sink.messages) == shown


def test_a_changed_audience_is_shown_again_and_nothing_is_sent(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    tenant, campaign_id = _audience(app)
    login(client, tenant.email)
    with app.app_context():
        list_id = services.campaign_list_ids(campaign_id)[0]
        subscribers.add_contact_to_list(tenant.account_id, list_id, "late@example.org")

    response = client.post(f"/campaigns/{campaign_id}/send", data={"expected": 6})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "The audience changed since you confirmed" in page
    assert "it is now <strong>7</strong>" in page and "not 6" in page
    assert "Send now to 7 recipients" in page
    with app.app_context():
        assert core_db.session.scalar(select(Campaign.status)) == "draft"
        assert core_db.session.scalar(select(func.count()).select_from(Message)) == 0

    # A POST that carries no count sends nothing either.
    response = client.post(f"/campaigns/{campaign_id}/send")
    assert response.headers["Location"].endswith(f"/campaigns/{campaign_id}/send")
    drain(app)
    assert smtp_sink.messages == []

    response = client.post(f"/campaigns/{campaign_id}/send", data={"expected": 7})
    assert response.status_code == 302
    drain(app)
    assert len(smtp_sink.wait_for(7)) == 7


def test_the_confirmation_says_what_blocks_sending_and_offers_no_button(
    app: Flask, client: Any
) -> None:
    with app.app_context():
        tenant = make_tenant(postal="")
        empty_list = subscribers.create_list(tenant.account_id, "Empty").id
        campaign = services.save_campaign(
            tenant.account_id,
            campaign_id=None,
            name="Nobody",
            subject="Hi",
            from_name="Shop",
            from_email="news@shop.example",
            html_body="<p>x</p>",
            list_ids=[empty_list],
        )
    login(client, tenant.email)
    page = client.get(f"/campaigns/{campaign.id}/send").get_data(as_text=True)
    assert "0 recipients" in page
    assert "add your postal address in Settings" in page
    assert 'id="confirm-send-button"' not in page


def test_materially_changed_is_more_than_one_percent() -> None:
    assert not changed_materially(1000, 1010)
    assert changed_materially(1000, 1011)
    assert changed_materially(1000, 989)
    assert changed_materially(6, 7)
    assert changed_materially(0, 1)
    assert not changed_materially(0, 0)


# --- the rules in SQL equal the sender's Python rules (PostgreSQL computes the hashes) -------

HOSTILE = [
    "ADA.Lovelace@Example.org",
    "o'brien+tag@example.org",
    "under_score%percent@example.org",
    "ÑANDÚ@correo.example",
    "x@sub.blocked.example",
    "x@notblocked.example",
    "x@blocked.example",
    "dead@engine.example",
]


@pytest.fixture
def postgres_only(db_backend: str) -> None:
    if db_backend != "postgresql":
        pytest.skip("the SQL form of the rules runs on PostgreSQL")


def test_sql_hmac_equals_python_hmac(postgres_only: None, app: Flask) -> None:
    with app.app_context():
        for key in (b"k", b"test-address-hash-key", bytes(range(200))):
            for message in (b"", b"ada@example.org", "Zoë@例え.jp".encode(), b"\x00" * 100):
                expected = hmac.new(key, message, hashlib.sha256).hexdigest()
                assert core_db.session.scalar(select(hmac_sha256_hex(key, literal(message)))) == (
                    expected
                )


def test_sql_suppression_rules_equal_the_python_rules(postgres_only: None, app: Flask) -> None:
    with app.app_context():
        tenant, other = make_tenant(), make_tenant("owner@other.example", "Other")
        list_id = subscribers.create_list(tenant.account_id, "All").id
        for address in HOSTILE:
            subscribers.add_contact_to_list(tenant.account_id, list_id, address)
        suppress(tenant.account_id, "ada.lovelace@example.org", "manual")  # other case
        suppress(None, "o'brien+tag@example.org", "erased")
        suppress(tenant.account_id, "ñandú@correo.example", "manual")  # checked in Python
        suppress(other.account_id, "under_score%percent@example.org", "manual")  # not ours
        core_db.session.commit()
        subscribers.block_domain("blocked.example")
        make_engine_suppressed(other, "dead@engine.example")
        ours = Contact.account_id == tenant.account_id
        stored = list(core_db.session.scalars(select(Contact.email).where(ours)))
        by_rule = suppressed_emails(tenant.account_id, stored)
        in_python = set(by_rule) | engine_gate.engine_suppressed(tenant.account_id, stored)
        by_hash = {e for e, why in by_rule.items() if why != BLOCKED_DOMAIN}
        by_hash |= engine_gate.engine_suppressed(tenant.account_id, stored)
        ascii_only = func.octet_length(Contact.email) == func.length(Contact.email)
        in_sql = set(
            core_db.session.scalars(
                select(Contact.email).where(
                    ours,
                    ascii_only,
                    suppressed_hash_condition(tenant.account_id, Contact.email)
                    | engine_gate.engine_suppressed_condition(tenant.account_id, Contact.email),
                )
            )
        )
        assert in_sql == {email for email in by_hash if email.isascii()}
        assert "ÑANDÚ@correo.example" in in_python
        assert {"x@sub.blocked.example", "x@blocked.example"} <= in_python - in_sql
        assert {"ADA.Lovelace@example.org", "dead@engine.example"} <= in_sql
        assert "under_score%percent@example.org" not in in_sql
        hashes = dict(
            core_db.session.execute(
                select(Contact.email, engine_hash_sql(Contact.email)).where(ours, ascii_only)
            ).all()
        )
        assert hashes == {email: engine_hash(email) for email in stored if email.isascii()}
        count = count_audience(tenant.account_id, [list_id])
        assert (count.recipients, count.suppressed) == (len(stored) - len(in_python), 6)
        assert len(in_python) == 6


def test_a_large_accounts_campaign_page_fetches_its_count_after(
    app: Flask, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above COUNT_AFTER_PAGE_CONTACTS the campaign page holds a placeholder that names where
    the count and checks are; that part has them, and is empty once the campaign has started."""
    from campaigns import audience_count

    tenant, campaign_id = _audience(app)
    login(client, tenant.email)
    inline = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Will be sent to 6 recipients" in inline and 'id="before-sending"' not in inline

    monkeypatch.setattr(audience_count, "COUNT_AFTER_PAGE_CONTACTS", 1)
    later = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Will be sent to" not in later and 'id="checks"' not in later
    url = f"/campaigns/{campaign_id}/before-sending"
    assert f'data-url="{url}"' in later
    part = client.get(url)
    assert part.status_code == 200
    text = part.get_data(as_text=True)
    assert "Will be sent to 6 recipients" in text and 'id="checks"' in text
    assert "<html" not in text  # a part of the page, not a page

    with app.app_context():
        services.start(tenant.account_id, campaign_id)
    assert client.get(url).get_data(as_text=True).strip() == ""
    with app.app_context():
        third = make_tenant("owner@third.example", "Third")
    stranger = app.test_client()
    login(stranger, third.email)
    assert stranger.get(url).status_code == 404
