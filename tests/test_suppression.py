"""Suppressed addresses are held as keyed hashes and are skipped at send time."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from campaigns import services as campaign_services
from campaigns.models import Message
from core import db as core_db
from subscribers import suppression
from subscribers.models import Suppression
from tests.conftest import drain
from tests.factories import make_campaign, make_list_with_contacts, make_tenant
from tests.smtp_sink import SMTPSink


def test_suppressed_address_is_skipped_and_stored_only_as_hash(
    app: Flask, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        tenant = make_tenant()
        list_id = make_list_with_contacts(tenant, ["keep@example.org", "Stop@Example.org"])
        campaign_id = make_campaign(tenant, list_id)
        campaign_services.start(tenant.account_id, campaign_id)
        suppression.suppress(tenant.account_id, "stop@example.org", "complaint")
        core_db.session.commit()
        stored = core_db.session.scalars(select(Suppression.address_hash)).all()
        assert all("example" not in h for h in stored) and len(stored[0]) == 64
        assert suppression.suppression_reason(tenant.account_id, "STOP@example.org") == "complaint"
        assert suppression.suppression_reason(tenant.account_id + 1, "stop@example.org") is None
    drain(app)
    assert [m.recipients for m in smtp_sink.messages] == [["keep@example.org"]]
    with app.app_context():
        statuses = sorted(core_db.session.scalars(select(Message.status)).all())
        assert statuses == ["sent", "skipped"]


def test_platform_wide_suppression_applies_to_every_account(app: Flask) -> None:
    with app.app_context():
        a = make_tenant("a@a.example")
        b = make_tenant("b@b.example")
        suppression.suppress(None, "spamtrap@example.org", "blocked")
        core_db.session.commit()
        assert suppression.suppression_reason(a.account_id, "spamtrap@example.org") == "blocked"
        assert suppression.suppression_reason(b.account_id, "spamtrap@example.org") == "blocked"
