"""Where an account's campaigns come from and go through: verified sender addresses (with their
confirmation link), the account's SMTP servers, its sending limits, and its DKIM keys."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.input_checks import one_line
from campaigns.models import DkimKey, Sender, SendingSettings, SmtpServer
from core import db
from core.db import utcnow
from core.errors import NotFoundError, ValidationError
from core.mail import SMTPSettings, dkim_dns_record, generate_dkim_key, send_system_mail
from core.signing import BadTokenError, Purpose, sign_timed, unsign_timed
from core.urls import external_url
from subscribers.normalise import normalise_email

SENDER_VERIFY_MAX_AGE = 7 * 24 * 3600


def is_verified_sender(account_id: int, email: str) -> bool:
    """True when ``email`` is one of the account's verified sender addresses."""
    return (
        db.session.scalar(
            select(Sender.id).where(
                Sender.account_id == account_id,
                Sender.email == email.strip().lower(),
                Sender.verified_at.is_not(None),
            )
        )
        is not None
    )


def add_sender(account_id: int, email: str, name: str = "", verified: bool = False) -> Sender:
    """Register a sender address and email it a confirmation link (or mark it verified, for
    operators and the demo). Idempotent for an existing address (re-sends the link)."""
    try:
        email = normalise_email(email).lower()
    except ValidationError as exc:
        raise ValidationError(exc.message, field="email") from exc
    name = one_line(name, "name", "sender name")
    sender = db.session.scalar(
        select(Sender).where(Sender.account_id == account_id, Sender.email == email)
    )
    if sender is None:
        sender = Sender(account_id=account_id, email=email, name=name)
        db.session.add(sender)
        db.session.flush()
    if verified and sender.verified_at is None:
        sender.verified_at = utcnow()
    db.session.commit()
    if sender.verified_at is None:
        token = sign_timed(Purpose.SENDER_VERIFY, [sender.id])
        link = external_url("campaigns.verify_sender", token=token)
        send_system_mail(
            email,
            "Confirm your sender address",
            "Someone asked to send campaigns from this address on Envoy.\n\n"
            f"Confirm it here (valid for 7 days):\n{link}\n\nIf it was not you, ignore this.",
        )
    return sender


def sender_for_token(token: str) -> Sender:
    """The sender a confirmation token names; BadTokenError when forged or expired."""
    payload = unsign_timed(Purpose.SENDER_VERIFY, token, max_age=SENDER_VERIFY_MAX_AGE)
    if not isinstance(payload, list) or len(payload) != 1 or not isinstance(payload[0], int):
        raise BadTokenError("malformed sender token")
    sender = db.session.get(Sender, payload[0])
    if sender is None:
        raise BadTokenError("unknown sender")
    return sender


def confirm_sender(token: str) -> Sender:
    """Mark the sender of a confirmation token verified (POST only). Idempotent."""
    sender = sender_for_token(token)
    if sender.verified_at is None:
        sender.verified_at = utcnow()
        db.session.commit()
    return sender


def delete_sender(account_id: int, sender_id: int) -> None:
    """Remove one of the account's sender addresses."""
    sender = db.session.scalar(
        select(Sender).where(Sender.id == sender_id, Sender.account_id == account_id)
    )
    if sender is None:
        raise NotFoundError("sender")
    db.session.delete(sender)
    db.session.commit()


def save_smtp_server(
    account_id: int, *, name: str, url: str, max_per_second: float, max_connections: int
) -> SmtpServer:
    """Add an SMTP server to the account (``smtp://user:pass@host:587`` forms)."""
    try:
        SMTPSettings.from_url(url.strip())
    except ValueError as exc:
        raise ValidationError(str(exc), field="url") from exc
    if max_per_second < 0:
        raise ValidationError("Use 0 (no limit) or a positive rate.", field="max_per_second")
    if not 1 <= max_connections <= 50:
        raise ValidationError("Use between 1 and 50 connections.", field="max_connections")
    server = SmtpServer(
        account_id=account_id,
        name=name.strip() or url.split("@")[-1],
        url=url.strip(),
        max_per_second=max_per_second,
        max_connections=max_connections,
    )
    db.session.add(server)
    db.session.commit()
    return server


def delete_smtp_server(account_id: int, server_id: int) -> None:
    """Remove one of the account's SMTP servers."""
    server = db.session.scalar(
        select(SmtpServer).where(SmtpServer.id == server_id, SmtpServer.account_id == account_id)
    )
    if server is None:
        raise NotFoundError("smtp server")
    db.session.delete(server)
    db.session.commit()


def update_sending_settings(account_id: int, max_per_second: float, max_per_domain: int) -> None:
    """Set the account's messages-per-second limit and per-recipient-domain concurrency."""
    if max_per_second < 0 or max_per_domain < 0:
        raise ValidationError("Limits are 0 (none) or positive.")
    settings = db.session.get(SendingSettings, account_id)
    if settings is None:
        settings = SendingSettings(account_id=account_id)
        db.session.add(settings)
    settings.max_per_second = max_per_second
    settings.max_per_domain = max_per_domain
    db.session.commit()


def create_dkim_key(
    account_id: int, domain: str, selector: str = "envoy", private_key_pem: str | None = None
) -> DkimKey:
    """Create (or replace) the account's DKIM key for ``domain``; a new 2048-bit key unless one
    is given. Publish :func:`dkim_record` at ``<selector>._domainkey.<domain>``."""
    domain = domain.strip().lower().strip(".")
    if not domain or "." not in domain or any(c.isspace() for c in domain):
        raise ValidationError("Give a domain such as example.com.", field="domain")
    if not selector.replace("-", "").isalnum():
        raise ValidationError("A selector is letters, digits and dashes.", field="selector")
    if private_key_pem is None:
        private_key_pem, _record = generate_dkim_key()
    else:
        try:
            dkim_dns_record(private_key_pem)
        except (ValueError, TypeError) as exc:
            raise ValidationError("That is not an RSA private key in PEM.", field="key") from exc
    key = db.session.scalar(
        select(DkimKey).where(DkimKey.account_id == account_id, DkimKey.domain == domain)
    )
    if key is None:
        key = DkimKey(account_id=account_id, domain=domain)
        db.session.add(key)
    key.selector = selector
    key.private_key_pem = private_key_pem
    db.session.commit()
    return key


def dkim_record(key: DkimKey) -> str:
    """The DNS TXT value publishing a key's public half."""
    return dkim_dns_record(key.private_key_pem)


def delete_dkim_key(account_id: int, key_id: int) -> None:
    """Remove one of the account's DKIM keys (messages are then sent unsigned)."""
    key = db.session.scalar(
        select(DkimKey).where(DkimKey.id == key_id, DkimKey.account_id == account_id)
    )
    if key is None:
        raise NotFoundError("dkim key")
    db.session.delete(key)
    db.session.commit()
