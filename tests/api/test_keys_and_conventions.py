"""API keys and the conventions every operation shares, through HTTP: bearer keys only (a
session cookie alone is refused), revocation at once, problem details for every error,
idempotent creation, rate limits, ETag preconditions and cursor pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from accounts.models import SecurityEvent
from api import keys
from api.models import ApiKey, IdempotentRequest
from core import db as core_db
from core.db import utcnow
from core.errors import PermissionDeniedError
from core.permissions import ALL, Permission
from subscribers.models import Contact
from tests.api.conftest import api, make_key
from tests.factories import login, make_member, make_tenant

PROBLEM = "application/problem+json"


def _problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.mimetype == PROBLEM  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return dict(body)


def test_a_key_is_stored_hashed_and_works_until_revoked_at_once(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    secret = make_key(app, tenant, [Permission.MANAGE_CONTACTS], name="Shop sign-ups")
    with app.app_context():
        stored = core_db.session.scalars(select(ApiKey)).one()
        assert secret not in (stored.secret_hash, stored.prefix)
        assert secret.startswith(stored.prefix + "_")
        assert stored.last_used_at is None
        key_id = stored.id
    client = api(app, secret)
    assert client.get("/api/v1/contacts").status_code == 200
    with app.app_context():
        used = core_db.session.get(ApiKey, key_id)
        assert used is not None and used.last_used_at is not None
        keys.revoke_key(tenant.account_id, tenant.user_id, key_id)
    refused = _problem(client.get("/api/v1/contacts"), 401)
    assert "Bearer" in str(refused["detail"])
    with app.app_context():
        kinds = core_db.session.scalars(select(SecurityEvent.kind).order_by(SecurityEvent.id))
        assert [k for k in kinds if k.startswith("api-key")] == [
            "api-key-created",
            "api-key-revoked",
        ]


def test_wrong_or_malformed_keys_and_a_session_cookie_alone_are_refused(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    secret = make_key(app, tenant)
    for header in (
        None,
        "Bearer",
        "Bearer envoy_",
        f"Bearer {secret}x",
        f"Basic {secret}",
        "Bearer envoy_zzzzzzzz_" + "a" * 43,
    ):
        client = api(app, None)
        headers = {"Authorization": header} if header else {}
        response = client.get("/api/v1/contacts", headers=headers)
        assert _problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # A member logged in through the browser: the cookie opens pages, never the API.
    browser = app.test_client()
    login(browser, tenant.email)
    assert browser.get("/lists").status_code == 200
    _problem(browser.get("/api/v1/contacts"), 401)
    _problem(browser.post("/api/v1/lists", json={"name": "Sneaky"}), 401)


def test_a_key_never_does_more_than_its_creator_and_stops_when_they_leave(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
        admin_id = make_member(tenant, "admin@shop.example", "admin")
        made = keys.create_key(
            tenant.account_id,
            admin_id,
            ALL - {Permission.OWN_ACCOUNT},
            "Admin's key",
            [Permission.MANAGE_CONTACTS.value],
        )
    client = api(app, made.secret)
    assert client.get("/api/v1/contacts").status_code == 200
    with app.app_context():
        from accounts import services as accounts

        accounts.change_role(tenant.account_id, ALL, admin_id, "member")
    # A plain member still manages contacts: the key keeps working.
    assert client.get("/api/v1/contacts").status_code == 200
    with app.app_context():
        accounts.remove_member(tenant.account_id, ALL, admin_id)
    _problem(client.get("/api/v1/contacts"), 401)


def test_the_settings_page_creates_shows_once_lists_and_revokes(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
        make_member(tenant, "member@shop.example", "member")
    browser = app.test_client()
    login(browser, tenant.email)
    empty = browser.get("/settings/api-keys").get_data(as_text=True)
    assert "No API keys yet" in empty
    invalid = browser.post("/settings/api-keys", data={"name": "", "scopes": []})
    assert invalid.status_code == 422
    created = browser.post(
        "/settings/api-keys", data={"name": "CRM sync ✓", "scopes": ["contacts:manage"]}
    )
    page = created.get_data(as_text=True)
    assert created.status_code == 200
    assert "shown only this once" in page
    with app.app_context():
        stored = core_db.session.scalars(select(ApiKey)).one()
    secret = page.split('id="new-key-secret"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    assert secret.startswith(stored.prefix)
    assert api(app, secret).get("/api/v1/contacts").status_code == 200
    listing = browser.get("/settings/api-keys").get_data(as_text=True)
    assert "CRM sync ✓" in listing and secret not in listing and stored.prefix in listing
    revoked = browser.post(f"/settings/api-keys/{stored.id}/revoke", follow_redirects=True)
    assert "no longer works" in revoked.get_data(as_text=True)
    _problem(api(app, secret).get("/api/v1/contacts"), 401)
    # A plain member may not manage keys (it needs "Manage sending, API keys and webhooks").
    member = app.test_client()
    login(member, "member@shop.example")
    assert member.get("/settings/api-keys").status_code == 403
    assert member.post(f"/settings/api-keys/{stored.id}/revoke").status_code == 403


def test_scopes_beyond_the_creator_are_refused(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
        lead = make_member(tenant, "member@shop.example", "member")
    with app.app_context(), pytest.raises(PermissionDeniedError, match="Export contacts"):
        keys.create_key(
            tenant.account_id,
            lead,
            ALL - {Permission.EXPORT_CONTACTS, Permission.OWN_ACCOUNT},
            "Too much",
            [Permission.EXPORT_CONTACTS.value],
        )


def test_errors_are_problem_details_everywhere(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    _problem(client.get("/api/v1/no-such-thing"), 404)
    _problem(client.get("/api/v1/contacts/987654"), 404)
    _problem(client.get(f"/api/v1/contacts/{2**40}"), 404)
    gone = client.delete("/api/v1/lists")
    _problem(gone, 405)
    assert "GET" in gone.headers["Allow"]
    _problem(client.post("/api/v1/contacts", data="email=x", content_type="text/plain"), 415)
    bad_json = _problem(
        client.post("/api/v1/contacts", data="{", content_type="application/json"), 422
    )
    assert bad_json["errors"] == [{"field": "body", "message": "not valid JSON"}]
    invalid = _problem(client.post("/api/v1/contacts", json={"name": "No address"}), 422)
    assert {"field": "email", "message": "Field required"} in invalid["errors"]  # type: ignore[operator]
    refused = _problem(client.post("/api/v1/contacts", json={"email": "not an address"}), 422)
    assert refused["errors"][0]["field"] == "email"  # type: ignore[index]
    unknown = _problem(client.post("/api/v1/contacts", json={"email": "a@b.org", "x": 1}), 422)
    assert unknown["errors"][0]["field"] == "x"  # type: ignore[index]
    bad_query = _problem(client.get("/api/v1/contacts?limit=0"), 422)
    assert bad_query["errors"][0]["field"] == "limit"  # type: ignore[index]


def test_a_retry_with_the_same_idempotency_key_creates_one_contact(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    body = {"email": "Zoë.Ñúñez@Exämple.org", "name": "Zoë"}
    headers = {"Idempotency-Key": "signup-42"}
    first = client.post("/api/v1/contacts", json=body, headers=headers)
    again = client.post("/api/v1/contacts", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    with app.app_context():
        assert core_db.session.scalar(select(func.count(Contact.id))) == 1
    other = client.post("/api/v1/contacts", json={**body, "name": "Someone else"}, headers=headers)
    assert _problem(other, 422)["type"] == "urn:envoy:problem:idempotency-key-reused"
    # A refused request keeps nothing: the client fixes it and retries with the same key.
    bad = client.post("/api/v1/lists", json={"name": ""}, headers={"Idempotency-Key": "l-1"})
    _problem(bad, 422)
    fixed = client.post("/api/v1/lists", json={"name": "News"}, headers={"Idempotency-Key": "l-1"})
    assert fixed.status_code == 201
    # Keys are per account: another account's identical key is its own.
    with app.app_context():
        other_tenant = make_tenant("owner@other.example", "Other")
    theirs = api(app, make_key(app, other_tenant)).post(
        "/api/v1/contacts", json=body, headers=headers
    )
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    # After API_IDEMPOTENCY_HOURS the answer is swept.
    with app.app_context():
        from api import personal_data

        assert personal_data.sweep_idempotent_answers(utcnow()) == 0  # younger than 24 h
        assert personal_data.sweep_idempotent_answers(utcnow() + timedelta(hours=25)) == 3
        assert core_db.session.scalar(select(func.count(IdempotentRequest.id))) == 0


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(app: Flask) -> None:
    app.config["API_RATE_LIMIT_PER_MINUTE"] = 3
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    other = api(app, make_key(app, tenant, name="Second key"))
    for _ in range(3):
        assert client.get("/api/v1/lists").status_code == 200
    limited = client.get("/api/v1/lists")
    _problem(limited, 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert other.get("/api/v1/lists").status_code == 200  # per key


def test_a_change_with_a_stale_if_match_is_refused_with_412(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    made = client.post("/api/v1/contacts", json={"email": "li@example.cn", "name": "李"})
    contact_id = made.get_json()["id"]
    read = client.get(f"/api/v1/contacts/{contact_id}")
    etag = read.headers["ETag"]
    assert client.get(f"/api/v1/contacts/{contact_id}").headers["ETag"] == etag
    changed = client.patch(
        f"/api/v1/contacts/{contact_id}", json={"name": "李小龍"}, headers={"If-Match": etag}
    )
    assert changed.status_code == 200 and changed.get_json()["name"] == "李小龍"
    assert changed.headers["ETag"] != etag
    stale = client.patch(
        f"/api/v1/contacts/{contact_id}", json={"name": "Bruce"}, headers={"If-Match": etag}
    )
    assert _problem(stale, 412)["type"] == "urn:envoy:problem:precondition-failed"
    assert client.get(f"/api/v1/contacts/{contact_id}").get_json()["name"] == "李小龍"
    _problem(client.delete(f"/api/v1/contacts/{contact_id}", headers={"If-Match": etag}), 412)
    assert (
        client.delete(
            f"/api/v1/contacts/{contact_id}", headers={"If-Match": changed.headers["ETag"]}
        ).status_code
        == 204
    )
    _problem(client.get(f"/api/v1/contacts/{contact_id}"), 404)


def test_cursor_pages_cover_every_contact_once_and_refuse_forged_cursors(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant()
    client = api(app, make_key(app, tenant))
    addresses = [f"person{n}@example.org" for n in range(7)]
    for address in addresses:
        assert client.post("/api/v1/contacts", json={"email": address}).status_code == 201
    for sort in ("-created", "created", "email", "-email"):
        seen: list[str] = []
        cursor = None
        while True:
            query = f"/api/v1/contacts?limit=3&sort={sort}" + (
                f"&cursor={cursor}" if cursor else ""
            )
            page = client.get(query).get_json()
            seen += [item["email"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(addresses), sort
        assert len(seen) == len(set(seen))
        if sort == "email":
            assert seen == sorted(addresses)
    first = client.get("/api/v1/contacts?limit=2").get_json()
    forged = first["next_cursor"][:-2] + "xx"
    assert _problem(client.get(f"/api/v1/contacts?cursor={forged}"), 422)
    other_filter = client.get(f"/api/v1/contacts?q=person1&cursor={first['next_cursor']}")
    assert "another sort or other filters" in str(_problem(other_filter, 422)["detail"])
    found = client.get("/api/v1/contacts?q=PERSON3").get_json()["items"]
    assert [item["email"] for item in found] == ["person3@example.org"]
