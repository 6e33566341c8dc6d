"""Single sign-on with OpenID Connect: one identity provider per account.

The flow is the authorisation code flow with PKCE (RFC 7636), a ``state`` bound to the browser
and a ``nonce`` bound to the ID token. The ID token's signature is checked against the
provider's published keys, and its issuer, audience, expiry and nonce against what was asked.
Only a verified address in the provider's ``email_domain`` logs in; the first login of such a
person creates their user and membership in the provider's default role (just-in-time).

The platform fetches the provider's discovery document, keys and tokens itself, so an owner
could point it at an internal address: those fetches go only to https URLs of public
addresses, unless the operator sets ``SSO_ALLOW_LOCAL_ISSUERS`` (development and tests).
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from accounts.audit import record_security_event
from accounts.models import Membership, SecurityEventKind, SsoProvider, User
from core import db
from core.db import utcnow
from core.errors import NotFoundError, ValidationError
from core.urls import external_url

FETCH_TIMEOUT_SECONDS = 5
SSO_ROLES = ("member", "admin")


class SsoError(Exception):
    """A login through the provider that cannot go on; the message is shown to the person."""


@dataclass(frozen=True)
class Discovery:
    """What the login needs from the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


def _allow_local() -> bool:
    return bool(current_app.config.get("SSO_ALLOW_LOCAL_ISSUERS", False))


def check_fetchable(url: str) -> None:
    """Refuse a URL the server must not fetch: not https, or a host that resolves to a
    loopback, private, link-local or reserved address (unless SSO_ALLOW_LOCAL_ISSUERS)."""
    parts = urlsplit(url)
    allow_local = _allow_local()
    if parts.scheme != "https" and not (allow_local and parts.scheme == "http"):
        raise SsoError("The provider's addresses must use https.")
    if not parts.hostname:
        raise SsoError("The provider's address has no host name.")
    if allow_local:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise SsoError(f"The provider's host {parts.hostname} cannot be found.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise SsoError("The provider's host is on a private or local network.")


def _get_json(url: str) -> dict[str, Any]:
    # requests and Authlib are imported where they are used: most web workers never serve a
    # single sign-on, and they would add megabytes to each one's memory.
    import requests

    check_fetchable(url)
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, allow_redirects=False)
        response.raise_for_status()
        found = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SsoError(f"The provider did not answer at {url}.") from exc
    if not isinstance(found, dict):
        raise SsoError(f"The provider's answer at {url} is not a JSON object.")
    return found


def discover(issuer: str) -> Discovery:
    """The provider's endpoints from ``<issuer>/.well-known/openid-configuration`` (OpenID
    Connect Discovery 1.0), checked: the document names the same issuer, and every endpoint the
    server fetches passes :func:`check_fetchable`. Raises SsoError."""
    issuer = issuer.rstrip("/")
    document = _get_json(f"{issuer}/.well-known/openid-configuration")
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise SsoError("The provider's discovery document names another issuer.")
    try:
        found = Discovery(
            issuer=str(document["issuer"]),
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
        )
    except KeyError as exc:
        raise SsoError(f"The provider's discovery document lacks {exc.args[0]}.") from exc
    check_fetchable(found.token_endpoint)
    check_fetchable(found.jwks_uri)
    if urlsplit(found.authorization_endpoint).scheme not in ("https", "http"):
        raise SsoError("The provider's authorisation address is not a web address.")
    return found


def _clean_domain(domain: str) -> str:
    cleaned = domain.strip().lower().removeprefix("@").rstrip(".")
    labels = cleaned.split(".")
    if len(labels) < 2 or not all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels
    ):
        raise ValidationError("Enter a domain such as shop.example.", field="email_domain")
    return cleaned


def provider_for_account(account_id: int) -> SsoProvider | None:
    """The account's provider, if it set one up."""
    found: SsoProvider | None = db.session.scalar(
        select(SsoProvider).where(SsoProvider.account_id == account_id)
    )
    return found


def save_provider(
    account_id: int,
    actor_user_id: int,
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    email_domain: str,
    default_role: str,
    enabled: bool,
) -> SsoProvider:
    """Set up or change the account's provider after checking that its discovery document
    answers. An empty ``client_secret`` keeps the stored one. Raises ValidationError."""
    issuer = issuer.strip().rstrip("/")
    client_id = client_id.strip()
    if not client_id:
        raise ValidationError("Enter the client id the provider gave you.", field="client_id")
    if default_role not in SSO_ROLES:
        raise ValidationError("Choose member or admin.", field="default_role")
    domain = _clean_domain(email_domain)
    taken = db.session.scalar(
        select(SsoProvider.account_id).where(
            SsoProvider.email_domain == domain, SsoProvider.account_id != account_id
        )
    )
    if taken is not None:
        raise ValidationError(
            "Another organisation already signs in people of this domain.", field="email_domain"
        )
    try:
        discover(issuer)
    except SsoError as exc:
        raise ValidationError(str(exc), field="issuer") from exc
    provider = provider_for_account(account_id)
    if provider is None:
        if not client_secret:
            raise ValidationError("Enter the client secret.", field="client_secret")
        provider = SsoProvider(account_id=account_id)
        db.session.add(provider)
    provider.issuer = issuer
    provider.client_id = client_id
    if client_secret:
        provider.client_secret = client_secret
    provider.email_domain = domain
    provider.default_role = default_role
    provider.enabled = enabled
    record_security_event(
        account_id,
        actor_user_id,
        SecurityEventKind.SETTINGS_CHANGED,
        {
            "section": "single sign-on",
            "issuer": issuer,
            "domain": domain,
            "role": default_role,
            "enabled": enabled,
        },
    )
    db.session.commit()
    return provider


