"""Single sign-on through OpenID Connect, against a provider the tests start on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from authlib.jose import JsonWebKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from accounts.models import Membership, SecurityEvent, SsoProvider, User
from core import db as core_db
from tests.factories import Tenant, login, make_tenant
from tests.oidc_provider import OidcProvider


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    started = OidcProvider().start()
    yield started
    started.stop()


@pytest.fixture
def sso_app(app_factory: Any) -> Flask:
    app: Flask = app_factory(SSO_ALLOW_LOCAL_ISSUERS=True)
    return app


def _owner(app: Flask, email: str = "owner@corp.example") -> Tenant:
    with app.app_context():
        return make_tenant(email=email)


def _set_up(app: Flask, provider: OidcProvider, tenant: Tenant, **fields: Any) -> Any:
    owner = app.test_client()
    login(owner, tenant.email)
    data = {
        "issuer": provider.url,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "email_domain": "corp.example",
        "default_role": "member",
        "enabled": "y",
        **fields,
    }
    return owner.post("/settings/sso", data=data)


def _sso_login(client: FlaskClient, provider: OidcProvider, email: str) -> Any:
    """The whole round trip a browser makes; returns the platform's answer to the callback."""
    started = client.post("/login/sso", data={"email": email})
    assert started.status_code == 302, started.get_data(as_text=True)
    back = provider.sign_in(started.headers["Location"])
    parts = urlsplit(back)
    return client.get(f"{parts.path}?{parts.query}")


def test_a_person_of_the_domain_joins_just_in_time_and_logs_in_again(
    sso_app: Flask, provider: OidcProvider
) -> None:
    tenant = _owner(sso_app)
    saved = _set_up(sso_app, provider, tenant)
    assert saved.status_code == 302, saved.get_data(as_text=True)

    person = sso_app.test_client()
    answer = _sso_login(person, provider, "Ana@corp.example")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/dashboard")
    assert person.get("/campaigns").status_code == 200  # a real, server-side session

    again = sso_app.test_client()
    assert _sso_login(again, provider, "ana@corp.example").status_code == 302
    with sso_app.app_context():
        user = core_db.session.scalars(select(User).where(User.email == "ana@corp.example")).one()
        roles = core_db.session.scalars(
            select(Membership.role).where(Membership.user_id == user.id)
        ).all()
        assert roles == ["member"]
        kinds = core_db.session.scalars(
            select(SecurityEvent.kind).where(SecurityEvent.actor_user_id == user.id)
        ).all()
        assert sorted(kinds) == ["login", "login", "member-added"]
    # The provider's secret is never shown again.
    owner = sso_app.test_client()
    login(owner, tenant.email)
    page = owner.get("/settings/sso").get_data(as_text=True)
    assert provider.client_secret not in page and "/login/sso/callback" in page

    logged_out = person.post("/logout")
    assert logged_out.status_code in (302, 303)
    assert person.get("/campaigns").status_code == 302


def test_the_chosen_role_is_given_and_an_existing_user_joins(
    sso_app: Flask, provider: OidcProvider
) -> None:
    tenant = _owner(sso_app)
    other = _owner(sso_app, email="ana@corp.example")  # Ana owns another organisation
    assert _set_up(sso_app, provider, tenant, default_role="admin").status_code == 302
    assert _sso_login(sso_app.test_client(), provider, "ana@corp.example").status_code == 302
    with sso_app.app_context():
        rows = core_db.session.execute(
            select(Membership.account_id, Membership.role)
            .join(User, User.id == Membership.user_id)
            .where(User.email == "ana@corp.example")
            .order_by(Membership.account_id)
        ).all()
    assert sorted(tuple(row) for row in rows) == sorted(
        [(tenant.account_id, "admin"), (other.account_id, "owner")]
    )


@pytest.mark.parametrize(
    ("misbehave", "message"),
    [
        (
            lambda p: setattr(
                p, "signing_key", JsonWebKey.generate_key("RSA", 2048, is_private=True)
            ),
            "ID token is not valid",
        ),
        (lambda p: setattr(p, "issuer_claim", "https://evil.example"), "ID token is not valid"),
        (lambda p: setattr(p, "audience_claim", "someone-else"), "ID token is not valid"),
        (lambda p: setattr(p, "nonce_claim", "replayed"), "ID token is not valid"),
        (lambda p: p.identity.update(email_verified=False), "has not verified your address"),
        (lambda p: p.identity.update(email="ana@elsewhere.example"), "not in the organisation"),
        (lambda p: setattr(p, "client_secret", "rotated"), "refused the login"),
    ],
)
def test_a_login_the_provider_cannot_vouch_for_is_refused(
    sso_app: Flask, provider: OidcProvider, misbehave: Any, message: str
) -> None:
    tenant = _owner(sso_app)
    assert _set_up(sso_app, provider, tenant).status_code == 302
    misbehave(provider)
    person = sso_app.test_client()
    answer = _sso_login(person, provider, "ana@corp.example")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/login/sso")
    page = person.get("/login/sso").get_data(as_text=True)
    assert message in page
    assert person.get("/campaigns").status_code == 302
    with sso_app.app_context():
        assert core_db.session.scalar(select(User).where(User.email.like("ana@%"))) is None


def test_a_forged_or_replayed_callback_is_refused(sso_app: Flask, provider: OidcProvider) -> None:
    tenant = _owner(sso_app)
    assert _set_up(sso_app, provider, tenant).status_code == 302
    person = sso_app.test_client()
    started = person.post("/login/sso", data={"email": "ana@corp.example"})
    back = urlsplit(provider.sign_in(started.headers["Location"]))
    forged = back.query.replace("state=", "state=x")
    assert person.get(f"{back.path}?{forged}").status_code == 303
    # The pending login was used up by the forged attempt: the real answer is refused too.
    assert person.get(f"{back.path}?{back.query}").status_code == 303
    stranger = sso_app.test_client()
    assert stranger.get(f"{back.path}?{back.query}").status_code == 303
    assert provider.token_requests == 0
    assert person.get("/campaigns").status_code == 302


def test_unknown_domains_and_disabled_providers_say_so(
    sso_app: Flask, provider: OidcProvider
) -> None:
    tenant = _owner(sso_app)
    assert _set_up(sso_app, provider, tenant, enabled="").status_code == 302
    person = sso_app.test_client()
    for email in ("ana@corp.example", "bo@nowhere.example"):
        answer = person.post("/login/sso", data={"email": email})
        assert answer.status_code == 422
        assert "not set up for this address" in answer.get_data(as_text=True)


def test_the_set_up_is_checked_and_only_owners_make_it(
    app_factory: Any, provider: OidcProvider
) -> None:
    app = app_factory()  # production rule: the server fetches only https on public addresses
    tenant = _owner(app)
    refused = _set_up(app, provider, tenant)
    assert refused.status_code == 422
    assert "must use https" in refused.get_data(as_text=True)
    private = _set_up(app, provider, tenant, issuer="https://10.1.2.3/realms/staff")
    assert "private or local network" in private.get_data(as_text=True)
    with app.app_context():
        assert core_db.session.scalar(select(SsoProvider)) is None
        from tests.factories import make_member

        make_member(tenant, "admin@corp.example", "admin")
    admin = app.test_client()
    login(admin, "admin@corp.example")
    assert admin.get("/settings/sso").status_code == 403
