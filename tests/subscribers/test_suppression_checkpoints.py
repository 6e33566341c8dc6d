"""Suppression and operator blocks are checked at import, at sign-up and at send time."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from campaigns import services as campaign_services
from campaigns.models import Message
from core import db as core_db
from subscribers import services, suppression
from subscribers.models import Suppression
from tests.conftest import drain
from tests.factories import make_campaign
from tests.smtp_sink import SMTPSink
from tests.subscribers.helpers import (
    contact_emails,
    logged_in,
    make_operator,
    report_rows,
    run_import,
    signup_key,
    tenant_with_list,
)


def _suppress_examples(app: Flask, account_id: int) -> None:
    with app.app_context():
        suppression.suppress(account_id, "gone@example.org", "erased")
        suppression.suppress(account_id, "bounced@example.org", "hard_bounce")
        suppression.suppress(None, "trap@example.org", "blocked")
        core_db.session.commit()
        services.block_domain("spam.example", "known spam domain")


def test_checkpoint_import(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    _suppress_examples(app, tenant.account_id)
    client = logged_in(app, tenant)
    import_id = run_import(
        app,
        client,
        list_id,
        "email\nok@example.org\nGONE@example.org\nbounced@example.org\ntrap@example.org\n"
        "x@spam.example\ny@mail.spam.example\n",
    )
    assert contact_emails(app, tenant.account_id) == {"ok@example.org"}
    problems = {(r["email"], r["problem"], r["detail"]) for r in report_rows(client, import_id)}
    assert problems == {
        ("GONE@example.org", "suppressed", "erased"),
        ("bounced@example.org", "suppressed", "hard bounce"),
        ("trap@example.org", "blocked", "blocked"),
        ("x@spam.example", "blocked", "the domain spam.example is blocked"),
        ("y@mail.spam.example", "blocked", "the domain spam.example is blocked"),
    }


def test_checkpoint_sign_up(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, list_id = tenant_with_list(app)
    _suppress_examples(app, tenant.account_id)
    key = signup_key(app, tenant, list_id)
    client = app.test_client()
    for address in ("gone@example.org", "trap@example.org", "someone@spam.example"):
        response = client.post(f"/subscribe/{key}", data={"email": address})
        # The same answer as for anyone: the form reveals nothing about suppression.
        assert "Check your inbox" in response.get_data(as_text=True)
    drain(app)
    assert smtp_sink.messages == []
    assert contact_emails(app, tenant.account_id) == set()


def test_checkpoint_manual_add(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    _suppress_examples(app, tenant.account_id)
    client = logged_in(app, tenant)
    response = client.post(f"/lists/{list_id}", data={"email": "x@spam.example"})
    assert "suppression list" in response.get_data(as_text=True)
    assert contact_emails(app, tenant.account_id) == set()


def test_checkpoint_send_time_domain_block(app: Flask, smtp_sink: SMTPSink) -> None:
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        for address in ("keep@example.org", "late@spam.example", "late-trap@example.org"):
            services.add_contact_to_list(tenant.account_id, list_id, address)
        campaign_id = make_campaign(tenant, list_id)
        campaign_services.start(tenant.account_id, campaign_id)
        # Blocked after the audience was frozen: send time must still catch them.
        services.block_domain("spam.example")
        services.block_address("late-trap@example.org")
    drain(app)
    assert [m.recipients for m in smtp_sink.messages] == [["keep@example.org"]]
    with app.app_context():
        assert sorted(core_db.session.scalars(select(Message.status))) == [
            "sent",
            "skipped",
            "skipped",
        ]


def test_confirmed_opt_in_lifts_only_an_unsubscribe(app: Flask, smtp_sink: SMTPSink) -> None:
    from tests.subscribers.helpers import confirm_link

    tenant, list_id = tenant_with_list(app)
    key = signup_key(app, tenant, list_id)
    with app.app_context():
        suppression.suppress(tenant.account_id, "back@example.org", "unsubscribed")
        core_db.session.commit()
    client = app.test_client()
    client.post(f"/subscribe/{key}", data={"email": "back@example.org"})
    drain(app)
    client.post(confirm_link(smtp_sink, "back@example.org"))
    with app.app_context():
        assert suppression.suppression_reason(tenant.account_id, "back@example.org") is None


def test_operator_blocks_pages(app: Flask) -> None:
    tenant, _list_id = tenant_with_list(app)
    client = logged_in(app, tenant)
    assert client.get("/operator/blocks").status_code == 404  # not an operator
    make_operator(app, tenant)
    page = client.get("/operator/blocks")
    assert page.status_code == 200
    client.post("/operator/blocks", data={"action": "domain", "domain-domain": "@Bad.Example."})
    client.post("/operator/blocks", data={"action": "block", "address-email": "Trap@Example.org"})
    body = client.get("/operator/blocks").get_data(as_text=True)
    assert "bad.example" in body and "1 address blocked" in body
    with app.app_context():
        stored = core_db.session.scalars(select(Suppression.address_hash)).all()
        assert stored and all("example" not in h for h in stored)
        assert suppression.suppression_reason(tenant.account_id, "a@sub.bad.example") == (
            suppression.BLOCKED_DOMAIN
        )
    invalid = client.post("/operator/blocks", data={"action": "domain", "domain-domain": "no"})
    assert "Enter a domain" in invalid.get_data(as_text=True)
    client.post("/operator/blocks", data={"action": "unblock", "address-email": "trap@example.org"})
    with app.app_context():
        assert suppression.suppression_reason(tenant.account_id, "trap@example.org") is None
        domain_id = services.block_domain("bad.example").id
    client.post(f"/operator/blocks/domains/{domain_id}/remove")
    with app.app_context():
        assert suppression.suppression_reason(tenant.account_id, "a@bad.example") is None