def delete_provider(account_id: int, actor_user_id: int) -> None:
    """Remove the account's provider; its members keep their memberships (and log in with a
    password, after choosing one through "Forgot your password?")."""
    provider = provider_for_account(account_id)
    if provider is None:
        raise NotFoundError("single sign-on")
    db.session.delete(provider)
    record_security_event(
        account_id,
        actor_user_id,
        SecurityEventKind.SETTINGS_CHANGED,
        {"section": "single sign-on", "removed": True},
    )
    db.session.commit()


def _redirect_uri() -> str:
    return external_url("accounts.sso_callback")


def begin_login(email: str) -> tuple[str, dict[str, Any]]:
    """Where to send a person who logs in as ``email`` through single sign-on, and what the
    browser must keep until they come back (state, nonce, PKCE verifier; kept in the signed
    session cookie, never in a URL). Raises ValidationError when no enabled provider serves
    the address's domain."""
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session

    domain = email.strip().lower().rpartition("@")[2]
    provider: SsoProvider | None = db.session.scalar(
        select(SsoProvider).where(SsoProvider.email_domain == domain, SsoProvider.enabled)
    )
    if not domain or provider is None:
        raise ValidationError(
            "Single sign-on is not set up for this address's domain. Log in with your password.",
            field="email",
        )
    try:
        found = discover(provider.issuer)
    except SsoError as exc:
        raise ValidationError(str(exc), field="email") from exc
    verifier = generate_token(64)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    client = OAuth2Session(
        provider.client_id,
        redirect_uri=_redirect_uri(),
        scope="openid email profile",
        code_challenge_method="S256",
    )
    url, _state = client.create_authorization_url(
        found.authorization_endpoint,
        state=state,
        nonce=nonce,
        code_verifier=verifier,
        login_hint=email.strip(),
    )
    pending = {"provider": provider.id, "state": state, "nonce": nonce, "verifier": verifier}
    return url, pending


def _claims(provider: SsoProvider, found: Discovery, code: str, pending: dict[str, Any]) -> Any:
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

    check_fetchable(found.token_endpoint)
    client = OAuth2Session(
        provider.client_id,
        provider.client_secret,
        redirect_uri=_redirect_uri(),
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
    )
    try:
        token = client.fetch_token(
            found.token_endpoint,
            code=code,
            code_verifier=pending["verifier"],
            timeout=FETCH_TIMEOUT_SECONDS,
        )
    except Exception as exc:  # authlib raises OAuthError and requests errors
        raise SsoError("The provider refused the login.") from exc
    id_token = token.get("id_token")
    if not id_token:
        raise SsoError("The provider returned no ID token.")
    keys = JsonWebKey.import_key_set(_get_json(found.jwks_uri))
    try:
        claims = jwt.decode(
            id_token,
            keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "values": [found.issuer]}},
            claims_params={
                "nonce": pending["nonce"],
                "client_id": provider.client_id,
                "access_token": token.get("access_token"),
            },
        )
        claims.validate(leeway=60)
    except Exception as exc:
        raise SsoError("The provider's ID token is not valid.") from exc
    return claims


def finish_login(pending: dict[str, Any] | None, args: dict[str, str]) -> tuple[int, int]:
    """Complete a login the provider sent back: (user id, account id) of the member now
    logged in, created just in time when new. Raises SsoError with a message for the person
    (wrong or missing state, refusal, invalid token, unverified or foreign address)."""
    if not pending or not secrets.compare_digest(
        str(args.get("state", "")), str(pending.get("state", ""))
    ):
        raise SsoError("This sign-in link has expired. Start again.")
    if args.get("error"):
        raise SsoError("The provider did not sign you in.")
    provider = db.session.get(SsoProvider, int(pending.get("provider", 0)))
    if provider is None or not provider.enabled:
        raise SsoError("Single sign-on is no longer set up for this organisation.")
    claims = _claims(provider, discover(provider.issuer), args.get("code", ""), pending)
    email = str(claims.get("email") or "").strip().lower()
    if claims.get("email_verified") is not True:
        raise SsoError("The provider has not verified your address.")
    if email.rpartition("@")[2] != provider.email_domain:
        raise SsoError("Your address is not in the organisation's domain.")
    return _member_for(provider, email, str(claims.get("name") or ""))


def _member_for(provider: SsoProvider, email: str, name: str) -> tuple[int, int]:
    from accounts.services import unusable_password_hash

    user: User | None = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name[:200], password_hash=unusable_password_hash())
        db.session.add(user)
        db.session.flush()
    user.last_login_at = utcnow()
    membership = db.session.scalar(
        select(Membership).where(
            Membership.account_id == provider.account_id, Membership.user_id == user.id
        )
    )
    if membership is None:
        db.session.add(
            Membership(account_id=provider.account_id, user_id=user.id, role=provider.default_role)
        )
        record_security_event(
            provider.account_id,
            user.id,
            SecurityEventKind.MEMBER_ADDED,
            {"member": email, "role": provider.default_role, "via": "single sign-on"},
        )
    from accounts import twofactor

    if not twofactor.is_enabled(user.id):  # else recorded once the second factor is right
        record_security_event(
            provider.account_id, user.id, SecurityEventKind.LOGIN, {"method": "single sign-on"}
        )
    db.session.commit()
    return user.id, provider.account_id
