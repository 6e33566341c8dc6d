"""Statuses are enums the database checks, and an unsubscribed subscription has its time."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from campaigns.models import Campaign, CampaignStatus, Message, MessageStatus
from privacy.models import DataRequestStatus
from subscribers.models import ImportStatus, Subscription, SubscriptionStatus
from tests.factories import make_campaign, make_list_with_contacts, make_tenant


def _refused(db: Any, statement: str, **params: Any) -> str:
    """The database refuses the raw statement; returns the error text."""
    with pytest.raises(IntegrityError) as refused:
        db.execute(text(statement), params)
        db.flush()
    db.rollback()
    return str(refused.value)


def test_rows_read_back_as_enum_members(db: Any) -> None:
    tenant = make_tenant()
    list_id = make_list_with_contacts(tenant, ["ana@example.org"])
    campaign = db.get(Campaign, make_campaign(tenant, list_id))
    assert campaign.status is CampaignStatus.DRAFT
    subscription = db.scalars(select(Subscription)).one()
    assert subscription.status is SubscriptionStatus.SUBSCRIBED
    # They stay strings: templates, JSON and comparisons with text see the value.
    assert campaign.status == "draft" and f"{campaign.status}" == "draft"


def test_the_database_refuses_an_unknown_status(db: Any) -> None:
    tenant = make_tenant()
    list_id = make_list_with_contacts(tenant, ["ana@example.org"])
    campaign_id = make_campaign(tenant, list_id)
    db.commit()
    error = _refused(db, "UPDATE campaigns SET status = 'done' WHERE id = :id", id=campaign_id)
    assert "ck_campaigns_status" in error
    error = _refused(db, "UPDATE subscriptions SET status = 'gone'")
    assert "ck_subscriptions_status" in error


def test_an_unsubscribed_subscription_needs_its_time(db: Any) -> None:
    tenant = make_tenant()
    make_list_with_contacts(tenant, ["ana@example.org"])
    db.commit()
    error = _refused(db, "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = NULL")
    assert "ck_subscriptions_unsubscribed_has_time" in error
    db.execute(
        text("UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = :now"),
        {"now": "2026-12-02 10:00:00"},
    )
    db.commit()


def test_the_orm_refuses_a_value_outside_the_enum_before_the_database(db: Any) -> None:
    tenant = make_tenant()
    list_id = make_list_with_contacts(tenant, ["ana@example.org"])
    campaign = db.get(Campaign, make_campaign(tenant, list_id))
    campaign.status = "finished"  # type: ignore[assignment]
    with pytest.raises(StatementError) as refused:
        db.flush()
    assert isinstance(refused.value.orig, LookupError)
    db.rollback()


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (
            CampaignStatus,
            {"draft", "scheduled", "starting", "sending", "paused", "sent", "cancelled"},
        ),
        (MessageStatus, {"pending", "claimed", "sent", "failed", "skipped"}),
        (SubscriptionStatus, {"unconfirmed", "subscribed", "unsubscribed"}),
        (ImportStatus, {"uploaded", "queued", "running", "done", "failed"}),
        (DataRequestStatus, {"received", "confirmed", "fulfilled", "expired"}),
    ],
)
def test_the_migration_checks_the_values_the_models_declare(enum: Any, values: set[str]) -> None:
    """The migration writes its lists out (migrations must not import models that change);
    this keeps the two in step."""
    from importlib import import_module

    migration = import_module("migrations.versions.0316_status_constraints")
    table = {
        CampaignStatus: "campaigns",
        MessageStatus: "messages",
        SubscriptionStatus: "subscriptions",
        ImportStatus: "import_jobs",
        DataRequestStatus: "privacy_requests",
    }[enum]
    assert {member.value for member in enum} == values == set(migration.STATUSES[table])


def test_message_rows_use_the_enum(db: Any) -> None:
    assert Message.status.type.enums == [member.value for member in MessageStatus]  # type: ignore[attr-defined]


def test_every_rule_is_in_the_database_at_head(db: Any) -> None:
    """A later SQLite table rebuild (Alembic batch mode) drops a table's triggers: this fails
    when a migration forgets to create them again."""
    from importlib import import_module

    migration = import_module("migrations.versions.0316_status_constraints")
    names = {name for _table, name, _condition in migration._rules()}
    if db.get_bind().dialect.name == "sqlite":
        found = set(db.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
        expected = {f"{name}_{event}" for name in names for event in ("insert", "update")}
    else:
        found = set(db.scalars(text("SELECT conname FROM pg_constraint WHERE contype = 'c'")))
        expected = names
    assert expected <= found, sorted(expected - found)
