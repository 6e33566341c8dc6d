"""Passkeys (WebAuthn, through duo-labs' ``webauthn``) as a second factor next to the app.

A passkey can be added once the authenticator app is on (so recovery codes exist and turning
two-factor off removes both). The relying party is the host of ``BASE_URL`` and the only
accepted origin is ``BASE_URL``'s scheme, host and port. Challenges are random, kept on the
server side of the login (``login_challenges.passkey_challenge``) or in the signed session of a
logged-in person adding one, and used once. Only public keys and signature counters are kept.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select

# webauthn (and the crypto it brings) is imported inside the functions that use it: most web
# workers never serve a passkey, and it would add megabytes to each one's memory.
if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

from accounts.audit import record_for_user
from accounts.models import LoginChallenge, Passkey, SecurityEventKind, User
from core import db
from core.db import utcnow
from core.errors import NotFoundError, ValidationError


def _relying_party() -> tuple[str, str]:
    """(RP id, origin) from BASE_URL."""
    parts = urlsplit(str(current_app.config["BASE_URL"]))
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def _descriptors(user_id: int) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

    return [
        PublicKeyCredentialDescriptor(id=base64url_to_bytes(credential_id))
        for credential_id in db.session.scalars(
            select(Passkey.credential_id).where(Passkey.user_id == user_id)
        )
    ]


def has_passkey(user_id: int) -> bool:
    """Whether the user has at least one passkey."""
    return db.session.scalar(select(Passkey.id).where(Passkey.user_id == user_id)) is not None


def registration_options(user_id: int) -> tuple[str, str]:
    """The options for ``navigator.credentials.create`` (JSON) and their challenge (base64url,
    for the caller to keep until :func:`register`). ValidationError unless the authenticator
    app is on."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers import bytes_to_base64url
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    from accounts import twofactor

    user = db.session.get(User, user_id)
    if user is None:
        raise NotFoundError("user")
    if not twofactor.is_enabled(user_id):
        raise ValidationError("Turn on two-factor with an authenticator app first.")
    rp_id, _origin = _relying_party()
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=str(current_app.config["TOTP_ISSUER"]),
        user_id=f"envoy-user-{user.id}".encode(),
        user_name=user.email,
        user_display_name=user.name or user.email,
        exclude_credentials=_descriptors(user_id),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def register(user_id: int, credential: dict[str, Any], challenge: str, name: str) -> Passkey:
    """Keep the passkey the browser made for ``challenge``. ValidationError when the answer
    does not verify (wrong origin, challenge or signature). Commits."""
    from webauthn import verify_registration_response
    from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
    from webauthn.helpers.exceptions import WebAuthnException

    rp_id, origin = _relying_party()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id,
            expected_origin=origin,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"The passkey could not be added: {exc}") from None
    passkey = Passkey(
        user_id=user_id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=(name.strip() or "Passkey")[:100],
    )
    db.session.add(passkey)
    record_for_user(user_id, user_id, SecurityEventKind.PASSKEY_ADDED, {"name": passkey.name})
    db.session.commit()
    return passkey


def remove(user_id: int, passkey_id: int) -> bool:
    """Delete one of the user's passkeys; False when it is not theirs. Commits."""
    result = db.session.execute(
        delete(Passkey)
        .where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        .execution_options(synchronize_session=False)
    )
    removed = int(result.rowcount or 0) == 1  # type: ignore[attr-defined]
    if removed:
        record_for_user(user_id, user_id, SecurityEventKind.PASSKEY_REMOVED)
    db.session.commit()
    return removed


def authentication_options(challenge: LoginChallenge) -> str:
    """Options for ``navigator.credentials.get`` on a half-done login (JSON); the challenge is
    kept on the login's row (a new one replaces it). Commits."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers import bytes_to_base64url
    from webauthn.helpers.structs import UserVerificationRequirement

    rp_id, _origin = _relying_party()
    options = generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=_descriptors(challenge.user_id),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    challenge.passkey_challenge = bytes_to_base64url(options.challenge)
    db.session.commit()
    return options_to_json(options)


def verify_assertion(challenge: LoginChallenge, credential: dict[str, Any]) -> bool:
    """Whether ``credential`` is a valid signature by one of the user's passkeys over the
    login's current challenge; the challenge is spent either way and the signature counter
    must grow (a cloned authenticator is refused). No commit."""
    from webauthn import verify_authentication_response
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.exceptions import WebAuthnException

    expected = challenge.passkey_challenge
    challenge.passkey_challenge = None
    if expected is None or not isinstance(credential.get("id"), str):
        return False
    found = db.session.scalar(
        select(Passkey).where(
            Passkey.user_id == challenge.user_id, Passkey.credential_id == credential["id"]
        )
    )
    if found is None:
        return False
    rp_id, origin = _relying_party()
    try:
        verified = verify_authentication_response(
            credential=json.dumps(credential),
            expected_challenge=base64url_to_bytes(expected),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=found.public_key,
            credential_current_sign_count=found.sign_count,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        return False
    found.sign_count = verified.new_sign_count
    found.last_used_at = utcnow()
    return True
