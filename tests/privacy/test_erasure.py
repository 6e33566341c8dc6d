"""Erasure across two accounts: nothing of the address is left in clear text, anywhere in the
database, and importing it again is refused."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from campaigns.models import Message
from core import db as core_db
from core.errors import ValidationError
from privacy.models import AuditEntry
from subscribers import services as subscribers
from subscribers.models import Contact
from tests.factories import make_tenant
from tests.privacy.helpers import link_in, send_and_track, submit
from tests.smtp_sink import SMTPSink
from tracking.models import TrackingEvent

ADDRESS = "erin.erased@example.org"


def _dump_database(app: Flask) -> str:
    """The whole database as text: SQLite iterdump, or pg_dump of the test database."""
    engine = app.extensions["db_engine"]
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            return "\n".join(raw.driver_connection.iterdump())  # type: ignore[union-attr]
        finally:
            raw.close()
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        ["/usr/bin/pg_dump", "--no-owner", "--data-only", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def test_erasure_across_two_accounts_leaves_no_clear_text(
    app: Flask, client: Any, smtp_sink: SMTPSink
) -> None:
    with app.app_context():
        shop = make_tenant("owner@shop.example", "Shop")
        club = make_tenant("owner@club.example", "Club")
    send_and_track(app, smtp_sink, shop, [ADDRESS, "keep@example.org"])
    send_and_track(app, smtp_sink, club, [ADDRESS])
    with app.app_context():
        assert (
            core_db.session.scalar(
                select(func.count())
                .select_from(TrackingEvent)
                .where(TrackingEvent.message_id.is_not(None))
            )
            >= 2
        )
    assert ADDRESS in _dump_database(app)

    # An earlier request, never confirmed, holds the address and a proposed name meanwhile.
    app.config["DATA_REQUEST_EMAIL_WINDOW"] = 0
    submit(client, ADDRESS, "rectify", new_name="Erin Secretname")
    # Typed with other capitals: every account's contact is still found.
    assert submit(client, " Erin.Erased@EXAMPLE.org", "erase").status_code == 200
    confirm_path = link_in(smtp_sink, "Erin.Erased@example.org", "/privacy/confirm/")
    assert client.get(confirm_path).status_code == 200
    with app.app_context():  # nothing happens before the confirmation
        assert core_db.session.scalar(select(func.count()).select_from(Contact)) == 3
    smtp_sink.clear()
    done = client.post(confirm_path)
    assert done.status_code == 200
    assert "erased everywhere" in done.get_data(as_text=True)

    # GDPR art. 19: each account's owners are told.
    assert smtp_sink.to("owner@shop.example") and smtp_sink.to("owner@club.example")

    with app.app_context():
        emails = set(core_db.session.scalars(select(Contact.email)))
        assert emails == {"keep@example.org"}
        messages = list(core_db.session.scalars(select(Message)))
        assert len(messages) == 3  # the campaigns' counts stay
        assert sum(1 for m in messages if m.contact_id is None) == 2
        # Every identified event of the erased person lost its link to a message.
        linked = core_db.session.scalars(
            select(TrackingEvent.message_id).where(TrackingEvent.message_id.is_not(None))
        ).all()
        kept_ids = {m.id for m in messages if m.contact_id is not None}
        assert set(linked) <= kept_ids
        # The anonymised events still count for the campaigns.
        anonymised = core_db.session.scalars(
            select(TrackingEvent).where(TrackingEvent.message_id.is_(None))
        ).all()
        assert len(anonymised) >= 2
        audit = list(core_db.session.scalars(select(AuditEntry)))
        assert {"received", "confirmed", "fulfilled"} <= {e.event for e in audit}

    dump = _dump_database(app)
    assert "keep@example.org" in dump  # the dump does contain the data it should
    assert ADDRESS not in dump.lower()
    assert "erin" not in dump.lower()  # nor the pending request's proposed name

    with app.app_context():
        for tenant in (shop, club):
            new_list = subscribers.create_list(tenant.account_id, "Again")
            with pytest.raises(ValidationError, match="suppression list"):
                subscribers.add_contact_to_list(tenant.account_id, new_list.id, ADDRESS)
        fresh = make_tenant("owner@new.example", "Newcomer")
        new_list = subscribers.create_list(fresh.account_id, "Imported")
        with pytest.raises(ValidationError, match="suppression list"):
            subscribers.add_contact_to_list(
                fresh.account_id, new_list.id, " Erin.Erased@Example.org "
            )
