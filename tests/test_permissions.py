"""Roles as sets of permissions, through HTTP: every route declares who may use it, each
permission opens exactly its routes (a matrix driven by the declarations), members cannot export
contacts, and an account's own roles go through their whole life."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts import roles
from accounts import services as accounts
from accounts.models import Membership, Role
from core import db as core_db
from core.auth import Access, Audience, access_of
from core.permissions import ALL, Permission
from tests.factories import (
    Tenant,
    login,
    make_campaign,
    make_list_with_contacts,
    make_member,
    make_tenant,
)

#: Ids in URLs of the matrix: no row has them, so an admitted request changes nothing.
NO_SUCH_ID = 987654


def _is_static(endpoint: str) -> bool:
    return endpoint == "static" or endpoint.endswith(".static")


def _declarations(app: Flask) -> dict[str, Access | None]:
    return {
        rule.endpoint: access_of(app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if not _is_static(rule.endpoint)
    }


def _request(client: FlaskClient, app: Flask, endpoint: str) -> Any:
    """One request to ``endpoint`` with placeholder arguments: GET where it answers GET, else
    its method."""
    rule = next(rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint)
    values: dict[str, Any] = {}
    for name in rule.arguments:
        converter = type(rule._converters[name]).__name__
        values[name] = NO_SUCH_ID if converter == "IntegerConverter" else "csv"
    with app.test_request_context():
        from flask import url_for

        url = url_for(endpoint, **values)
    if "GET" in (rule.methods or ()):
        return client.get(url)
    for method in ("POST", "PUT", "PATCH", "DELETE"):  # the API's operations use them all
        if method in (rule.methods or ()):
            return client.open(url, method=method, data={})
    raise AssertionError(f"{endpoint} answers no method the matrix knows")


def test_every_route_declares_who_may_use_it(app: Flask) -> None:
    """A new view without require_permission, login_required, operator_required or public
    fails here by name."""
    undeclared = sorted(name for name, access in _declarations(app).items() if access is None)
    assert not undeclared, f"routes without an access declaration (core/auth.py): {undeclared}"
    declared = _declarations(app)
    assert declared["subscribers.list_export"] == Access(
        Audience.PERMISSION, frozenset({Permission.EXPORT_CONTACTS})
    )
    assert declared["accounts.sessions_page"].audience is Audience.ANY_MEMBER  # type: ignore[union-attr]
    assert declared["tracking.unsubscribe"].audience is Audience.PUBLIC  # type: ignore[union-attr]


def test_an_undeclared_route_is_reported(app: Flask) -> None:
    app.add_url_rule("/campaigns/forecast", "campaigns.forecast", str)
    assert [name for name, access in _declarations(app).items() if access is None] == [
        "campaigns.forecast"
    ]


def test_every_route_that_is_not_public_sends_anonymous_visitors_to_login(app: Flask) -> None:
    client = app.test_client()
    wrong = []
    for endpoint, access in sorted(_declarations(app).items()):
        assert access is not None
        if access.audience is Audience.PUBLIC:
            continue
        response = _request(client, app, endpoint)
        if access.audience is Audience.API_KEY:
            # API operations take a key, never send anyone to a login page (tests/api).
            if response.status_code != 401 or response.mimetype != "application/problem+json":
                wrong.append(f"{endpoint}: {response.status_code}")
            continue
        if response.status_code != 302 or "/login" not in response.location:
            wrong.append(f"{endpoint}: {response.status_code}")
    assert not wrong, wrong


def _custom_member(app: Flask) -> tuple[Tenant, int, FlaskClient]:
    """An account whose member holds a custom role (its permissions set per request)."""
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        role = roles.save_role(
            tenant.account_id, ALL, None, "Tester", [Permission.VIEW_REPORTS.value]
        )
        make_member(tenant, "tester@shop.example", f"role:{role.id}")
        role_id = role.id
    client = app.test_client()
    login(client, "tester@shop.example")
    return tenant, role_id, client


def _set_permissions(app: Flask, tenant: Tenant, role_id: int, granted: set[Permission]) -> None:
    with app.app_context():
        roles.save_role(
            tenant.account_id, ALL, role_id, "Tester", [permission.value for permission in granted]
        )


def test_each_permission_opens_exactly_its_routes(app: Flask) -> None:
    """Driven by the declarations: for each route that needs a permission, a role holding
    everything else is refused with the 403 page, and a role holding just what it needs gets
    through (to a 404 for the placeholder ids, a form, or a redirect; never a 403 or a 5xx).
    The role is edited between requests, so this also proves an edit counts at once."""
    tenant, role_id, client = _custom_member(app)
    grantable = ALL - {Permission.OWN_ACCOUNT}  # ownership belongs to the Owner role only
    problems = []
    checked = 0
    for endpoint, access in sorted(_declarations(app).items()):
        assert access is not None
        if access.audience is not Audience.PERMISSION:
            continue
        needed = access.permissions
        if needed <= grantable:
            _set_permissions(app, tenant, role_id, set(grantable - needed))
            refused = _request(client, app, endpoint)
            if refused.status_code != 403:
                problems.append(f"{endpoint} without {sorted(needed)}: {refused.status_code}")
            alternatives = [{p} for p in needed] if access.any_of else [set(needed)]
            for granted in alternatives:
                _set_permissions(app, tenant, role_id, granted)
                admitted = _request(client, app, endpoint)
                if admitted.status_code == 403 or admitted.status_code >= 500:
                    problems.append(f"{endpoint} with {sorted(granted)}: {admitted.status_code}")
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 50, checked


def test_a_refusal_is_the_403_page_in_the_layout_and_the_menu_hides_what_is_refused(
    app: Flask,
) -> None:
    _tenant, _role_id, client = _custom_member(app)
    refused = client.get("/lists")
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert 'class="topbar"' in page  # the layout, with the member's menu
    assert "“Manage contacts and lists”" in page
    assert "Not allowed for your role" in page
    nav = page[page.index('aria-label="Main"') : page.index("</nav>")]
    assert "/reports" in nav
    for hidden in ("/lists", "/contacts", "/team", "/settings", "/sending", "/templates"):
        assert f'href="{hidden}"' not in nav, hidden
    assert "Tester of Shop" in page


def test_operators_pages_stay_404_for_every_member(app: Flask) -> None:
    with app.app_context():
        make_tenant("owner@shop.example")
    client = app.test_client()
    login(client, "owner@shop.example")
    assert client.get("/admin/privacy").status_code == 404


# --- Built-in roles ----------------------------------------------------------------------------


def test_plain_members_cannot_export_contacts_admins_and_owners_can(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        list_id = make_list_with_contacts(tenant, ["ana@example.org", "li@example.cn"])
        make_member(tenant, "member@shop.example", "member")
        make_member(tenant, "admin@shop.example", "admin")
    member = app.test_client()
    login(member, "member@shop.example")
    for fmt in ("csv", "json"):
        refused = member.get(f"/lists/{list_id}/export.{fmt}")
        assert refused.status_code == 403
        assert "ana@example.org" not in refused.get_data(as_text=True)
    page = member.get(f"/lists/{list_id}").get_data(as_text=True)
    assert "ana@example.org" in page  # members still manage the list's contacts
    assert "Export CSV" not in page  # but the export buttons are not offered
    assert member.get("/reports").status_code == 200
    assert member.post("/settings?tab=privacy", data={}).status_code == 403
    for email in ("admin@shop.example", "owner@shop.example"):
        client = app.test_client()
        login(client, email)
        exported = client.get(f"/lists/{list_id}/export.csv")
        assert exported.status_code == 200, email
        assert "ana@example.org" in exported.get_data(as_text=True)
    with app.app_context():
        from subscribers.models import Contact

        contact_id = core_db.session.scalar(
            select(Contact.id).where(Contact.email == "ana@example.org")
        )
    privacy_page = member.get(f"/privacy/contacts/{contact_id}").get_data(as_text=True)
    assert "Restrict processing" in privacy_page  # members handle data requests
    assert "Erase this contact" not in privacy_page  # erasing needs the privacy permission
    admin = app.test_client()
    login(admin, "admin@shop.example")
    assert "Erase this contact" in admin.get(f"/privacy/contacts/{contact_id}").get_data(
        as_text=True
    )
    assert admin.get("/account/delete").status_code == 403  # ownership stays with owners
    assert "Delete the account" not in admin.get("/settings").get_data(as_text=True)


def test_built_in_roles_are_the_documented_sets() -> None:
    assert roles.BUILTIN["owner"] == ALL
    assert roles.BUILTIN["admin"] == ALL - {Permission.OWN_ACCOUNT}
    assert Permission.EXPORT_CONTACTS not in roles.BUILTIN["member"]
    assert Permission.SEND_CAMPAIGNS in roles.BUILTIN["member"]


# --- An account's own roles --------------------------------------------------------------------


def _role_id(app: Flask, account_id: int, name: str) -> int:
    with app.app_context():
        found = core_db.session.scalar(
            select(Role.id).where(Role.account_id == account_id, Role.name == name)
        )
    assert found is not None
    return int(found)


def test_custom_role_lifecycle_through_the_team_pages(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        list_id = make_list_with_contacts(tenant, ["ana@example.org"])
        analyst_id = make_member(tenant, "analyst@shop.example", "member")
    owner = app.test_client()
    login(owner, "owner@shop.example")
    assert "No roles of your own yet" in owner.get("/team/roles").get_data(as_text=True)

    bad = owner.post("/team/roles/new", data={"name": "Admin", "permissions": ["reports:view"]})
    assert bad.status_code == 422
    assert "That name belongs to a built-in role." in bad.get_data(as_text=True)
    empty = owner.post("/team/roles/new", data={"name": "Analyst"})
    assert empty.status_code == 422
    assert "Choose at least one permission." in empty.get_data(as_text=True)
    created = owner.post(
        "/team/roles/new",
        data={"name": "Analyst", "description": "Reads reports", "permissions": ["reports:view"]},
    )
    assert created.status_code == 302
    role_id = _role_id(app, tenant.account_id, "Analyst")
    again = owner.post("/team/roles/new", data={"name": "analyst", "permissions": ["reports:view"]})
    assert "Another role has that name." in again.get_data(as_text=True)

    team = owner.get("/team").get_data(as_text=True)
    assert f'<option value="role:{role_id}"' in team
    assert (
        owner.post(f"/team/{analyst_id}/role", data={"role": f"role:{role_id}"}).status_code == 302
    )
    analyst = app.test_client()
    login(analyst, "analyst@shop.example")
    assert analyst.get("/reports").status_code == 200
    assert analyst.get("/lists").status_code == 403
    assert "Analyst of Shop" in analyst.get("/reports").get_data(as_text=True)

    # An edit counts from the member's next request, without logging them out.
    edited = owner.post(
        f"/team/roles/{role_id}",
        data={"name": "Analyst", "permissions": ["reports:view", "contacts:manage"]},
    )
    assert edited.status_code == 302
    assert analyst.get("/lists").status_code == 200
    assert analyst.get(f"/lists/{list_id}/export.csv").status_code == 403

    # A role in use cannot be deleted; after reassigning its member it can.
    refused = owner.post(f"/team/roles/{role_id}/delete", follow_redirects=True)
    assert "1 member holds this role. Give them another role first." in refused.get_data(
        as_text=True
    )
    _role_id(app, tenant.account_id, "Analyst")
    owner.post(f"/team/{analyst_id}/role", data={"role": "member"})
    deleted = owner.post(f"/team/roles/{role_id}/delete", follow_redirects=True)
    assert "Role “Analyst” deleted." in deleted.get_data(as_text=True)
    with app.app_context():
        assert core_db.session.get(Role, role_id) is None
    assert analyst.get(f"/lists/{list_id}").status_code == 200  # a plain member again
    # Defining, changing and deleting the role is in the owners' security log.
    log = owner.get("/settings/security-log").get_data(as_text=True)
    assert "Role defined or changed" in log and "Role deleted" in log
    assert "+reports:view" in log


def test_nobody_grants_more_than_they_hold_and_roles_stay_in_their_account(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        other = make_tenant("owner@other.example", "Other")
        foreign = roles.save_role(other.account_id, ALL, None, "Theirs", ["reports:view"])
        lead = roles.save_role(
            tenant.account_id, ALL, None, "Team lead", ["team:manage", "reports:view"]
        )
        make_member(tenant, "lead@shop.example", f"role:{lead.id}")
        target_id = make_member(tenant, "someone@shop.example", "member")
        foreign_id, lead_id = foreign.id, lead.id
    client = app.test_client()
    login(client, "lead@shop.example")
    assert client.get("/team").status_code == 200
    beyond = client.post(
        "/team/roles/new", data={"name": "Exporter", "permissions": ["contacts:export"]}
    )
    assert beyond.status_code == 422
    assert "You cannot grant permissions you do not hold: Export contacts." in beyond.get_data(
        as_text=True
    )
    owner_only = client.post(
        "/team/roles/new", data={"name": "Boss", "permissions": ["account:own"]}
    )
    assert "Ownership is only held by owners" in owner_only.get_data(as_text=True)
    promoted = client.post(
        f"/team/{target_id}/role", data={"role": "admin"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "You cannot grant permissions you do not hold" in promoted
    # A plain member holds permissions the lead lacks: the lead cannot take them away either.
    demoted = client.post(
        f"/team/{target_id}/role", data={"role": f"role:{lead_id}"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "You cannot grant permissions you do not hold" in demoted
    stolen = client.post(
        f"/team/{target_id}/role", data={"role": f"role:{foreign_id}"}, follow_redirects=True
    )
    assert "Unknown role." in stolen.get_data(as_text=True)
    assert client.get(f"/team/roles/{foreign_id}").status_code == 404
    with app.app_context():
        membership = core_db.session.scalar(
            select(Membership).where(Membership.user_id == target_id)
        )
        assert membership is not None
        assert (membership.role, membership.role_id) == ("member", None)


def test_removing_a_custom_role_member_ends_their_session_at_once(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        role = roles.save_role(tenant.account_id, ALL, None, "Writer", ["templates:manage"])
        writer_id = make_member(tenant, "writer@shop.example", f"role:{role.id}")
    writer = app.test_client()
    login(writer, "writer@shop.example")
    assert writer.get("/templates").status_code == 200
    owner = app.test_client()
    login(owner, "owner@shop.example")
    owner.post(f"/team/{writer_id}/remove")
    gone = writer.get("/templates")
    assert gone.status_code == 302 and "/login" in gone.location


def test_an_account_with_its_own_roles_is_deleted_with_them(app: Flask) -> None:
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        role = roles.save_role(tenant.account_id, ALL, None, "Writer", ["templates:manage"])
        make_member(tenant, "writer@shop.example", f"role:{role.id}")
        assert accounts.delete_account_permanently(tenant.account_id, "test")
        assert core_db.session.scalars(select(Role)).all() == []


@pytest.mark.parametrize("key", ["", "custom", "role:", "role:x", "superuser"])
def test_unknown_role_keys_are_refused(app: Flask, key: str) -> None:
    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        with pytest.raises(Exception, match="Unknown role"):
            accounts.add_member(tenant.account_id, "owner", "x@shop.example", "", key)


def test_role_values_are_stable_scopes() -> None:
    """The values are stored and will be API-key scopes: ``area:verb``, never renamed."""
    assert all(re.fullmatch(r"[a-z]+:[a-z]+", permission.value) for permission in Permission)


def test_the_database_keeps_roles_in_their_account_and_in_use_roles_alive(app: Flask) -> None:
    from sqlalchemy.exc import IntegrityError

    with app.app_context():
        tenant = make_tenant("owner@shop.example")
        other = make_tenant("owner@other.example", "Other")
        theirs = roles.save_role(other.account_id, ALL, None, "Theirs", ["reports:view"])
        ours = roles.save_role(tenant.account_id, ALL, None, "Ours", ["reports:view"])
        user_id = make_member(tenant, "writer@shop.example", f"role:{ours.id}")
        membership = core_db.session.scalar(select(Membership).where(Membership.user_id == user_id))
        assert membership is not None
        membership.role_id = theirs.id
        with pytest.raises(IntegrityError):
            core_db.session.commit()
        core_db.session.rollback()
        core_db.session.delete(core_db.session.get(Role, ours.id))
        with pytest.raises(IntegrityError):
            core_db.session.commit()
        core_db.session.rollback()


def test_the_campaign_page_offers_only_the_actions_the_role_allows(app: Flask) -> None:
    """A reporter sees a draft and its report, but no button that would answer 403: editing,
    sending, scheduling, test sends, A/B tests, duplicating."""
    tenant, role_id, client = _custom_member(app)
    with app.app_context():
        list_id = make_list_with_contacts(tenant, ["ana@example.org"])
        campaign_id = make_campaign(tenant, list_id)
    offered = ("/edit", "/send", 'id="test-send"', 'id="schedule"', 'id="ab-form"')
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    for action in (*offered, 'id="duplicate"'):
        assert action not in page, action
    _set_permissions(app, tenant, role_id, {Permission.MANAGE_CAMPAIGNS})
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    for action in ("/edit", 'id="test-send"', 'id="duplicate"'):
        assert action in page, action
    for action in (f"/campaigns/{campaign_id}/send", 'id="schedule"'):
        assert action not in page, action  # sending (and scheduling) is its own permission
    _set_permissions(app, tenant, role_id, {Permission.MANAGE_CAMPAIGNS, Permission.SEND_CAMPAIGNS})
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    for action in (f"/campaigns/{campaign_id}/send", 'id="schedule"'):
        assert action in page, action
