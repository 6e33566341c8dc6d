"""The reads made fast for a million contacts (issue 17) keep their answers: contact search
finds the same contacts (trigram indexes on PostgreSQL, a scan on SQLite), non-ASCII names
and addresses included; exports read in keyset pages give every exportable contact once, in
id order; the list page shows the newest members."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from core import db as core_db
from core.db import utcnow
from subscribers import exports, services
from subscribers.models import Contact
from tests.factories import make_tenant
from tests.subscribers.helpers import logged_in, tenant_with_list

PEOPLE = [
    ("anna.berg@example.org", "Anna Berg", {"city": "Berlin"}),
    ("zoë.ångström@exämple.org", "Zoë Ångström", {"city": "Kraków"}),
    ("ÅSA@Example.org", "Åsa Öberg", {"city": "Oslo"}),
    ("bob@shop.example", "Bob 100% Real_Name", {"city": "Berlin"}),
    ("carl@example.org", "Carl", {}),
    ("dora@example.org", "", {"city": "Zürich"}),
    ("restricted@example.org", "Rex", {"city": "Berlin"}),
]


@pytest.fixture
def people(app: Flask) -> tuple[Any, int, dict[str, str]]:
    """The tenant, its list, and each address of PEOPLE as stored (normalised)."""
    tenant, list_id = tenant_with_list(app)
    stored: dict[str, str] = {}
    with app.app_context():
        for email, name, attributes in PEOPLE:
            contact = services.add_contact_to_list(
                tenant.account_id, list_id, email, name, attributes
            )
            stored[email] = contact.email
        core_db.session.execute(
            update(Contact)
            .where(Contact.email == "restricted@example.org")
            .values(restricted_at=utcnow(), restricted_by="account")
        )
        core_db.session.commit()
    return tenant, list_id, stored


def _found(client: Any, query: str, stored: dict[str, str]) -> set[str]:
    page = client.get(f"/contacts?{query}").get_data(as_text=True)
    return {email for email, address in stored.items() if f">{address}<" in page}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=berg", {"anna.berg@example.org", "ÅSA@Example.org"}),
        ("q=%C3%85NGSTR%C3%96M", {"zoë.ångström@exämple.org"}),  # ÅNGSTRÖM: case folded
        ("q=z%C3%B6%C3%AB", set()),  # "zöë": no such letters in that order
        ("q=ex%C3%A4mple", {"zoë.ångström@exämple.org"}),
        ("q=%C3%A5sa", {"ÅSA@Example.org"}),
        ("q=100%25", {"bob@shop.example"}),  # % is a character, not a wildcard
        ("q=b_b", set()),  # _ too
        ("q=real_name", {"bob@shop.example"}),
        ("q=EXAMPLE.ORG", {e for e, _, _ in PEOPLE if e.lower().endswith("example.org")}),
        ("q=ca", {"carl@example.org"}),  # two letters: shorter than a trigram
        ("q=nobody", set()),
        ("attribute=city&value=krak%C3%B3w", {"zoë.ångström@exämple.org"}),
    ],
)
def test_contact_search_finds_the_same_contacts(
    app: Flask, people: tuple[Any, int, dict[str, str]], query: str, expected: set[str]
) -> None:
    tenant, _, stored = people
    client = logged_in(app, tenant)
    assert _found(client, query, stored) == expected


def test_exports_read_in_pages_give_every_exportable_contact_once(
    app: Flask, people: tuple[Any, int, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "PAGE_ROWS", 2)  # four pages for six contacts
    tenant, list_id, stored = people
    client = logged_in(app, tenant)
    rows = list(csv.reader(io.StringIO(client.get(f"/lists/{list_id}/export.csv").text)))
    exportable = [p for p in PEOPLE if p[0] != "restricted@example.org"]
    assert rows[0] == list(exports.COLUMNS)
    assert [row[0] for row in rows[1:]] == [stored[email] for email, _, _ in exportable]
    assert [row[1] for row in rows[1:]] == [name for _, name, _ in exportable]
    assert {row[2] for row in rows[1:]} == {"subscribed"}
    assert [json.loads(row[5]) for row in rows[1:]] == [a for _, _, a in exportable]
    as_json = json.loads(client.get(f"/lists/{list_id}/export.json").text)
    assert [item["email"] for item in as_json] == [stored[email] for email, _, _ in exportable]

    with app.app_context():
        segment = services.save_segment(
            tenant.account_id,
            None,
            "Berlin",
            "all",
            [{"field": "attribute", "key": "city", "op": "equals", "value": "Berlin"}],
        )
    segment_rows = list(
        csv.reader(io.StringIO(client.get(f"/segments/{segment.id}/export.csv").text))
    )
    assert [row[0] for row in segment_rows[1:]] == ["anna.berg@example.org", "bob@shop.example"]
    assert {row[2] for row in segment_rows[1:]} == {""}


def test_the_list_page_shows_the_newest_members_first(
    app: Flask, people: tuple[Any, int, dict[str, str]]
) -> None:
    tenant, list_id, stored = people
    client = logged_in(app, tenant)
    page = client.get(f"/lists/{list_id}").get_data(as_text=True)
    shown = re.findall(r'/contacts/\d+">([^<]+)</a>', page)
    assert shown == [stored[email] for email, _, _ in reversed(PEOPLE)]
    assert "The 200 newest members" not in page  # fewer than 200: all of them


def test_list_summaries_count_each_list_by_status(
    app: Flask, people: tuple[Any, int, dict[str, str]]
) -> None:
    from subscribers import queries

    tenant, list_id, stored = people
    with app.app_context():
        empty = services.create_list(tenant.account_id, "Empty").id
        carl = core_db.session.scalar(
            select(Contact.id).where(Contact.email == stored["carl@example.org"])
        )
        assert carl is not None
        services.unsubscribe_contact(tenant.account_id, carl, list_id, "manual")
        services.request_opt_in(tenant.account_id, list_id, "waiting@example.org")  # unconfirmed
        second = services.create_list(tenant.account_id, "Second").id
        services.add_contact_to_list(tenant.account_id, second, "anna.berg@example.org")
        other = make_tenant("other@shop.example")
        elsewhere = services.create_list(other.account_id, "Elsewhere").id
        services.add_contact_to_list(other.account_id, elsewhere, "anna.berg@example.org")
        summaries = {
            s.id: (s.name, s.subscribed, s.unsubscribed)
            for s in queries.list_summaries(tenant.account_id)
        }
        assert summaries == {
            list_id: ("News", 6, 1),
            empty: ("Empty", 0, 0),
            second: ("Second", 1, 0),
        }
        assert [s.id for s in queries.list_summaries(tenant.account_id)] == [
            second,
            empty,
            list_id,
        ]
        assert [
            (s.id, s.subscribed) for s in queries.list_summaries(tenant.account_id, list_id)
        ] == [(list_id, 6)]
        assert queries.list_summaries(tenant.account_id, elsewhere) == []
