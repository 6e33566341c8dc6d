"""Contact search by attribute value finds exactly the contacts the plain condition finds
(``lower(attributes->>name) = lower(value)``, the name exact): on PostgreSQL the search is
narrowed by the GIN index of the lowered attribute values (migration 0328), which must never
lose a match. Values stored by the importer (JSON with ``\\u`` escapes) and by the services
(numbers, true/false), non-ASCII capitals, quotes and backslashes."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from core import db as core_db
from core.errors import ValidationError
from subscribers import queries, services
from subscribers.models import Contact
from tests.subscribers.helpers import logged_in, run_import, tenant_with_list

#: Added through the services: address -> attributes.
BY_SERVICE: dict[str, dict[str, Any]] = {
    "s-krakow@example.org": {"city": "Kraków"},
    "s-krakow-caps@example.org": {"city": "KRAKÓW"},
    "s-key-caps@example.org": {"City": "kraków"},  # another name: "City" is not "city"
    "s-both-keys@example.org": {"City": "Oslo", "city": "Kraków"},
    "s-other-key@example.org": {"town": "Kraków", "city": "Oslo"},
    "s-zoe@example.org": {"city": "ZOË"},
    "s-li@example.org": {"city": "李"},
    "s-sigma@example.org": {"city": "ΟΔΟΣ"},
    "s-int@example.org": {"n": 42},
    "s-float@example.org": {"n": 4.5},
    "s-big@example.org": {"n": 1e20},
    "s-int-text@example.org": {"n": "42"},
    "s-true@example.org": {"ok": True},
    "s-true-text@example.org": {"ok": "TRUE"},
    "s-false@example.org": {"ok": False},
    "s-null@example.org": {"ok": None, "n": "null"},
    "s-quote@example.org": {"q": 'Say "Hi" \\ there'},
    "s-brace@example.org": {"q": "[1]"},
}

#: Imported from a CSV file (stored with ``json.dumps``' escapes): address -> (city, note).
BY_IMPORT = {
    "i-krakow-caps@example.org": ("KRAKÓW", "x"),
    "i-zoe@example.org": ("Zoë", "ZOË"),
    "i-li@example.org": ("李", ""),
    "i-quote@example.org": ("Oslo", 'say "hi" \\ THERE'),
    "i-int@example.org": ("42", "4.50"),
}

SEARCHES = [
    ("city", "Kraków", {"s-krakow", "s-krakow-caps", "s-both-keys", "i-krakow-caps"}),
    ("city", "KRAKÓW", {"s-krakow", "s-krakow-caps", "s-both-keys", "i-krakow-caps"}),
    ("City", "KRAKÓW", {"s-key-caps"}),
    ("town", "kraków", {"s-other-key"}),
    ("city", "zoë", {"s-zoe", "i-zoe"}),
    ("note", "Zoë", {"i-zoe"}),
    ("city", "李", {"s-li", "i-li"}),
    ("city", "οδοσ", {"s-sigma"}),
    ("n", "42", {"s-int", "s-int-text"}),
    ("city", "42", {"i-int"}),
    ("n", "4.5", {"s-float"}),
    ("note", "4.50", {"i-int"}),
    ("n", "4.50", set()),
    ("n", "1e+20", {"s-big"}),
    ("n", "100000000000000000000", set()),
    ("ok", "true", {"s-true", "s-true-text"}),
    ("ok", "FALSE", {"s-false"}),
    ("ok", "null", set()),
    ("n", "null", {"s-null"}),
    ("q", 'say "hi" \\ there', {"s-quote"}),
    ("note", 'SAY "HI" \\ there', {"i-quote"}),
    ("q", "[1]", {"s-brace"}),
    ("city", "krak", set()),
]

#: Where SQLite's plain condition finds other contacts than PostgreSQL's (before the index
#: too): its ->> gives JSON true as 1 and 1e20 as 1.0e+20, and Python lowers a final sigma.
ON_SQLITE = {
    ("city", "οδοσ"): set(),
    ("n", "1e+20"): set(),
    ("ok", "true"): {"s-true-text"},
    ("ok", "FALSE"): set(),
}


@pytest.fixture
def searched(app: Flask) -> Any:
    """A client of the tenant holding every contact above, on one list."""
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        for email, attributes in BY_SERVICE.items():
            services.add_contact_to_list(tenant.account_id, list_id, email, "", attributes)
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["email", "city", "note"])
    for email, (city, note) in BY_IMPORT.items():
        writer.writerow([email, city, note])
    client = logged_in(app, tenant)
    run_import(
        app, client, list_id, rows.getvalue(), {"0": "email", "1": "attribute", "2": "attribute"}
    )
    return tenant, client


def _found(client: Any, name: str, value: str) -> set[str]:
    page = client.get("/contacts", query_string={"attribute": name, "value": value}).text
    everyone = [*BY_SERVICE, *BY_IMPORT]
    return {email.split("@")[0] for email in everyone if f">{email}<" in page}


@pytest.mark.parametrize(("name", "value", "expected"), SEARCHES)
def test_search_by_attribute_value_finds_what_the_plain_condition_finds(
    app: Flask,
    searched: Any,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    expected: set[str],
) -> None:
    _, client = searched
    with app.app_context():
        if core_db.session.get_bind().dialect.name == "sqlite":
            expected = ON_SQLITE.get((name, value), expected)
    assert _found(client, name, value) == expected
    monkeypatch.setattr(queries, "attribute_value_prefilter", lambda value: [])
    assert _found(client, name, value) == expected  # the plain condition alone


def test_postgresql_narrows_the_search_by_the_attribute_values_index(
    app: Flask, searched: Any
) -> None:
    with app.app_context():
        if core_db.session.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite has no such index: it scans")
        core_db.session.execute(text("SET LOCAL enable_seqscan = off"))
        # The narrowing alone: with the account's (unique) index left out, the plan shows the
        # expression is the index's.
        query = select(Contact.id).where(*queries.attribute_value_prefilter("kraków"))
        compiled = query.compile(core_db.session.get_bind())
        plan = core_db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        assert "ix_contacts_attribute_values" in "\n".join(plan.scalars())


@pytest.mark.parametrize("value", ["a\x00b", "\ud800"])
def test_attributes_refuse_what_postgresql_cannot_read_back(app: Flask, value: str) -> None:
    tenant, list_id = tenant_with_list(app)
    with app.app_context(), pytest.raises(ValidationError):
        services.add_contact_to_list(
            tenant.account_id, list_id, "nul@example.org", "", {"note": value}
        )
