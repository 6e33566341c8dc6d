"""Data-subject rights reach the Delivery Optimization Engine through the gate."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select

from accounts import services as account_services
from privacy import engine_gate
from privacy import services as privacy_services
from subscribers.models import Contact
from tests.factories import make_list_with_contacts, make_tenant

AT = datetime(2026, 11, 20, 9, 0)


def _contact_id(db: Any, account_id: int, email: str) -> int:
    return int(
        db.scalar(
            select(Contact.id).where(Contact.account_id == account_id, Contact.email == email)
        )
    )


def _feed(db: Any, account_id: int, email: str) -> None:
    assert engine_gate.record_delivery_outcome(account_id, None, email, "delivered", AT)
    assert engine_gate.record_delivery_outcome(account_id, None, email, "bounced", AT)
    db.commit()


def test_restriction_removes_the_accounts_engine_contributions(app: Flask, db: Any) -> None:
    tenant = make_tenant()
    make_list_with_contacts(tenant, ["rae@mail.example"])
    _feed(db, tenant.account_id, "rae@mail.example")
    assert engine_gate.contribution_count(tenant.account_id) > 0
    contact_id = _contact_id(db, tenant.account_id, "rae@mail.example")
    privacy_services.restrict_contact(tenant.account_id, contact_id, tenant.user_id)
    assert engine_gate.contribution_count(tenant.account_id) == 0
    assert not engine_gate.record_delivery_outcome(
        tenant.account_id, None, "rae@mail.example", "delivered", AT
    )


def test_access_report_shows_what_the_engine_holds_and_erasure_removes_it(
    app: Flask, db: Any
) -> None:
    tenant = make_tenant()
    make_list_with_contacts(tenant, ["eve@mail.example"])
    _feed(db, tenant.account_id, "eve@mail.example")
    contact_id = _contact_id(db, tenant.account_id, "eve@mail.example")
    report = json.dumps(privacy_services.contact_report(tenant.account_id, contact_id), default=str)
    assert "Delivery Optimization Engine" in report
    assert '"bounced": 1' in report
    privacy_services.erase_contact(tenant.account_id, contact_id, tenant.user_id)
    assert engine_gate.contribution_count(tenant.account_id) == 0


def test_account_deletion_forgets_its_contributions(app: Flask, db: Any) -> None:
    tenant = make_tenant()
    other = make_tenant("owner@other.example")
    make_list_with_contacts(tenant, ["del@mail.example"])
    make_list_with_contacts(other, ["keep@mail.example"])
    _feed(db, tenant.account_id, "del@mail.example")
    _feed(db, other.account_id, "keep@mail.example")
    assert account_services.delete_account_permanently(tenant.account_id, "test")
    assert engine_gate.contribution_count(tenant.account_id) == 0
    assert engine_gate.contribution_count(other.account_id) > 0
