"""The gate: who may enter the engine, and what it serves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from accounts import services as accounts
from core import db
from core.errors import ValidationError
from privacy import engine_gate, policy
from subscribers.models import Contact
from subscribers.suppression import suppress
from tests.engine.scan import rows_derived_from
from tests.engine.sending import message_for
from tests.factories import Tenant, make_list_with_contacts, make_tenant

NOW = datetime(2026, 11, 20, 15, 0)
PEOPLE = ["ann@mail.example", "bob@mail.example", "cleo@mail.example"]


def _tenant(email: str = "owner@shop.example", tracking: bool = True) -> Tenant:
    tenant = make_tenant(email, email.split("@")[1])
    make_list_with_contacts(tenant, PEOPLE)
    accounts.update_privacy_settings(tenant.account_id, tracking, "truncate", 180)
    return tenant


def _contact(tenant: Tenant, email: str) -> Contact:
    found = db.session.scalar(
        select(Contact).where(Contact.account_id == tenant.account_id, Contact.email == email)
    )
    assert found is not None
    return found


def _open(tenant: Tenant, email: str, hour: int, machine: bool = False) -> bool:
    recorded = engine_gate.record_engagement(
        tenant.account_id, message_for(tenant, email), "open", NOW.replace(hour=hour), machine
    )
    db.session.commit()
    return recorded


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.mark.parametrize("state", ["objected_at", "restricted_at"])
def test_objection_and_restriction_keep_an_address_out(
    app: Flask, db: Any, frozen: Any, state: str
) -> None:
    tenant = _tenant()
    message_id = message_for(tenant, "ann@mail.example")  # sent while still allowed
    engine_gate.forget_address("ann@mail.example")
    db.commit()
    contact = _contact(tenant, "ann@mail.example")
    setattr(contact, state, NOW)
    db.commit()

    assert not policy.may_process(contact)
    for outcome in ("delivered", "deferred", "bounced", "complained"):
        assert not engine_gate.record_delivery_outcome(
            tenant.account_id, contact.id, contact.email, outcome, NOW
        )
        assert not engine_gate.record_delivery_outcome(
            tenant.account_id, None, contact.email, outcome, NOW
        )
    assert not engine_gate.record_engagement(tenant.account_id, message_id, "open", NOW, False)
    db.commit()
    assert rows_derived_from(-1, ["ann@mail.example"]) == []
    # The others still enter.
    assert engine_gate.record_delivery_outcome(
        tenant.account_id, None, "bob@mail.example", "delivered", NOW
    )


def test_withdrawing_a_contact_removes_what_its_account_contributed(
    app: Flask, db: Any, frozen: Any
) -> None:
    a, b = _tenant("owner@a.example"), _tenant("owner@b.example")
    for tenant in (a, b):
        engine_gate.record_delivery_outcome(
            tenant.account_id, None, "ann@mail.example", "complained", NOW
        )
    db.commit()
    _contact(a, "ann@mail.example").objected_at = NOW
    engine_gate.withdraw_contact(a.account_id, "ann@mail.example")
    db.commit()
    assert rows_derived_from(a.account_id, []) == []
    # B's own contribution about the same person stays (she objected at A only).
    assert engine_gate.engine_suppressed(b.account_id, ["ann@mail.example"]) == {"ann@mail.example"}


def test_erasure_removes_the_address_everywhere_and_keeps_it_out(
    app: Flask, db: Any, frozen: Any
) -> None:
    a, b = _tenant("owner@a.example"), _tenant("owner@b.example")
    message_id = message_for(a, "ann@mail.example")
    _open(a, "ann@mail.example", 9)
    engine_gate.record_delivery_outcome(b.account_id, None, "ann@mail.example", "bounced", NOW)
    db.commit()
    assert rows_derived_from(-1, ["ann@mail.example"])

    # Erasure as the privacy layer does it: the contact goes, a keyed-hash suppression stays,
    # and the engine forgets the address.
    for tenant in (a, b):
        db.delete(_contact(tenant, "ann@mail.example"))
    suppress(None, "ann@mail.example", "erased")
    engine_gate.forget_address("ann@mail.example")
    db.commit()
    assert rows_derived_from(-1, ["ann@mail.example"]) == []

    # Late outcomes and hits for the erased address find no contact and stay out.
    assert not engine_gate.record_delivery_outcome(
        a.account_id, None, "ann@mail.example", "delivered", NOW
    )
    assert not engine_gate.record_engagement(a.account_id, message_id, "open", NOW, False)
    # The erased address cannot be added again, and the engine refuses it all the same.
    with pytest.raises(ValidationError):
        make_list_with_contacts(a, ["ann@mail.example"], name="Again")
    db.rollback()
    assert not engine_gate.record_delivery_outcome(
        a.account_id, None, "ann@mail.example", "delivered", NOW
    )
    db.commit()
    assert rows_derived_from(-1, ["ann@mail.example"]) == []


def test_a_contact_of_another_account_or_unknown_address_stays_out(
    app: Flask, db: Any, frozen: Any
) -> None:
    a, b = _tenant("owner@a.example"), _tenant("owner@b.example")
    b_contact = _contact(b, "ann@mail.example")
    assert not engine_gate.record_delivery_outcome(
        a.account_id, b_contact.id, b_contact.email, "delivered", NOW
    )
    assert not engine_gate.record_delivery_outcome(
        a.account_id, None, "stranger@mail.example", "delivered", NOW
    )
    b_message = message_for(b, "ann@mail.example")
    assert not engine_gate.record_engagement(a.account_id, b_message, "open", NOW, False)
    with pytest.raises(ValueError):
        engine_gate.record_delivery_outcome(a.account_id, None, PEOPLE[0], "opened", NOW)


def test_engagement_needs_a_human_an_identified_message_and_individual_tracking(
    app: Flask, db: Any, frozen: Any
) -> None:
    tenant = _tenant()
    assert not _open(tenant, "ann@mail.example", 9, machine=True)  # a proxy or scanner
    assert not engine_gate.record_engagement(tenant.account_id, None, "open", NOW, False)
    message_id = message_for(tenant, "ann@mail.example")
    assert not engine_gate.record_engagement(
        tenant.account_id, message_id, "unsubscribe", NOW, False
    )
    accounts.update_privacy_settings(tenant.account_id, False, "truncate", 180)
    assert not engine_gate.record_engagement(tenant.account_id, message_id, "open", NOW, False)
    accounts.update_privacy_settings(tenant.account_id, True, "truncate", 180)
    assert engine_gate.record_engagement(tenant.account_id, message_id, "click", NOW, False)


def test_suppression_of_hard_bounces_and_complaints_across_accounts(
    app: Flask, db: Any, frozen: Any
) -> None:
    a, b = _tenant("owner@a.example"), _tenant("owner@b.example")
    engine_gate.record_delivery_outcome(a.account_id, None, "ann@mail.example", "bounced", NOW)
    engine_gate.record_delivery_outcome(a.account_id, None, "bob@mail.example", "complained", NOW)
    engine_gate.record_delivery_outcome(a.account_id, None, "cleo@mail.example", "deferred", NOW)
    db.commit()
    # B never mailed them, yet the engine protects its sends.
    assert engine_gate.engine_suppressed(b.account_id, PEOPLE) == {
        "ann@mail.example",
        "bob@mail.example",
    }
    assert engine_gate.engine_suppressed(b.account_id, ["ANN@mail.example "]) == {
        "ANN@mail.example "
    }
    # A later delivery revives a bounced address; a complaint stays.
    frozen.move_to(NOW + timedelta(days=2))
    for email in ("ann@mail.example", "bob@mail.example"):
        engine_gate.record_delivery_outcome(
            b.account_id, None, email, "delivered", NOW + timedelta(days=2)
        )
    db.commit()
    assert engine_gate.engine_suppressed(b.account_id, PEOPLE) == {"bob@mail.example"}


def test_best_send_hour_within_a_window(app: Flask, db: Any, frozen: Any) -> None:
    tenant = _tenant()
    account = tenant.account_id
    assert engine_gate.best_send_hour(account, "ann@mail.example", (8, 22)) is None  # unknown
    _open(tenant, "ann@mail.example", 19)
    assert engine_gate.best_send_hour(account, "ann@mail.example", (8, 22)) is None  # too little
    _open(tenant, "ann@mail.example", 19)
    _open(tenant, "ann@mail.example", 20)
    _open(tenant, "ann@mail.example", 7, machine=True)  # never counted
    assert engine_gate.best_send_hour(account, "ann@mail.example", (8, 22)) == 19
    assert engine_gate.best_send_hour(account, "ann@mail.example", (9, 17)) == 16  # nearest
    assert engine_gate.best_send_hour(account, "ann@mail.example", (22, 6)) == 22  # wraps
    assert engine_gate.best_send_hour(account, "ann@mail.example", (0, 0)) == 19  # all day
    _open(tenant, "bob@mail.example", 6)
    _open(tenant, "bob@mail.example", 7)
    assert engine_gate.best_send_hours(account, PEOPLE, (0, 24)) == {
        "ann@mail.example": 19,
        "bob@mail.example": 6,
    }
    with pytest.raises(ValueError):
        engine_gate.best_send_hour(account, "ann@mail.example", (8, 25))


def test_domains_that_defer_are_slowed(app: Flask, db: Any, frozen: Any) -> None:
    tenant = _tenant()
    account = tenant.account_id

    def attempts(delivered: int, deferred: int) -> None:
        for outcome, count in (("delivered", delivered), ("deferred", deferred)):
            for _ in range(count):
                engine_gate.record_delivery_outcome(account, None, PEOPLE[0], outcome, NOW)
        db.commit()

    attempts(10, 5)
    assert engine_gate.domain_pace(account, "mail.example") is None  # too few attempts yet
    attempts(80, 5)  # 10 of 100 deferred: twice the 5 % threshold, half the 300 per minute
    assert engine_gate.domain_pace(account, "mail.example") == 150
    attempts(0, 25)  # 35 of 125 (28 %): 300 * 5 / 28 per minute
    assert engine_gate.domain_pace(account, "MAIL.example") == 53
    assert engine_gate.domain_pace(account, "other.example") is None
    # A week later the deferrals have aged out of the window.
    frozen.move_to(NOW + timedelta(days=8))
    assert engine_gate.domain_pace(account, "mail.example") is None
