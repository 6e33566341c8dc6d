"""Every write and rule about lists, contacts, subscriptions and consent. Scoped to an account.

Consent: every change of a subscription writes a :class:`~subscribers.models.ConsentRecord`
(what, when, through which form, import or action). The IP address is kept only when the
account turns "record IP with consent" on, and then only as the prefix
:func:`privacy.policy.reduce_ip` leaves; the raw address given to these functions is reduced at
once and goes no further.

Public links: the double opt-in link (``Purpose.SIGNUP_CONFIRM``, timed, single use through the
:class:`~subscribers.models.SignupConfirmation` row) and the preference-centre link
(``Purpose.PREFERENCES``, reachable from every email through :func:`preference_url_for_message`)
carry ids only.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app
from sqlalchemy import select, update

from core import db
from core.db import utcnow
from core.errors import NotFoundError, ValidationError
from core.mail import send_system_mail
from core.signing import BadTokenError, Purpose, sign, sign_timed, unsign, unsign_timed
from core.urls import external_url
from privacy import reach
from privacy.policy import reduce_ip
from subscribers import suppression
from subscribers.models import (
    BlockedDomain,
    ConsentRecord,
    Contact,
    ImportJob,
    ImportStatus,
    MailingList,
    Segment,
    SignupConfirmation,
    SubscriberSettings,
    Subscription,
    SubscriptionStatus,
)
from subscribers.normalise import normalise_email
from webhooks import events as webhook_events
from webhooks.models import EventType

#: A new confirmation email for the same contact and list is sent at most this often.
SIGNUP_RESEND_SECONDS = 600
#: Suppression reasons a person's own confirmed opt-in lifts for the account it opted in to;
#: the others (bounce, complaint, erasure, operator blocks) are never lifted by a form. An
#: objection is held platform-wide, which an opt-in to one account does not lift.
LIFTED_BY_OPT_IN = ("unsubscribed", "objected")
STATUSES = ("unconfirmed", "subscribed", "unsubscribed")


class LinkExpiredError(BadTokenError):
    """A genuine link that is too old."""


class LinkUsedError(BadTokenError):
    """A genuine link that was already used."""


# --- lists and contacts ------------------------------------------------------------------


def get_list(account_id: int, list_id: int) -> MailingList:
    """The account's list, or NotFoundError (also when it belongs to another account)."""
    found = db.session.scalar(
        select(MailingList).where(MailingList.id == list_id, MailingList.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("list")
    return found


def get_contact(account_id: int, contact_id: int) -> Contact:
    """The account's contact, or NotFoundError (also when it belongs to another account)."""
    found = db.session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("contact")
    return found


def create_list(account_id: int, name: str, description: str = "") -> MailingList:
    """Create a list in the account."""
    name = name.strip()
    if not name:
        raise ValidationError("Give the list a name.", field="name")
    mailing_list = MailingList(account_id=account_id, name=name, description=description.strip())
    db.session.add(mailing_list)
    db.session.commit()
    return mailing_list


def set_signup_form(account_id: int, list_id: int, enabled: bool) -> MailingList:
    """Turn the list's public sign-up form on or off; its address stays the same."""
    mailing_list = get_list(account_id, list_id)
    mailing_list.signup_enabled = enabled
    if enabled and not mailing_list.signup_key:
        mailing_list.signup_key = secrets.token_urlsafe(16)
    db.session.commit()
    return mailing_list


def _refuse_suppressed(account_id: int, address: str) -> None:
    reason = suppression.suppression_reason(account_id, address)
    if reason is not None:
        raise ValidationError(
            f"{address} is on the suppression list ({reason.replace('_', ' ')}); "
            "it cannot be added.",
            field="email",
        )


def _new_contact(
    account_id: int,
    address: str,
    name: str,
    attributes: dict[str, Any] | None,
    source: str,
) -> Contact:
    """Add a contact for a normalised address not yet in the account (no commit)."""
    contact = Contact(
        account_id=account_id,
        email=address,
        name=name.strip()[:200],
        attributes=check_attributes(dict(attributes or {})),
        source=source,
    )
    db.session.add(contact)
    db.session.flush()
    return contact


def add_contact_to_list(
    account_id: int,
    list_id: int,
    email: str,
    name: str = "",
    attributes: dict[str, Any] | None = None,
    source: str = "manual",
) -> Contact:
    """Add (or find) the contact by normalised address and subscribe it to the list.

    Refuses suppressed or blocked addresses, and contacts who unsubscribed from the list (only
    they can subscribe again). Writes a consent record.
    """
    mailing_list = get_list(account_id, list_id)
    address = normalise_email(email)
    _refuse_suppressed(account_id, address)
    contact = _find_contact(account_id, address)
    if contact is None:
        contact = _new_contact(account_id, address, name, attributes, source)
    subscription = _subscription(contact.id, mailing_list.id)
    if subscription is None:
        now = utcnow()
        db.session.add(
            Subscription(
                contact_id=contact.id,
                list_id=mailing_list.id,
                status="subscribed",
                confirmed_at=now,
            )
        )
        _consent(account_id, contact.id, mailing_list.id, "subscribed", "manual", source, None)
    elif subscription.status == "unsubscribed":
        raise ValidationError(
            f"{address} unsubscribed from this list; only they can subscribe again.", field="email"
        )
    db.session.commit()
    return contact


def upsert_contact(
    account_id: int,
    email: str,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    source: str = "api",
    *,
    must_be_new: bool = False,
) -> tuple[Contact, bool]:
    """The account's contact for ``email`` (normalised), created when missing (refused when the
    address is suppressed or blocked, like every addition) or else rectified: ``name`` and
    ``attributes`` replace what is stored when given (None keeps it). With ``must_be_new`` an
    existing contact is refused. Subscribes to nothing. Returns (contact, created). Commits."""
    address = normalise_email(email)
    contact = _find_contact(account_id, address)
    if contact is None:
        _refuse_suppressed(account_id, address)
        contact = _new_contact(account_id, address, name or "", attributes, source)
        db.session.commit()
        return contact, True
    if must_be_new:
        raise ValidationError(f"{address} is already a contact of this account.", field="email")
    if name is not None:
        contact.name = name.strip()[:200]
    if attributes is not None:
        contact.attributes = check_attributes(attributes)
    db.session.commit()
    return contact, False


def update_contact(
    account_id: int, contact_id: int, name: str, attributes: dict[str, Any]
) -> Contact:
    """Rectify a contact's name and custom attributes (usable in templates)."""
    contact = get_contact(account_id, contact_id)
    contact.name = name.strip()[:200]
    contact.attributes = check_attributes(attributes)
    db.session.commit()
    return contact


def check_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes as stored: string keys of at most 64 characters, scalar JSON values, no text
    with a NUL or a lone surrogate (ValidationError otherwise)."""
    clean: dict[str, Any] = {}
    for key, value in attributes.items():
        key = str(key).strip()
        if not key or len(key) > 64:
            raise ValidationError(f"Attribute name {key!r} must be 1 to 64 characters.")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValidationError(f"Attribute {key!r} must be text, a number or true/false.")
        if _unreadable(key) or (isinstance(value, str) and _unreadable(value)):
            raise ValidationError(f"Attribute {key!r} holds a character that is not text.")
        clean[key] = value
    return clean


def _unreadable(value: str) -> bool:
    # NUL or a lone surrogate: PostgreSQL's json keeps them as escapes, but cannot read them
    # back as text (->>) or jsonb (the attribute values index, migration 0328).
    return "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)


def _find_contact(account_id: int, address: str) -> Contact | None:
    return db.session.scalar(
        select(Contact).where(Contact.account_id == account_id, Contact.email == address)
    )


def _subscription(contact_id: int, list_id: int) -> Subscription | None:
    return db.session.scalar(
        select(Subscription).where(
            Subscription.contact_id == contact_id, Subscription.list_id == list_id
        )
    )


# --- consent -----------------------------------------------------------------------------


def get_settings(account_id: int) -> SubscriberSettings:
    """The account's subscriber settings (the defaults when never changed)."""
    found = db.session.get(SubscriberSettings, account_id)
    return found or SubscriberSettings(account_id=account_id, record_consent_ip=False)


def update_settings(account_id: int, record_consent_ip: bool) -> SubscriberSettings:
    """Choose whether consent records keep the (truncated) IP address."""
    found = db.session.get(SubscriberSettings, account_id)
    if found is None:
        found = SubscriberSettings(account_id=account_id)
        db.session.add(found)
    found.record_consent_ip = record_consent_ip
    db.session.commit()
    return found


def _consent(
    account_id: int,
    contact_id: int,
    list_id: int | None,
    action: str,
    source: str,
    detail: str,
    client_ip: str | None,
) -> None:
    """Record a consent change (no commit). ``client_ip`` is reduced here or dropped."""
    ip_prefix = None
    if client_ip and get_settings(account_id).record_consent_ip:
        ip_prefix = reduce_ip(client_ip)
    db.session.add(
        ConsentRecord(
            account_id=account_id,
            contact_id=contact_id,
            list_id=list_id,
            action=action,
            source=source,
            detail=detail[:200],
            ip_prefix=ip_prefix,
        )
    )
    _emit_consent_event(account_id, contact_id, list_id, action, source)


#: Consent actions that are webhook events.
_CONSENT_EVENTS = {
    "subscribed": EventType.CONTACT_SUBSCRIBED,
    "resubscribed": EventType.CONTACT_SUBSCRIBED,
    "unsubscribed": EventType.CONTACT_UNSUBSCRIBED,
    "unsubscribed_all": EventType.CONTACT_UNSUBSCRIBED,
}


def _emit_consent_event(
    account_id: int, contact_id: int, list_id: int | None, action: str, source: str
) -> None:
    """``contact.subscribed`` / ``contact.unsubscribed`` for a consent change (no commit)."""
    event_type = _CONSENT_EVENTS.get(action)
    if event_type is None or not webhook_events.subscribed(account_id, event_type):
        return
    contact = db.session.get(Contact, contact_id)
    data = {
        "contact_id": contact_id,
        "email": contact.email if contact is not None else None,
        "list_id": list_id,
        "all_lists": action == "unsubscribed_all",
        "source": source,
    }
    webhook_events.emit(account_id, event_type, data, contact_id=contact_id)


def _set_status(
    account_id: int,
    subscription: Subscription,
    status: str,
    source: str,
    detail: str,
    client_ip: str | None,
) -> bool:
    """Change a subscription's status and record it; False when nothing changed."""
    if subscription.status == status:
        return False
    now = utcnow()
    previous = subscription.status
    subscription.status = SubscriptionStatus(status)
    subscription.updated_at = now
    if status == "subscribed":
        subscription.confirmed_at = now
        subscription.unsubscribed_at = None
        action = "resubscribed" if previous == "unsubscribed" else "subscribed"
    elif status == "unsubscribed":
        subscription.unsubscribed_at = now
        action = "unsubscribed"
    else:
        action = "signup_requested"
    _consent(
        account_id, subscription.contact_id, subscription.list_id, action, source, detail, client_ip
    )
    return True


def unsubscribe_contact(
    account_id: int,
    contact_id: int,
    list_id: int | None,
    source: str,
    client_ip: str | None = None,
) -> bool:
    """Unsubscribe a contact from one list (or every list when ``list_id`` is None, which also
    puts the address on the account's suppression list). Every change is a consent record.

    Idempotent. Returns True when the contact exists in the account. Commits.
    """
    found = unsubscribe_lists(account_id, contact_id, list_id, source, client_ip)
    db.session.commit()
    return found is not None


@dataclass(frozen=True)
class Unsubscribed:
    """What one unsubscribe changed: the lists it took the contact off, and whether it put the
    address on the account's suppression list (so that an undo gives back exactly that)."""

    list_ids: list[int]
    suppressed: bool

    @property
    def changed(self) -> bool:
        return bool(self.list_ids) or self.suppressed


def unsubscribe_lists(
    account_id: int,
    contact_id: int,
    list_id: int | None,
    source: str,
    client_ip: str | None = None,
) -> Unsubscribed | None:
    """:func:`unsubscribe_contact` without the commit, saying what changed; None when the
    contact is not in the account. A repeat changes nothing and records nothing."""
    contact = db.session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    if contact is None:
        return None
    kind, _, detail = source.partition(":")
    query = select(Subscription).where(Subscription.contact_id == contact.id)
    if list_id is not None:
        query = query.where(Subscription.list_id == list_id)
    changed = [
        subscription.list_id
        for subscription in db.session.scalars(query.order_by(Subscription.list_id))
        if _set_status(account_id, subscription, "unsubscribed", kind, detail, client_ip)
    ]
    suppressed = False
    if list_id is None:
        suppressed = suppression.suppress(account_id, contact.email, "unsubscribed")
        if changed or suppressed:
            _consent(account_id, contact.id, None, "unsubscribed_all", kind, detail, client_ip)
    db.session.flush()
    return Unsubscribed(list_ids=changed, suppressed=suppressed)


def undo_unsubscribe(
    account_id: int, contact_id: int, undone: Unsubscribed, client_ip: str | None = None
) -> int:
    """Give back what an unsubscribe changed, at the person's own request moments later:
    subscribe again to those lists (a ``resubscribed`` consent record each, source
    ``unsubscribe``, detail ``undo``) and lift the suppression it added. Lists changed since
    stay as they are. Returns how many subscriptions changed; no commit."""
    contact = db.session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    if contact is None:
        return 0
    if undone.suppressed:
        suppression.unsuppress(account_id, contact.email, LIFTED_BY_OPT_IN)
    changed = 0
    for list_id in undone.list_ids:
        subscription = _subscription(contact.id, list_id)
        if subscription is not None and subscription.status == "unsubscribed":
            changed += _set_status(
                account_id, subscription, "subscribed", "unsubscribe", "undo", client_ip
            )
    db.session.flush()
    return changed


# --- public sign-up with double opt-in ---------------------------------------------------


def list_for_signup(signup_key: str) -> MailingList:
    """The list whose public form lives at ``signup_key``; NotFoundError when off or unknown."""
    found = db.session.scalar(
        select(MailingList).where(
            MailingList.signup_key == signup_key, MailingList.signup_enabled.is_(True)
        )
    )
    if found is None:
        raise NotFoundError("sign-up form")
    return found


def request_signup(signup_key: str, email: str, name: str, client_ip: str | None) -> None:
    """Someone asked to join a list through its public form.

    Invalid addresses raise ValidationError. Otherwise the answer is the same whatever
    happened, so the form reveals nothing about who is on a list: a confirmation email is sent
    (after the commit) unless the address is blocked or suppressed for a reason only the
    platform can lift, the contact is already subscribed, or a confirmation went out in the
    last ten minutes. The contact stays "unconfirmed", and so receives nothing else, until the
    link is used.
    """
    _request_opt_in(list_for_signup(signup_key), email, name, client_ip, "form")


def request_opt_in(account_id: int, list_id: int, email: str, name: str = "") -> None:
    """The account asks a person to join one of its lists by double opt-in (the API): the same
    rules and the same confirmation email as the public form, whether the form is on or not.
    The contact stays "unconfirmed" until the link is used. Commits."""
    _request_opt_in(get_list(account_id, list_id), email, name, None, "api")


def _request_opt_in(
    mailing_list: MailingList, email: str, name: str, client_ip: str | None, source: str
) -> None:
    from subscribers import tasks

    account_id = mailing_list.account_id
    address = normalise_email(email)
    reason = suppression.suppression_reason(account_id, address)
    if reason is not None and reason not in LIFTED_BY_OPT_IN:
        return
    contact = _find_contact(account_id, address)
    if contact is None:
        contact = Contact(
            account_id=account_id, email=address, name=name.strip()[:200], source=source
        )
        db.session.add(contact)
        db.session.flush()
    subscription = _subscription(contact.id, mailing_list.id)
    if subscription is not None and subscription.status == "subscribed" and reason is None:
        db.session.commit()
        return
    if subscription is None:
        subscription = Subscription(
            contact_id=contact.id, list_id=mailing_list.id, status="unconfirmed"
        )
        db.session.add(subscription)
        db.session.flush()
        _consent(
            account_id,
            contact.id,
            mailing_list.id,
            "signup_requested",
            source,
            f"sign-up form of {mailing_list.name}" if source == "form" else "through the API",
            client_ip,
        )
    recent = db.session.scalar(
        select(SignupConfirmation.id).where(
            SignupConfirmation.contact_id == contact.id,
            SignupConfirmation.list_id == mailing_list.id,
            SignupConfirmation.used_at.is_(None),
            SignupConfirmation.created_at
            > utcnow().replace(microsecond=0) - _seconds(SIGNUP_RESEND_SECONDS),
        )
    )
    if recent is not None:
        db.session.commit()
        return
    confirmation = SignupConfirmation(
        account_id=account_id, contact_id=contact.id, list_id=mailing_list.id
    )
    db.session.add(confirmation)
    db.session.flush()
    from core.queue import enqueue_after_commit

    enqueue_after_commit(tasks.send_signup_confirmation, confirmation.id)
    db.session.commit()


def _seconds(value: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)


def signup_confirm_url(confirmation_id: int) -> str:
    """The emailed double opt-in link: signed, timed, naming the confirmation row only."""
    token = sign_timed(Purpose.SIGNUP_CONFIRM, [confirmation_id])
    return external_url("subscribers.signup_confirm", token=token)


def send_signup_confirmation(confirmation_id: int) -> bool:
    """Email the confirmation link of a pending sign-up; False when it is gone or used."""
    confirmation = db.session.get(SignupConfirmation, confirmation_id)
    if confirmation is None or confirmation.used_at is not None:
        return False
    contact = db.session.get(Contact, confirmation.contact_id)
    mailing_list = db.session.get(MailingList, confirmation.list_id)
    if contact is None or mailing_list is None:
        return False
    from accounts.models import Account

    account = db.session.get(Account, confirmation.account_id)
    sender = account.name if account else "us"
    url = signup_confirm_url(confirmation.id)
    hours = _confirm_max_age() // 3600
    text = (
        f"Hello,\n\nSomeone (we hope you) asked to receive “{mailing_list.name}” from {sender} "
        f"at this address.\n\nTo confirm, open this link and press the button:\n{url}\n\n"
        f"The link works once and for {hours} hours. If this was not you, ignore this email: "
        f"you will receive nothing else.\n\n--\n{reach.rights_footer_text()}\n"
    )
    send_system_mail(contact.email, f"Confirm your subscription to {mailing_list.name}", text)
    return True


def _confirm_max_age() -> int:
    return int(current_app.config["SIGNUP_CONFIRM_MAX_AGE"])


def _confirmation_for_token(token: str) -> SignupConfirmation:
    try:
        payload = unsign_timed(Purpose.SIGNUP_CONFIRM, token, max_age=_confirm_max_age())
    except BadTokenError:
        try:
            unsign_timed(Purpose.SIGNUP_CONFIRM, token, max_age=10 * 365 * 86400)
        except BadTokenError:
            raise
        raise LinkExpiredError("the confirmation link has expired") from None
    if not (isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], int)):
        raise BadTokenError("malformed confirmation token")
    confirmation = db.session.get(SignupConfirmation, payload[0])
    if confirmation is None:
        raise BadTokenError("unknown confirmation")
    if confirmation.used_at is not None:
        raise LinkUsedError("the confirmation link was already used")
    return confirmation


