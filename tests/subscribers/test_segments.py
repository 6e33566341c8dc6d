"""Segments: allow-listed fields and operators only; matching; a segment as an audience."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from campaigns.models import Campaign, Message
from core import db as core_db
from core.errors import ValidationError
from subscribers import services
from subscribers.audience import audience_contact_ids
from subscribers.models import Contact
from tests.subscribers.helpers import logged_in, tenant_with_list
from tracking.models import TrackingEvent


@pytest.mark.parametrize(
    "rule",
    [
        {"field": "password", "op": "equals", "value": "x"},
        {"field": "email; DROP TABLE contacts", "op": "equals", "value": "x"},
        {"field": "contacts.email", "op": "equals", "value": "x"},
        {"field": "email", "op": "like", "value": "x"},
        {"field": "email", "op": "= 1 OR 1=1 --", "value": "x"},
        {"field": "created_at", "op": "contains", "value": "2024"},
        {"field": "list", "op": "equals", "value": "1"},
        {"field": "engagement", "op": "opened_within", "value": "forever"},
        {"field": "attribute", "op": "equals", "key": "x') OR ('1'='1", "value": "y"},
        {"field": "attribute", "op": "greater_than", "key": "age", "value": "old"},
        {"field": "created_at", "op": "before", "value": "yesterday"},
        "email = 'x'",
    ],
)
def test_unknown_fields_operators_and_bad_values_are_refused(app: Flask, rule: Any) -> None:
    tenant, _ = tenant_with_list(app)
    with app.app_context(), pytest.raises(ValidationError):
        services.save_segment(tenant.account_id, None, "bad", "all", [rule])


def test_list_condition_must_name_an_own_list(app: Flask) -> None:
    alice, _ = tenant_with_list(app, "alice@a.example")
    _bob, bobs_list = tenant_with_list(app, "bob@b.example")
    rule = {"field": "list", "op": "subscribed", "value": str(bobs_list)}
    with app.app_context(), pytest.raises(ValidationError):
        services.save_segment(alice.account_id, None, "steal", "all", [rule])


def test_values_are_data_never_sql(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        services.add_contact_to_list(tenant.account_id, list_id, "a@example.org")
        segment = services.save_segment(
            tenant.account_id,
            None,
            "tricky",
            "any",
            [
                {"field": "email", "op": "contains", "value": "%' OR '1'='1"},
                {"field": "name", "op": "equals", "value": "x'); DROP TABLE contacts; --"},
            ],
        )
        from subscribers import queries

        total, _, _ = queries.segment_preview(tenant.account_id, segment)
        assert total == 0
        assert core_db.session.scalar(select(Contact.email)) == "a@example.org"


def _contacts(app: Flask, account_id: int, list_id: int) -> dict[str, int]:
    people = {
        "ana@lisbon.example": ("Ana", {"city": "Lisbon", "age": "34"}),
        "bo@oslo.example": ("Bo", {"city": "Oslo", "age": "51"}),
        "cy@lisbon.example": ("", {"city": "lisbon"}),
        "dan@lima.example": ("Dan", {"age": "unknown"}),
    }
    ids = {}
    with app.app_context():
        for email, (name, attributes) in people.items():
            ids[email] = services.add_contact_to_list(
                account_id, list_id, email, name, attributes
            ).id
    return ids


def _match(app: Flask, account_id: int, match: str, rules: list[dict[str, Any]]) -> set[str]:
    from subscribers import queries

    with app.app_context():
        segment = services.save_segment(account_id, None, "s", match, rules)
        _, sample, _ = queries.segment_preview(account_id, segment)
        return {c.email for c in sample}


def test_segments_match_fields_attributes_and_lists(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    _contacts(app, tenant.account_id, list_id)
    a = tenant.account_id
    city = {"field": "attribute", "key": "city", "op": "equals", "value": "LISBON"}
    assert _match(app, a, "all", [city]) == {"ana@lisbon.example", "cy@lisbon.example"}
    older = {"field": "attribute", "key": "age", "op": "greater_than", "value": "40"}
    assert _match(app, a, "all", [older]) == {"bo@oslo.example"}
    assert _match(app, a, "any", [older, city]) == {
        "ana@lisbon.example",
        "bo@oslo.example",
        "cy@lisbon.example",
    }
    younger = {"field": "attribute", "key": "age", "op": "less_than", "value": "40"}
    assert _match(app, a, "all", [younger]) == {"ana@lisbon.example"}  # "unknown" is no number
    unnamed = {"field": "name", "op": "is_empty"}
    assert _match(app, a, "all", [city, unnamed]) == {"cy@lisbon.example"}
    on_list = {"field": "list", "op": "subscribed", "value": str(list_id)}
    ends = {"field": "email", "op": "ends_with", "value": "@oslo.example"}
    assert _match(app, a, "all", [on_list, ends]) == {"bo@oslo.example"}
    no_age = {"field": "attribute", "key": "age", "op": "missing"}
    assert _match(app, a, "all", [no_age]) == {"cy@lisbon.example"}
    ends = {"field": "email", "op": "ends_with", "value": ".example"}
    assert len(_match(app, a, "all", [ends])) == 4


def test_engagement_reads_identified_tracking_events(app: Flask) -> None:
    from tests.factories import make_campaign

    tenant, list_id = tenant_with_list(app)
    ids = _contacts(app, tenant.account_id, list_id)
    with app.app_context():
        campaign_id = make_campaign(tenant, list_id)
        message = Message(campaign_id=campaign_id, contact_id=ids["bo@oslo.example"], status="sent")
        core_db.session.add(message)
        core_db.session.flush()
        core_db.session.add(
            TrackingEvent(
                account_id=tenant.account_id,
                campaign_id=campaign_id,
                message_id=message.id,
                kind="click",
            )
        )
        core_db.session.commit()
    clicked = {"field": "engagement", "op": "clicked_within", "value": "30"}
    assert _match(app, tenant.account_id, "all", [clicked]) == {"bo@oslo.example"}
    not_opened = {"field": "engagement", "op": "no_open_within", "value": "30"}
    assert len(_match(app, tenant.account_id, "all", [not_opened])) == 4


def test_audience_is_the_deduplicated_union_of_lists_and_segments(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    ids = _contacts(app, tenant.account_id, list_id)
    with app.app_context():
        other = services.create_list(tenant.account_id, "Other")
        services.add_contact_to_list(tenant.account_id, other.id, "dee@example.org")
        extra = services.add_contact_to_list(tenant.account_id, other.id, "ed@oslo.example")
        segment = services.save_segment(
            tenant.account_id,
            None,
            "oslo",
            "all",
            [{"field": "email", "op": "ends_with", "value": "oslo.example"}],
        )
        # Unsubscribed from everything or restricted: never in the audience.
        services.unsubscribe_contact(tenant.account_id, extra.id, None, "manual")
        core_db.session.execute(
            update(Contact)
            .where(Contact.id == ids["cy@lisbon.example"])
            .values(restricted_at=Contact.created_at)
        )
        core_db.session.commit()
        chosen = list(
            core_db.session.scalars(
                audience_contact_ids(tenant.account_id, [list_id], [segment.id])
            )
        )
        assert sorted(chosen) == sorted(
            [ids["ana@lisbon.example"], ids["bo@oslo.example"], ids["dan@lima.example"]]
        )
        # Another account's segment adds nobody.
        assert (
            list(
                core_db.session.scalars(
                    audience_contact_ids(tenant.account_id + 1, [], [segment.id])
                )
            )
            == []
        )
        assert list(
            core_db.session.scalars(audience_contact_ids(tenant.account_id, [], [segment.id]))
        ) == [ids["bo@oslo.example"]]
        # The frozen audience works as campaigns use it (a subquery).
        sub = audience_contact_ids(tenant.account_id, [list_id], [segment.id]).subquery()
        assert len(core_db.session.execute(select(sub.c.id)).all()) == 3
    assert Campaign  # campaigns' model is importable beside the audience


def test_segment_builder_ui(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    _contacts(app, tenant.account_id, list_id)
    client = logged_in(app, tenant)
    assert "No segments yet" in client.get("/segments").get_data(as_text=True)
    bad = client.post(
        "/segments/new",
        data={"name": "x", "match": "all", "field": ["bogus"], "op": ["equals"], "value": ["1"]},
    )
    assert bad.status_code == 422 and "unknown field" in bad.get_data(as_text=True)
    response = client.post(
        "/segments/new",
        data={
            "name": "Lisbon",
            "match": "all",
            "field": ["attribute", ""],
            "op": ["equals", "equals"],
            "key": ["city", ""],
            "value": ["Lisbon", ""],
            "list_value": [str(list_id), str(list_id)],
        },
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="segment-count">2<' in page
    export = client.get(response.headers["Location"] + "/export.csv")
    assert export.status_code == 200 and "ana@lisbon.example" in export.get_data(as_text=True)
