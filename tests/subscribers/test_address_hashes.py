"""Every contact keeps the keyed hash of its address (``contacts.address_hash``), equal to the
hash the suppression list holds, whichever way it came in: the web form, the API's upsert, a
double opt-in request, a CSV import. Rows from before migration 0329 have none until the
scheduler's backfill fills them, and the audience count is the same number before, during and
after the backfill (on PostgreSQL it joins the stored hashes; the rows still empty are hashed
in place)."""

from __future__ import annotations

import io
from typing import Any

from flask import Flask
from sqlalchemy import select, update

from campaigns.audience_count import count_audience
from core import db as core_db
from core.db import utcnow
from core.scheduler import run_jobs
from subscribers import services
from subscribers.models import Contact
from subscribers.suppression import address_hash, suppress
from tests.conftest import drain
from tests.factories import make_engine_suppressed, make_list_with_contacts, make_tenant
from tests.subscribers.helpers import logged_in, tenant_with_list

#: Addresses in several scripts and cases, suppressed ones among them.
ADDRESSES = [
    "Zoë.Núñez@Example.org",
    "李小龍@例え.jp",
    "olga@почта.рф",
    "ADA@example.org",
    "ñandú@correo.example",
    "plain@example.org",
    "dead@engine.example",
    "x@sub.blocked.example",
]


def _stored(app: Flask, account_id: int) -> dict[str, str | None]:
    with app.app_context():
        rows = core_db.session.execute(
            select(Contact.email, Contact.address_hash).where(Contact.account_id == account_id)
        ).all()
        return dict(rows)


def _expected(app: Flask, emails: Any) -> dict[str, str]:
    with app.app_context():
        return {email: address_hash(email) for email in emails}


def test_every_way_in_stores_the_suppression_hash(app: Flask) -> None:
    tenant, list_id = tenant_with_list(app)
    with app.app_context():
        services.add_contact_to_list(tenant.account_id, list_id, "Zoë.Núñez@Example.org")
        services.upsert_contact(tenant.account_id, "李小龍@例え.jp", "李小龍", {"city": "Kraków"})
        services.request_opt_in(tenant.account_id, list_id, "olga@почта.рф", "Ольга")
    client = logged_in(app, tenant)
    upload = "email;name\r\nADA@example.org;Ada\r\nñandú@correo.example;Ñandú\r\n"
    response = client.post(
        "/imports",
        data={"file": (io.BytesIO(upload.encode()), "people.csv"), "list_id": str(list_id)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    import_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    started = client.post(f"/imports/{import_id}", data={})  # the guessed mapping
    assert started.status_code == 302
    drain(app)
    assert client.get(f"/imports/{import_id}/status").get_json()["created"] == 2

    stored = _stored(app, tenant.account_id)
    assert set(stored) == {
        "Zoë.Núñez@example.org",
        "李小龍@例え.jp",
        "olga@почта.рф",
        "ADA@example.org",
        "ñandú@correo.example",
    }
    assert stored == _expected(app, stored)


def _audience(app: Flask) -> tuple[int, int]:
    """A list with suppressed addresses of every kind (the account's, platform-wide, the
    engine's, a blocked domain; ASCII and not). Returns the account and list ids."""
    with app.app_context():
        tenant = make_tenant()
        other = make_tenant("owner@other.example", "Other")
        list_id = make_list_with_contacts(tenant, ADDRESSES)
        suppress(tenant.account_id, "ada@example.org", "manual")  # another case: still matches
        suppress(None, "ñandú@correo.example", "erased")
        core_db.session.commit()
        services.block_domain("blocked.example")
        make_engine_suppressed(other, "dead@engine.example")
        return tenant.account_id, list_id


def test_rows_from_before_the_migration_are_filled_and_counted_alike(app: Flask) -> None:
    account_id, list_id = _audience(app)
    with app.app_context():
        expected = count_audience(account_id, [list_id])
        assert (expected.recipients, expected.suppressed) == (4, 4)
        # As rows from before migration 0329 are: no hash yet.
        core_db.session.execute(update(Contact).values(address_hash=None))
        core_db.session.commit()
        changed = dict(core_db.session.execute(select(Contact.id, Contact.updated_at)).all())
        assert count_audience(account_id, [list_id]) == expected

    results = run_jobs(app, utcnow(), only=["contact-address-hashes"])
    assert results["contact-address-hashes"] >= len(ADDRESSES)
    stored = _stored(app, account_id)
    assert stored == _expected(app, stored)
    with app.app_context():
        assert count_audience(account_id, [list_id]) == expected
        # Filling the hash is not a change of the contact (API clients sync by updated_at).
        assert dict(core_db.session.execute(select(Contact.id, Contact.updated_at)).all()) == (
            changed
        )
    # Nothing left: the next run fills nothing.
    assert run_jobs(app, utcnow(), only=["contact-address-hashes"])["contact-address-hashes"] == 0


def test_a_half_filled_table_is_counted_exactly(app: Flask) -> None:
    account_id, list_id = _audience(app)
    with app.app_context():
        expected = count_audience(account_id, [list_id])
        half = select(Contact.id).where(Contact.account_id == account_id).order_by(Contact.id)
        ids = list(core_db.session.scalars(half))[::2]
        core_db.session.execute(
            update(Contact).where(Contact.id.in_(ids)).values(address_hash=None)
        )
        core_db.session.commit()
        assert count_audience(account_id, [list_id]) == expected