def check_signup_token(token: str) -> MailingList:
    """The list a still-valid confirmation link is for (reading only: a GET confirms nothing).

    Raises BadTokenError (tampered or unknown), LinkExpiredError or LinkUsedError.
    """
    confirmation = _confirmation_for_token(token)
    mailing_list = db.session.get(MailingList, confirmation.list_id)
    if mailing_list is None:
        raise BadTokenError("the list is gone")
    return mailing_list


def confirm_signup(token: str, client_ip: str | None) -> MailingList:
    """Use a double opt-in link: subscribe the contact, once. Writes a consent record and lifts
    an earlier "unsubscribed from everything" (the person asked again themselves)."""
    confirmation = _confirmation_for_token(token)
    mailing_list = db.session.get(MailingList, confirmation.list_id)
    contact = db.session.get(Contact, confirmation.contact_id)
    if mailing_list is None or contact is None:
        raise BadTokenError("the list or contact is gone")
    now = utcnow()
    claimed = db.session.execute(
        update(SignupConfirmation)
        .where(SignupConfirmation.id == confirmation.id, SignupConfirmation.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise LinkUsedError("the confirmation link was already used")
    subscription = _subscription(contact.id, mailing_list.id)
    if subscription is None:
        subscription = Subscription(
            contact_id=contact.id, list_id=mailing_list.id, status="unconfirmed"
        )
        db.session.add(subscription)
        db.session.flush()
    suppression.unsuppress(contact.account_id, contact.email, LIFTED_BY_OPT_IN)
    _set_status(
        contact.account_id,
        subscription,
        "subscribed",
        "form",
        f"confirmed by email link, sign-up form of {mailing_list.name}",
        client_ip,
    )
    db.session.commit()
    return mailing_list


# --- preference centre -------------------------------------------------------------------


def preference_url(contact_id: int) -> str:
    """The preference-centre URL of a contact (the token names the contact id only)."""
    return external_url(
        "subscribers.preferences", token=sign(Purpose.PREFERENCES, ["c", contact_id])
    )


def preference_url_for_message(message_id: int) -> str:
    """The preference-centre URL to put in one email: names the message only, needs no database
    read (so rendering stays cheap), and resolves to the message's contact when opened."""
    return external_url(
        "subscribers.preferences", token=sign(Purpose.PREFERENCES, ["m", message_id])
    )


def preference_test_url(campaign_id: int) -> str:
    """A test message's preference-centre link: the page recipients get, changing nothing."""
    return external_url(
        "subscribers.preferences", token=sign(Purpose.PREFERENCES, ["t", campaign_id])
    )


@dataclass(frozen=True)
class TestPreferences:
    """What a test message's preference-centre link shows: no contact, nothing to change."""

    account_id: int
    choices: list[PreferenceChoice]


def test_preferences(token: str) -> TestPreferences | None:
    """For a test message's token: its account and the lists a recipient of the campaign would
    see (the campaign's lists and those with a public form), none ticked. None for a real
    preference token; BadTokenError for a forged one, NotFoundError for a gone campaign."""
    payload = unsign(Purpose.PREFERENCES, token)
    if not (isinstance(payload, list) and len(payload) == 2 and payload[0] == "t"):
        return None
    from campaigns.models import Campaign, CampaignList

    campaign = db.session.get(Campaign, payload[1]) if isinstance(payload[1], int) else None
    if campaign is None:
        raise NotFoundError("campaign")
    offered = set(
        db.session.scalars(
            select(CampaignList.list_id).where(CampaignList.campaign_id == campaign.id)
        )
    )
    lists = db.session.scalars(
        select(MailingList)
        .where(MailingList.account_id == campaign.account_id)
        .where(MailingList.id.in_(offered) | MailingList.signup_enabled.is_(True))
        .order_by(MailingList.name)
    )
    return TestPreferences(
        account_id=campaign.account_id,
        choices=[PreferenceChoice(ml.id, ml.name, ml.description, False) for ml in lists],
    )


def contact_for_preference_token(token: str) -> Contact:
    """The contact a preference-centre token is for; BadTokenError or NotFoundError otherwise."""
    payload = unsign(Purpose.PREFERENCES, token)
    if not (
        isinstance(payload, list)
        and len(payload) == 2
        and payload[0] in ("c", "m")
        and isinstance(payload[1], int)
    ):
        raise BadTokenError("malformed preferences token")
    contact_id: int | None = payload[1]
    if payload[0] == "m":
        from campaigns.models import Message

        message = db.session.get(Message, payload[1])
        contact_id = message.contact_id if message is not None else None
    contact = db.session.get(Contact, contact_id) if contact_id is not None else None
    if contact is None:
        raise NotFoundError("contact")
    return contact


@dataclass(frozen=True)
class PreferenceChoice:
    list_id: int
    name: str
    description: str
    subscribed: bool


def preference_choices(contact: Contact) -> list[PreferenceChoice]:
    """The lists a contact may choose in the preference centre: those it is on (whatever the
    status) and the account's lists with a public sign-up form."""
    rows = db.session.execute(
        select(MailingList, Subscription.status)
        .outerjoin(
            Subscription,
            (Subscription.list_id == MailingList.id) & (Subscription.contact_id == contact.id),
        )
        .where(MailingList.account_id == contact.account_id)
        .where(Subscription.id.is_not(None) | MailingList.signup_enabled.is_(True))
        .order_by(MailingList.name)
    ).all()
    return [
        PreferenceChoice(ml.id, ml.name, ml.description, status == "subscribed")
        for ml, status in rows
    ]


def update_preferences(token: str, wanted_list_ids: Iterable[int], client_ip: str | None) -> int:
    """Apply the preference centre's choices; return how many subscriptions changed.

    Only lists offered by :func:`preference_choices` can be chosen. Subscribing here needs no
    further confirmation: the link came by email to this address. Each change is a consent
    record with source ``preference-centre``.
    """
    contact = contact_for_preference_token(token)
    wanted = set(wanted_list_ids)
    changed = 0
    for choice in preference_choices(contact):
        subscription = _subscription(contact.id, choice.list_id)
        if choice.list_id in wanted and not choice.subscribed:
            if suppression.blocked_domains_of([contact.email]) or (
                (reason := suppression.suppression_reason(contact.account_id, contact.email))
                and reason not in LIFTED_BY_OPT_IN
            ):
                continue
            suppression.unsuppress(contact.account_id, contact.email, LIFTED_BY_OPT_IN)
            if subscription is None:
                subscription = Subscription(
                    contact_id=contact.id, list_id=choice.list_id, status="unconfirmed"
                )
                db.session.add(subscription)
                db.session.flush()
            changed += _set_status(
                contact.account_id,
                subscription,
                "subscribed",
                "preference-centre",
                "",
                client_ip,
            )
        elif (
            choice.list_id not in wanted
            and subscription is not None
            and subscription.status != "unsubscribed"
        ):
            changed += _set_status(
                contact.account_id,
                subscription,
                "unsubscribed",
                "preference-centre",
                "",
                client_ip,
            )
    db.session.commit()
    return changed


def unsubscribe_everything(token: str, client_ip: str | None) -> Contact:
    """The preference centre's "unsubscribe from everything": every list, and the account's
    suppression list, so no later import or form by someone else brings the address back."""
    contact = contact_for_preference_token(token)
    unsubscribe_contact(
        contact.account_id, contact.id, None, "preference-centre:everything", client_ip
    )
    return contact


def set_tracking_choice(token: str, allow: bool, client_ip: str | None) -> bool:
    """The recipient's own tracking choice from the preference centre; True when it changed.

    ``allow=False`` turns off tracking of the person's opens and clicks: from then on their
    hits record nothing (``privacy.policy.recipient_tracking_choice``), whichever campaign or
    account setting says otherwise; ``allow=True`` turns it back on. Subscriptions are not
    touched: the person stays on their lists. Each change is a consent record (source
    ``preference-centre``). Commits.
    """
    contact = contact_for_preference_token(token)
    refused = contact.tracking_refused_at is not None
    if refused == (not allow):
        return False
    contact.tracking_refused_at = None if allow else utcnow()
    _consent(
        contact.account_id,
        contact.id,
        None,
        "tracking_allowed" if allow else "tracking_refused",
        "preference-centre",
        "opens and clicks",
        client_ip,
    )
    db.session.commit()
    return True


# --- platform-wide blocks (operators) ----------------------------------------------------


def suppress_address(account_id: int, email: str) -> bool:
    """The account stops mailing ``email`` (suppressed for this account only, reason
    "manual", as a keyed hash). Idempotent; True when newly suppressed. Commits."""
    added = suppression.suppress(account_id, normalise_email(email), "manual")
    db.session.commit()
    return added


def block_address(email: str) -> str:
    """Block an address on every account (held as a keyed hash only); returns it normalised."""
    address = normalise_email(email)
    suppression.suppress(None, address, "blocked")
    db.session.commit()
    return address


def unblock_address(email: str) -> bool:
    """Lift an operator's block of an address; False when it was not blocked."""
    address = normalise_email(email)
    removed = suppression.unsuppress(None, address, ("blocked",))
    db.session.commit()
    return removed > 0


def normalise_domain(raw: str) -> str:
    """A domain as blocked: lower case, IDNA checked, no leading ``@`` or trailing dot."""
    value = raw.strip().lower().lstrip("@").rstrip(".")
    if not value or "." not in value or any(ch.isspace() for ch in value) or "@" in value:
        raise ValidationError("Enter a domain such as example.com.", field="domain")
    try:
        value = value.encode("idna").decode("ascii").encode("ascii").decode("idna")
    except UnicodeError as exc:
        raise ValidationError(f"{raw!r} is not a valid domain.", field="domain") from exc
    return value


def block_domain(domain: str, note: str = "") -> BlockedDomain:
    """Block a domain and its subdomains platform-wide (idempotent)."""
    value = normalise_domain(domain)
    found = db.session.scalar(select(BlockedDomain).where(BlockedDomain.domain == value))
    if found is None:
        found = BlockedDomain(domain=value, note=note.strip()[:200])
        db.session.add(found)
    db.session.commit()
    return found


def unblock_domain(domain_id: int) -> None:
    """Lift a domain block; NotFoundError when unknown."""
    found = db.session.get(BlockedDomain, domain_id)
    if found is None:
        raise NotFoundError("blocked domain")
    db.session.delete(found)
    db.session.commit()


# --- segments ----------------------------------------------------------------------------


def _account_list_ids(account_id: int) -> set[int]:
    return set(
        db.session.scalars(select(MailingList.id).where(MailingList.account_id == account_id))
    )


def get_segment(account_id: int, segment_id: int) -> Segment:
    """The account's segment, or NotFoundError (also when it belongs to another account)."""
    found = db.session.scalar(
        select(Segment).where(Segment.id == segment_id, Segment.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("segment")
    return found


def save_segment(
    account_id: int,
    segment_id: int | None,
    name: str,
    match: str,
    rules: list[dict[str, Any]],
) -> Segment:
    """Create or update a segment. Rules are checked against the allow-list of fields and
    operators (unknown ones raise ValidationError); list conditions must name the account's
    own lists."""
    from subscribers.segments import check_rules

    existing = get_segment(account_id, segment_id) if segment_id is not None else None
    name = name.strip()
    if not name:
        raise ValidationError("Give the segment a name.", field="name")
    if match not in ("all", "any"):
        raise ValidationError("Match all or any of the conditions.", field="match")
    checked = check_rules(rules, _account_list_ids(account_id))
    segment = existing or Segment(account_id=account_id, name=name[:200])
    if existing is None:
        db.session.add(segment)
    segment.name = name[:200]
    segment.match = match
    segment.rules = checked
    db.session.commit()
    return segment


def delete_segment(account_id: int, segment_id: int) -> None:
    """Delete a segment of the account (its contacts stay)."""
    db.session.delete(get_segment(account_id, segment_id))
    db.session.commit()


# --- imports -----------------------------------------------------------------------------

IMPORT_TARGETS = ("email", "name", "first_name", "last_name", "attribute", "ignore")


def import_dir() -> Path:
    """Where uploaded files and error reports are kept (``IMPORT_DIR``, default var/imports)."""
    path = Path(current_app.config["IMPORT_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def import_report_keep_days() -> int:
    """How many days an import's error report is kept (``IMPORT_FILE_KEEP_DAYS``, 30)."""
    from privacy.registry import setting

    return setting("IMPORT_FILE_KEEP_DAYS")


def import_max_bytes() -> int:
    """The largest upload accepted (``IMPORT_MAX_BYTES``)."""
    return int(current_app.config["IMPORT_MAX_BYTES"])


def human_size(size: int) -> str:
    """A size in decimal units as every page shows it: 1,234,567 bytes is "1.2 MB"."""
    from jinja2.filters import do_filesizeformat

    return do_filesizeformat(size)


def get_import(account_id: int, import_id: int) -> ImportJob:
    """The account's import, or NotFoundError (also when it belongs to another account)."""
    found = db.session.scalar(
        select(ImportJob).where(ImportJob.id == import_id, ImportJob.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("import")
    return found


_GUESSES = {
    "email": (
        "email",
        "email address",
        "mail",
        "e mail",
        "emailaddress",
        "address",
        "emailadresse",
        "courriel",
        "correo",
        "correo electrónico",
    ),
    "name": ("name", "full name", "fullname", "display name", "nom complet"),
    "first_name": ("first name", "firstname", "given name", "forename", "vorname", "prénom"),
    "last_name": ("last name", "lastname", "surname", "family name", "nachname", "nom"),
}


def _guess_target(column: str) -> str:
    lowered = column.strip().lower().replace("-", "").replace("_", " ")
    for target, names in _GUESSES.items():
        if lowered in names:
            return target
    return "attribute"


def _guess_mapping(header: list[str]) -> dict[str, str]:
    guessed = {str(i): _guess_target(column) for i, column in enumerate(header)}
    chosen = list(guessed.values())
    if "first_name" in chosen and "last_name" not in chosen:
        # "Vorname;Name": next to a first name, a column called just "name" is the last name.
        guessed = {
            k: ("last_name" if header[int(k)].strip().lower() == "name" else v)
            for k, v in guessed.items()
        }
    for target in ("email", "name", "first_name", "last_name"):
        if list(guessed.values()).count(target) > 1:  # ambiguous: the person chooses
            guessed = {k: ("attribute" if v == target else v) for k, v in guessed.items()}
    if "name" in guessed.values():  # a full name wins over first and last names
        guessed = {
            k: ("attribute" if v in ("first_name", "last_name") else v) for k, v in guessed.items()
        }
    return guessed


def _read_header(path: Path, fmt: Any) -> list[str]:
    from subscribers.csvformat import read_head

    try:
        header = read_head(str(path), fmt, max_rows=0).header
    except ValueError as exc:
        raise ValidationError(str(exc), field="file") from exc
    if len(header) > 200:
        raise ValidationError("The file has more than 200 columns.", field="file")
    return header


def create_import(
    account_id: int, list_id: int, stream: BinaryIO, filename: str, update_existing: bool
) -> ImportJob:
    """Store an uploaded CSV (copied in chunks, never whole in memory), detect its encoding
    and separator and read its header.

    The job waits for its column mapping (:func:`start_import`). Empty files, files without a
    readable header and files over ``IMPORT_MAX_BYTES`` are refused with a clear message, and
    then nothing of the upload stays on disk.
    """
    from subscribers.csvformat import detect

    get_list(account_id, list_id)
    limit = import_max_bytes()
    stored = import_dir() / f"{account_id}-{secrets.token_hex(12)}.csv"
    try:
        size = 0
        with open(stored, "wb") as out:
            while chunk := stream.read(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    raise ValidationError(
                        f"The file is larger than {human_size(limit)}; split it.", field="file"
                    )
                out.write(chunk)
        fmt = detect(str(stored))
        header = _read_header(stored, fmt)
    except BaseException:
        stored.unlink(missing_ok=True)
        raise
    job = ImportJob(
        account_id=account_id,
        list_id=list_id,
        status="uploaded",
        filename=(filename or "upload.csv")[:255],
        stored_path=str(stored),
        columns=[column.strip()[:200] for column in header],
        mapping=_guess_mapping(header),
        encoding=fmt.encoding,
        delimiter=fmt.delimiter,
        update_existing=update_existing,
        total_bytes=size,
    )
    db.session.add(job)
    db.session.commit()
    return job


def set_import_format(account_id: int, import_id: int, encoding: str, delimiter: str) -> ImportJob:
    """Read an uploaded file again with another encoding or separator (before its import
    starts): its columns and their guessed mapping follow the new reading."""
    from subscribers.csvformat import check_format

    job = get_import(account_id, import_id)
    if job.status != "uploaded":
        raise ValidationError("This import has already started.")
    try:
        fmt = check_format(encoding, delimiter)
    except ValueError as exc:
        raise ValidationError("Choose a separator and an encoding from the lists.") from exc
    header = _read_header(Path(job.stored_path), fmt)
    job.encoding, job.delimiter = fmt.encoding, fmt.delimiter
    job.columns = [column.strip()[:200] for column in header]
    job.mapping = _guess_mapping(header)
    db.session.commit()
    return job


@dataclass
class ImportPreview:
    """What the mapping step shows of an uploaded file."""

    detected: str  # the detected format, described ("" when the file is gone)
    samples: list[list[str]]  # up to three non-empty values of each column


def import_preview(job: ImportJob) -> ImportPreview:
    """The detected format of an uploaded file and sample values of each column, read with
    the format chosen for it (empty samples when the file cannot be read any more)."""
    from subscribers.csvformat import Format, detect, read_head

    empty: list[list[str]] = [[] for _ in job.columns]
    try:
        detected = detect(job.stored_path).describe()
        head = read_head(job.stored_path, Format(job.encoding, job.delimiter))
    except (OSError, ValueError):
        return ImportPreview("", empty)
    return ImportPreview(detected, (head.samples + empty)[: len(job.columns)])


def start_import(
    account_id: int, import_id: int, mapping: dict[str, str], update_existing: bool
) -> ImportJob:
    """Fix the column mapping (exactly one email column; a name column, or first and last
    name columns joined into the name) and queue the import (after commit)."""
    from subscribers import tasks
    from subscribers.csvcheck import columns_of

    job = get_import(account_id, import_id)
    if job.status != "uploaded":
        raise ValidationError("This import has already started.")
    clean = {}
    for index in range(len(job.columns)):
        target = mapping.get(str(index), "ignore")
        if target not in IMPORT_TARGETS:
            raise ValidationError(f"Unknown target {target!r}.", field="mapping")
        clean[str(index)] = target
    chosen = list(clean.values())
    if chosen.count("email") != 1:
        raise ValidationError("Map exactly one column to the email address.", field="mapping")
    for target in ("name", "first_name", "last_name"):
        if chosen.count(target) > 1:
            label = target.replace("_", " ")
            raise ValidationError(f"Map at most one column to the {label}.", field="mapping")
    if "name" in chosen and ("first_name" in chosen or "last_name" in chosen):
        raise ValidationError(
            "Map either one name column or first and last name columns, not both.",
            field="mapping",
        )
    columns_of(job.columns, clean)
    job.mapping = clean
    job.update_existing = update_existing
    job.status = ImportStatus.QUEUED
    job.report_path = str(Path(job.stored_path).with_suffix(".errors.csv"))
    from core.queue import enqueue_after_commit

    enqueue_after_commit(tasks.run_import, job.id)
    db.session.commit()
    return job


def run_import(import_id: int) -> ImportJob | None:
    """Run a queued import to the end (the worker calls this). Safe to run again after a
    crash: rows already imported are found as existing. The uploaded file is deleted when the
    import ends, done or failed; the error report stays until the import is deleted."""
    from subscribers import importer

    job = db.session.get(ImportJob, import_id)
    if job is None or job.status not in ("queued", "running"):
        return job
    # A redelivered job (worker killed mid-way) starts again from the top: the contacts it
    # already wrote predate this start, so they count as existing, not as duplicates.
    job.status = ImportStatus.RUNNING
    job.started_at = utcnow()
    db.session.commit()
    try:
        importer.run(job)
    except Exception as exc:
        db.session.rollback()
        job = db.session.get(ImportJob, import_id)
        assert job is not None
        job.status = ImportStatus.FAILED
        job.error = (
            exc.message if isinstance(exc, ValidationError) else "The import stopped on an error."
        )
        job.finished_at = utcnow()
        _emit_import_finished(job)
        db.session.commit()
        # A failed job is never run again (a redelivery finds it failed): its upload goes.
        Path(job.stored_path).unlink(missing_ok=True)
        if not isinstance(exc, ValidationError):
            raise
        return job
    job.status = ImportStatus.DONE
    job.finished_at = utcnow()
    _emit_import_finished(job)
    db.session.commit()
    Path(job.stored_path).unlink(missing_ok=True)  # after the commit: a redelivery needs it
    return job


def _emit_import_finished(job: ImportJob) -> None:
    """``import.finished`` with the import's figures (no file name, no contact). No commit."""
    webhook_events.emit(
        job.account_id,
        EventType.IMPORT_FINISHED,
        {
            "import_id": job.id,
            "list_id": job.list_id,
            "status": str(job.status),
            "rows_read": job.rows_read,
            "created": job.created_count,
            "updated": job.updated_count,
            "skipped": job.skipped_count,
            "errors": job.error_count,
        },
    )


def remove_abandoned_uploads(now: datetime) -> int:
    """Scheduled: uploads left at the mapping step for ``IMPORT_UPLOAD_KEEP_HOURS`` are
    deleted from disk and their import marked failed (saying why), so repeated uploads never
    pile up. Returns how many were removed; running it twice removes each once."""
    hours = int(current_app.config["IMPORT_UPLOAD_KEEP_HOURS"])
    cutoff = now - timedelta(hours=hours)
    due = db.session.execute(
        select(ImportJob.id, ImportJob.stored_path).where(
            ImportJob.status == "uploaded", ImportJob.created_at <= cutoff
        )
    ).all()
    removed = 0
    for import_id, stored_path in due:
        changed = db.session.execute(
            update(ImportJob)
            .where(ImportJob.id == import_id, ImportJob.status == "uploaded")
            .values(
                status="failed",
                error=f"The columns were not mapped within {hours} hours, so the file was"
                " deleted. Upload it again.",
                finished_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            Path(stored_path).unlink(missing_ok=True)
            removed += 1
    return removed


def delete_import(account_id: int, import_id: int) -> None:
    """Delete an import's record, its uploaded file and its error report (the contacts stay)."""
    job = get_import(account_id, import_id)
    if job.status in ("queued", "running"):
        raise ValidationError("Wait until the import has finished.")
    for path in (job.stored_path, job.report_path):
        if path:
            Path(path).unlink(missing_ok=True)
    db.session.delete(job)
    db.session.commit()


def import_report_path(account_id: int, import_id: int) -> Path:
    """The error report of the account's finished import; NotFoundError when there is none."""
    job = get_import(account_id, import_id)
    if job.status not in ("done", "failed") or not job.report_path:
        raise NotFoundError("report")
    path = Path(job.report_path)
    if not path.exists():
        raise NotFoundError("report")
    return path


def attributes_from_text(text: str) -> dict[str, Any]:
    """Attributes from ``name = value`` lines (the contact form); ValidationError names the
    first line it cannot read."""
    attributes: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"Line {number}: write it as name = value.", field="attributes")
        attributes[key.strip()] = value.strip()
    return check_attributes(attributes)


def masked_email(email: str) -> str:
    """An address shown on a public page: enough to recognise it, not to harvest it."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'•' * min(max(len(local) - 1, 1), 6)}@{domain}"
