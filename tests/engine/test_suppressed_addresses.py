"""The engine's suppressed addresses by the hash contacts keep (``engine_suppressed_addresses``):
after every kind of change, the set the gate keeps is exactly the addresses of contacts the
engine suppresses (its Python rule, :func:`privacy.engine_gate.engine_suppressed`), an audience
count that reads it equals the count by the sender's Python rules, and a rebuild from the
contacts leaves it as the changes left it. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import time_machine
from flask import Flask
from sqlalchemy import select

from accounts import services as accounts
from campaigns.audience_count import count_audience
from core import db as core_db
from privacy import engine_gate
from privacy import services as privacy_services
from privacy.models import EngineSuppressedAddress
from subscribers.audience import audience_contacts
from subscribers.hashing import address_hash
from subscribers.models import Contact
from tests.conftest import drain
from tests.factories import Tenant, make_list_with_contacts, make_tenant

NOW = datetime(2026, 11, 20, 15, 0)
OURS = [
    "DEAD@Shared.example",  # another account's complaint about it (other letter case there)
    "bounced@ours.example",
    "Zoë@Ünïcode.example",  # non-ASCII: Python decides, on PostgreSQL too
    "fine@ours.example",
    "later@ours.example",
]


def _kept() -> set[str]:
    return set(core_db.session.scalars(select(EngineSuppressedAddress.address_hash)))


def _expected(participating_account: int) -> set[str]:
    """The hash of every contact's address (any account) the engine suppresses now."""
    emails = list(core_db.session.scalars(select(Contact.email)))
    return {
        address_hash(email)
        for email in engine_gate.engine_suppressed(participating_account, emails)
    }


def _python_count(account_id: int, list_id: int) -> tuple[int, int]:
    """The sender's Python rules over the list's audience (nobody here is account-suppressed)."""
    emails = list(
        core_db.session.scalars(audience_contacts(account_id, [list_id], [], Contact.email))
    )
    skipped = engine_gate.engine_suppressed(account_id, emails)
    return len(emails) - len(skipped), len(skipped)


def _check(ours: Tenant, list_id: int) -> set[str]:
    kept = _kept()
    assert kept == _expected(ours.account_id)
    count = count_audience(ours.account_id, [list_id])
    assert (count.recipients, count.suppressed) == _python_count(ours.account_id, list_id)
    engine_gate.rebuild_verdicts()
    assert _kept() == kept
    core_db.session.commit()
    return kept


def test_the_kept_set_follows_every_change_of_the_engine(app: Flask, db: Any) -> None:
    with app.app_context(), time_machine.travel(NOW, tick=False):
        ours = make_tenant("owner@ours.example", "Ours")
        other = make_tenant("owner@other.example", "Other")
        list_id = make_list_with_contacts(ours, OURS)
        make_list_with_contacts(other, ["dead@shared.example", "kept@other.example"])
        assert _check(ours, list_id) == set()

        # Another account's complaint: our contact with that address is suppressed too.
        assert engine_gate.record_delivery_outcome(
            other.account_id, None, "dead@shared.example", "complained", NOW
        )
        core_db.session.commit()
        assert _check(ours, list_id) == {address_hash("dead@shared.example")}

        # Our hard bounce, then a delivery the next day lifts it (through the batch path).
        assert engine_gate.record_delivery_outcome(
            ours.account_id, None, "bounced@ours.example", "bounced", NOW
        )
        assert engine_gate.record_delivery_outcome(
            ours.account_id, None, "Zoë@Ünïcode.example", "complained", NOW
        )
        core_db.session.commit()
        assert address_hash("bounced@ours.example") in _check(ours, list_id)
        assert address_hash("Zoë@Ünïcode.example") in _kept()
        bounced = core_db.session.scalar(
            select(Contact.id).where(Contact.email == "bounced@ours.example")
        )
        with time_machine.travel(NOW + timedelta(days=1), tick=False):
            _deliver(ours, "bounced@ours.example", bounced)
        assert address_hash("bounced@ours.example") not in _check(ours, list_id)

        # The other account leaves the engine: its complaint goes, in the leaving job.
        accounts.set_engine_participation(other.account_id, False)
        core_db.session.commit()
        assert address_hash("dead@shared.example") in _kept()  # until the job has run
        drain(app)
        assert address_hash("dead@shared.example") not in _check(ours, list_id)

        # A restriction at our account removes what we contributed about Zoë.
        zoe = core_db.session.scalar(select(Contact.id).where(Contact.email.like("Zo%")))
        assert zoe is not None
        privacy_services.restrict_contact(ours.account_id, zoe, ours.user_id)
        assert _check(ours, list_id) == set()

        # A new bounce (after the campaign's deliveries), then the engine's retention window
        # passes it by.
        assert engine_gate.record_delivery_outcome(
            ours.account_id, None, "later@ours.example", "bounced", NOW + timedelta(days=3)
        )
        core_db.session.commit()
        assert _check(ours, list_id) == {address_hash("later@ours.example")}
        with time_machine.travel(NOW + timedelta(days=800), tick=False):
            engine_gate.run_maintenance(NOW + timedelta(days=800))
            assert _check(ours, list_id) == set()


def test_an_erasure_takes_the_address_out(app: Flask, db: Any) -> None:
    with app.app_context(), time_machine.travel(NOW, tick=False):
        ours = make_tenant("owner@ours.example", "Ours")
        list_id = make_list_with_contacts(ours, OURS)
        assert engine_gate.record_delivery_outcome(
            ours.account_id, None, "fine@ours.example", "complained", NOW
        )
        core_db.session.commit()
        assert _check(ours, list_id) == {address_hash("fine@ours.example")}
        assert count_audience(ours.account_id, [list_id]).suppressed == 1
        contact = core_db.session.scalar(
            select(Contact.id).where(Contact.email == "fine@ours.example")
        )
        assert contact is not None
        privacy_services.erase_contact(ours.account_id, contact, ours.user_id)
        assert _kept() == set()


def _deliver(tenant: Tenant, email: str, contact_id: int | None) -> None:
    """A send claim's delivery of a message to ``email``, through the batch path."""
    from tests.engine.sending import message_for

    message_id = message_for(tenant, email)
    assert engine_gate.record_deliveries(tenant.account_id, [message_id], datetime.now()) == 1
    core_db.session.commit()
    assert contact_id is not None
