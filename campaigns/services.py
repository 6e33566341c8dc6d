"""Every write and rule about campaigns: composing, scheduling, sending, pausing, recovering.

Delivery guarantee. :func:`start` freezes the audience into ``Message`` rows (unique on campaign
and contact), commits, then enqueues one :func:`send_batch` chain per SMTP connection. A batch
*claims* pending rows (status ``claimed`` with a claim token, committed before any SMTP), sends
them in id order over one connection and marks each row right after the server accepted it
(one commit per message). The database, not the queue, says what is left to do:
:func:`reconcile` (periodic) starts due scheduled campaigns, re-enqueues campaigns whose queue
messages were lost, and recovers claims of dead workers. In a dead worker's claim, rows sent are
marked; of the others, only the first in id order can have been in the SMTP exchange when the
worker died (the window that cannot be closed: accepted but not marked). That row is marked
``failed`` ("interrupted", never resent: at most once); the rest go back to ``pending``.
A worker asked to stop (SIGTERM) finishes the message on the wire, gives back the rest of its
claim at once and enqueues the chain's next job (see :func:`core.queue.stopping`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from queue import Full, Queue
from typing import Any

from flask import current_app
from sqlalchemy import DateTime, Integer, and_, delete, func, insert, literal, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import ColumnElement, Select

from accounts.models import Account
from campaigns.models import (
    Bounce,
    Campaign,
    CampaignList,
    CampaignSegment,
    DkimKey,
    Link,
    Message,
    Sender,
    SendingSettings,
    SmtpServer,
    Template,
)
from campaigns.render import (
    SAMPLE_RECIPIENT,
    CampaignView,
    CompiledCampaign,
    Recipient,
    RecipientError,
    RenderedMessage,
    Signing,
    TemplateError,
    compile_campaign,
    find_links,
    render_message,
)
from campaigns.settings import setting
from campaigns.throttle import current_throttle
from core import db, queue, timezones
from core.db import utcnow
from core.errors import NotFoundError, ValidationError
from core.logsafe import error_summary
from core.mail import (
    Connection,
    DkimSigner,
    PermanentMailError,
    SMTPSettings,
    TransientMailError,
    TransportError,
    UnsupportedByServerError,
    dkim_dns_record,
    generate_dkim_key,
    open_connection,
    send_system_mail,
    sender_domain,
    smtp_pool,
    smtp_status,
)
from core.signing import BadTokenError, Purpose, sign_timed, unsign_timed
from core.urls import external_url
from privacy import engine_gate
from privacy.policy import may_identify_in_urls, may_process
from subscribers import queries as subscriber_queries
from subscribers.audience import audience_contact_ids
from subscribers.models import Contact, MailingList
from subscribers.normalise import normalise_email
from subscribers.suppression import suppress, suppressed_emails

log = logging.getLogger(__name__)

EDITABLE_STATUSES = ("draft",)
UNFINISHED = ("pending", "claimed")
SENDER_VERIFY_MAX_AGE = 7 * 24 * 3600


# --------------------------------------------------------------------------- composing


def get_campaign(account_id: int, campaign_id: int) -> Campaign:
    """The account's campaign, or NotFoundError (also when it belongs to another account)."""
    found = db.session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("campaign")
    return found


def campaign_list_ids(campaign_id: int) -> list[int]:
    """The lists a campaign goes to."""
    return list(
        db.session.scalars(
            select(CampaignList.list_id)
            .where(CampaignList.campaign_id == campaign_id)
            .order_by(CampaignList.list_id)
        )
    )


def campaign_segment_ids(campaign_id: int) -> list[int]:
    """The segments a campaign goes to."""
    return list(
        db.session.scalars(
            select(CampaignSegment.segment_id).where(CampaignSegment.campaign_id == campaign_id)
        )
    )


def _check_lists(account_id: int, list_ids: Sequence[int]) -> None:
    if not list_ids:
        return
    owned = set(
        db.session.scalars(
            select(MailingList.id).where(
                MailingList.id.in_(list(list_ids)), MailingList.account_id == account_id
            )
        )
    )
    if owned != set(list_ids):
        raise ValidationError("Choose your own lists.", field="list_ids")


def _check_segments(account_id: int, segment_ids: Sequence[int]) -> None:
    if not segment_ids:
        return
    owned = {segment.id for segment in subscriber_queries.segments(account_id)}
    if not set(segment_ids) <= owned:
        raise ValidationError("Choose your own segments.", field="segment_ids")


def _one_line(value: str, field: str, label: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValidationError(f"The {label} must be one line.", field=field)
    return value.strip()


def _check_templates(subject: str, html_body: str, text_body: str) -> None:
    try:
        compiled = compile_campaign(
            subject=subject, html=html_body, text=text_body, account_name="", postal_address=""
        )
        for part in (compiled.subject, compiled.html, compiled.text):
            part.pieces(SAMPLE_RECIPIENT.context())
    except TemplateError as exc:
        raise ValidationError(f"Personalisation error: {exc}", field="html_body") from exc


def save_campaign(
    account_id: int,
    *,
    campaign_id: int | None,
    name: str,
    subject: str,
    from_name: str,
    from_email: str,
    html_body: str,
    list_id: int | None = None,
    list_ids: Sequence[int] | None = None,
    segment_ids: Sequence[int] = (),
    reply_to: str = "",
    text_body: str = "",
    best_hour_window: tuple[int, int] | None = None,
) -> Campaign:
    """Create a draft or update one. Only drafts can be edited.

    Header values must be one line (no header injection); templates must compile in the
    sandbox; lists must be the account's own.
    """
    if not name.strip():
        raise ValidationError("Give the campaign a name.", field="name")
    subject = _one_line(subject, "subject", "subject")
    from_name = _one_line(from_name, "from_name", "sender name")
    reply_to = _one_line(reply_to, "reply_to", "reply-to address")
    from_email = _one_line(from_email, "from_email", "sender address")
    if from_email:
        from_email = normalise_email(from_email)
    if reply_to:
        try:
            reply_to = normalise_email(reply_to)
        except ValidationError as exc:
            raise ValidationError(exc.message, field="reply_to") from exc
    chosen = list(dict.fromkeys(list_ids if list_ids is not None else [list_id] if list_id else []))
    _check_lists(account_id, chosen)
    _check_templates(subject, html_body, text_body)
    if campaign_id is None:
        campaign = Campaign(account_id=account_id, name=name.strip())
        db.session.add(campaign)
        db.session.flush()
    else:
        campaign = get_campaign(account_id, campaign_id)
        if campaign.status not in EDITABLE_STATUSES:
            raise ValidationError("Only drafts can be edited.")
    campaign.name = name.strip()
    campaign.subject = subject
    campaign.from_name = from_name
    campaign.from_email = from_email
    campaign.reply_to = reply_to
    campaign.html_body = html_body
    campaign.text_body = text_body
    segments = list(dict.fromkeys(segment_ids))
    _check_segments(account_id, segments)
    if best_hour_window is not None:
        start_hour, end_hour = best_hour_window
        if not (0 <= start_hour <= 23 and 0 <= end_hour <= 23) or start_hour == end_hour:
            raise ValidationError(
                "Choose two different hours between 0 and 23.", field="best_hour_start"
            )
    campaign.best_hour_start, campaign.best_hour_end = best_hour_window or (None, None)
    campaign.list_id = chosen[0] if len(chosen) == 1 and not segments else None
    db.session.execute(delete(CampaignList).where(CampaignList.campaign_id == campaign.id))
    db.session.execute(delete(CampaignSegment).where(CampaignSegment.campaign_id == campaign.id))
    db.session.add_all(CampaignList(campaign_id=campaign.id, list_id=i) for i in chosen)
    db.session.add_all(CampaignSegment(campaign_id=campaign.id, segment_id=i) for i in segments)
    db.session.commit()
    return campaign


def _audience(account_id: int, list_ids: Sequence[int], segment_ids: Sequence[int]) -> Any:
    """The audience query of the subscribers package (segments passed when there are some)."""
    if segment_ids:
        return audience_contact_ids(account_id, list_ids, segment_ids=segment_ids)
    return audience_contact_ids(account_id, list_ids)


def _send_problems(campaign: Campaign, account: Account) -> list[str]:
    problems = []
    if not campaign_list_ids(campaign.id) and not campaign_segment_ids(campaign.id):
        problems.append("choose a list")
    if not campaign.subject:
        problems.append("write a subject")
    if not campaign.from_email:
        problems.append("give a sender address")
    elif setting("REQUIRE_VERIFIED_SENDER") and not is_verified_sender(
        account.id, campaign.from_email
    ):
        problems.append(f"verify the sender address {campaign.from_email} (Sending settings)")
    if not campaign.html_body.strip():
        problems.append("write the body")
    if not account.postal_address.strip():
        problems.append("add your postal address in Settings (required in every campaign)")
    return problems


def _account(account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFoundError("account")
    return account


def send_problems(account_id: int, campaign_id: int) -> list[str]:
    """What must be fixed before the campaign can be sent (empty when it is ready): the same
    checks :func:`start` makes, for the confirmation page to show before asking."""
    return _send_problems(get_campaign(account_id, campaign_id), _account(account_id))


def start(account_id: int, campaign_id: int) -> Campaign:
    """Freeze the audience into Message rows and start sending (after the commit)."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status not in ("draft", "scheduled"):
        raise ValidationError("This campaign has already been sent or is sending.")
    problems = _send_problems(campaign, _account(account_id))
    if problems:
        raise ValidationError("Before sending, " + ", ".join(problems) + ".")
    _begin_sending(campaign)
    db.session.commit()
    return campaign


def _begin_sending(campaign: Campaign) -> None:
    from accounts.services import record_activity

    for position, url in enumerate(find_links(campaign.html_body)):
        db.session.add(Link(campaign_id=campaign.id, position=position, url=url))
    contact_ids = _audience(
        campaign.account_id, campaign_list_ids(campaign.id), campaign_segment_ids(campaign.id)
    ).subquery()
    audience = select(
        literal(campaign.id, Integer).label("campaign_id"),
        contact_ids.c.id,
        literal(utcnow(), DateTime).label("due_at"),
    )
    db.session.execute(
        insert(Message).from_select(["campaign_id", "contact_id", "due_at"], audience)
    )
    if campaign.best_hour_start is not None and campaign.best_hour_end is not None:
        _spread_over_best_hours(campaign, (campaign.best_hour_start, campaign.best_hour_end))
    campaign.status = "sending"
    campaign.started_at = utcnow()
    campaign.last_progress_at = utcnow()
    campaign.scheduled_at = None
    record_activity(campaign.account_id)
    _enqueue_chains(campaign)


def _window_slots(now: datetime, window: tuple[int, int], zone: str) -> dict[int, datetime]:
    """The send window's hours as the engine sees them: UTC hour -> the next moment (naive
    UTC) at the start of that local hour, in the window's local order.

    The window (start included, end excluded, wrapping past midnight) is in the account's
    local hours; the engine learns people's hours in UTC. Each local hour is placed at its
    next occurrence (now when we are in it), so a DST change or a +05:30 / +12:45 zone moves
    the UTC hours but never the local ones. A local hour a spring-forward skips lands on the
    same instant as the next one and is dropped as a duplicate.
    """
    start, end = window
    length = (end - start) % 24 or 24
    slots: dict[int, datetime] = {}
    for offset in range(length):
        at = timezones.next_local_hour(now, (start + offset) % 24, zone)
        slots.setdefault(at.hour, at)
    return slots


def _spread_over_best_hours(campaign: Campaign, window: tuple[int, int]) -> None:
    """Hold each message until its recipient's best hour in the window (engine, participating
    accounts only) or, without one, until the window opens. The window's hours are the
    account's local hours. No commit."""
    now = utcnow()
    start, end = window
    zone = _account(campaign.account_id).time_zone
    local_hour = timezones.to_local(now, zone).hour
    in_window = (local_hour - start) % 24 < ((end - start) % 24 or 24)
    default_due = now if in_window else timezones.next_local_hour(now, start, zone)
    slots = _window_slots(now, window, zone)
    rows = db.session.execute(
        select(Message.id, Contact.email)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.campaign_id == campaign.id)
    ).all()
    due_by_message: dict[datetime, list[int]] = {}
    for offset in range(0, len(rows), 1000):
        chunk = rows[offset : offset + 1000]
        best = engine_gate.best_send_hours_among(
            campaign.account_id, [e for _, e in chunk], list(slots)
        )
        for message_id, email in chunk:
            due = slots[best[email]] if email in best else default_due
            due_by_message.setdefault(due, []).append(message_id)
    for due, message_ids in due_by_message.items():
        if due > now:
            db.session.execute(
                update(Message).where(Message.id.in_(message_ids)).values(due_at=due)
            )


def schedule(account_id: int, campaign_id: int, when: datetime) -> Campaign:
    """Send the campaign at ``when`` (naive UTC). It must be ready to send and in the future."""
    from campaigns import tasks

    campaign = get_campaign(account_id, campaign_id)
    if campaign.status not in ("draft", "scheduled"):
        raise ValidationError("Only drafts can be scheduled.")
    if when <= utcnow():
        raise ValidationError("Choose a time in the future.", field="send_at")
    problems = _send_problems(campaign, _account(account_id))
    if problems:
        raise ValidationError("Before scheduling, " + ", ".join(problems) + ".")
    campaign.status = "scheduled"
    campaign.scheduled_at = when
    delay_ms = int((when - utcnow()).total_seconds() * 1000) + 500
    # The delayed job is a shortcut; the reconciler starts it from the database anyway.
    queue.enqueue_after_commit(tasks.start_scheduled, campaign.id, delay=delay_ms)
    db.session.commit()
    return campaign


def schedule_local(account_id: int, campaign_id: int, wall: datetime) -> tuple[Campaign, str]:
    """Schedule at ``wall``, a naive wall-clock time in the account's zone, stored as UTC.

    A time a spring-forward skips is refused (ValidationError on ``send_at`` naming the gap);
    one a fall-back repeats is taken at its first occurrence, and the returned note says so
    ("" otherwise).
    """
    zone = _account(account_id).time_zone
    try:
        resolved = timezones.resolve_local(wall, zone)
    except timezones.NonexistentLocalTimeError as exc:
        raise ValidationError(str(exc), field="send_at") from exc
    return schedule(account_id, campaign_id, resolved.utc), resolved.note()


def unschedule(account_id: int, campaign_id: int) -> Campaign:
    """Turn a scheduled campaign back into a draft."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status != "scheduled":
        raise ValidationError("This campaign is not scheduled.")
    campaign.status = "draft"
    campaign.scheduled_at = None
    db.session.commit()
    return campaign


def start_scheduled(campaign_id: int, now: datetime | None = None) -> bool:
    """Start a scheduled campaign whose time has come; False if it is not (yet) due.

    Safe to run twice or concurrently: only one run moves it from ``scheduled``.
    """
    now = now or utcnow()
    moved = _rowcount(
        db.session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.status == "scheduled",
                Campaign.scheduled_at <= now,
            )
            .values(status="starting")
        )
    )
    if not moved:
        db.session.rollback()
        return False
    campaign = db.session.get(Campaign, campaign_id)
    assert campaign is not None
    db.session.refresh(campaign)
    problems = _send_problems(campaign, _account(campaign.account_id))
    if problems:
        campaign.status = "paused"
        campaign.pause_reason = "Could not start as scheduled: " + ", ".join(problems) + "."
    else:
        _begin_sending(campaign)
    db.session.commit()
    return True


def pause(account_id: int, campaign_id: int, reason: str = "") -> Campaign:
    """Stop sending after the messages in flight; :func:`resume` continues."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status != "sending":
        raise ValidationError("Only a sending campaign can be paused.")
    campaign.status = "paused"
    campaign.pause_reason = reason
    db.session.commit()
    return campaign


def resume(account_id: int, campaign_id: int) -> Campaign:
    """Continue a paused campaign; clears the reason and the transport-error count."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status != "paused":
        raise ValidationError("Only a paused campaign can be resumed.")
    if campaign.started_at is None:  # paused before it could start (scheduled with problems)
        problems = _send_problems(campaign, _account(account_id))
        if problems:
            raise ValidationError("Before sending, " + ", ".join(problems) + ".")
        _begin_sending(campaign)
    else:
        campaign.status = "sending"
        _enqueue_chains(campaign)
    campaign.pause_reason = ""
    campaign.consecutive_errors = 0
    campaign.last_progress_at = campaign.last_outcome_at = utcnow()
    campaign.last_error = ""
    db.session.commit()
    return campaign


def cancel(account_id: int, campaign_id: int) -> Campaign:
    """Stop for good: messages not yet sent are never sent."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status not in ("scheduled", "sending", "paused"):
        raise ValidationError("This campaign cannot be cancelled now.")
    campaign.status = "cancelled"
    campaign.finished_at = utcnow()
    db.session.commit()
    return campaign


# --------------------------------------------------------------------------- senders, servers


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
    name = _one_line(name, "name", "sender name")
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


# --------------------------------------------------------------------------- templates


def save_template(
    account_id: int,
    *,
    template_id: int | None,
    name: str,
    subject: str,
    html_body: str,
    text_body: str = "",
) -> Template:
    """Create or update a reusable template (it must compile in the sandbox)."""
    if not name.strip():
        raise ValidationError("Give the template a name.", field="name")
    subject = _one_line(subject, "subject", "subject")
    _check_templates(subject, html_body, text_body)
    if template_id is None:
        template = Template(account_id=account_id, name=name.strip())
        db.session.add(template)
    else:
        template = get_template(account_id, template_id)
    template.name = name.strip()
    template.subject = subject
    template.html_body = html_body
    template.text_body = text_body
    db.session.commit()
    return template


def get_template(account_id: int, template_id: int) -> Template:
    """The account's template, or NotFoundError."""
    found = db.session.scalar(
        select(Template).where(Template.id == template_id, Template.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("template")
    return found


def delete_template(account_id: int, template_id: int) -> None:
    """Remove a template (campaigns made from it keep their copy)."""
    db.session.delete(get_template(account_id, template_id))
    db.session.commit()


def campaign_from_template(account_id: int, template_id: int, name: str) -> Campaign:
    """A new draft with the template's subject and bodies."""
    template = get_template(account_id, template_id)
    account = _account(account_id)
    return save_campaign(
        account_id,
        campaign_id=None,
        name=name or template.name,
        subject=template.subject,
        from_name=account.name,
        from_email="",
        html_body=template.html_body,
        text_body=template.text_body,
        list_ids=[],
    )


def duplicate_campaign(account_id: int, campaign_id: int) -> Campaign:
    """A new draft "Copy of <name>" with the campaign's content, audience (its lists and the
    segments that still exist) and settings, whatever the original's status. Commits."""
    original = get_campaign(account_id, campaign_id)
    name = f"Copy of {original.name}"
    copy = Campaign(
        account_id=account_id,
        name=name if len(name) <= 200 else name[:199] + "…",
        subject=original.subject,
        from_name=original.from_name,
        from_email=original.from_email,
        reply_to=original.reply_to,
        html_body=original.html_body,
        text_body=original.text_body,
        track_opens=original.track_opens,
        track_clicks=original.track_clicks,
        best_hour_start=original.best_hour_start,
        best_hour_end=original.best_hour_end,
        status="draft",
    )
    owned_segments = {segment.id for segment in subscriber_queries.segments(account_id)}
    lists = campaign_list_ids(original.id)
    segments = [i for i in campaign_segment_ids(original.id) if i in owned_segments]
    copy.list_id = lists[0] if len(lists) == 1 and not segments else None
    db.session.add(copy)
    db.session.flush()
    db.session.add_all(CampaignList(campaign_id=copy.id, list_id=i) for i in lists)
    db.session.add_all(CampaignSegment(campaign_id=copy.id, segment_id=i) for i in segments)
    db.session.commit()
    return copy


# --------------------------------------------------------------------------- rendering

_VIEWS: dict[tuple[int, int, str], CampaignView] = {}


def _compile_for(campaign: Campaign, account: Account) -> CompiledCampaign:
    return compile_campaign(
        subject=campaign.subject,
        html=campaign.html_body,
        text=campaign.text_body,
        account_name=account.name,
        postal_address=account.postal_address,
    )


def _dkim_for(account_id: int, from_email: str) -> Signing:
    domain = sender_domain(from_email).lower()
    key = db.session.scalar(
        select(DkimKey).where(DkimKey.account_id == account_id, DkimKey.domain == domain)
    )
    if key is None:
        return Signing()
    return Signing(DkimSigner(key.domain, key.selector, key.private_key_pem).sign)


def _campaign_view(campaign: Campaign) -> CampaignView:
    """The campaign compiled for rendering; cached per worker (a sending campaign is frozen)."""
    app_id = id(current_app._get_current_object())  # type: ignore[attr-defined]
    cache_key = (app_id, campaign.id, str(campaign.started_at))
    cached = _VIEWS.get(cache_key)
    if cached is not None:
        return cached
    account = _account(campaign.account_id)
    link_ids = list(
        db.session.scalars(
            select(Link.id).where(Link.campaign_id == campaign.id).order_by(Link.position)
        )
    )
    view = CampaignView(
        campaign_id=campaign.id,
        from_name=campaign.from_name,
        from_email=campaign.from_email,
        reply_to=campaign.reply_to,
        account_name=account.name,
        identify_in_urls=may_identify_in_urls(account.individual_tracking),
        track_opens=campaign.track_opens,
        track_clicks=campaign.track_clicks,
        link_ids=link_ids,
        compiled=_compile_for(campaign, account),
        message_id_domain=sender_domain(campaign.from_email),
        return_path=str(setting("RETURN_PATH")),
        dkim=_dkim_for(campaign.account_id, campaign.from_email),
    )
    if len(_VIEWS) > 64:
        _VIEWS.clear()
    _VIEWS[cache_key] = view
    return view


def _draft_view(campaign: Campaign, test: bool = False) -> CampaignView:
    """A view for previews and (``test``) test sends: no tracking, no Link rows needed; a test
    send's links work and record nothing (see ``CampaignView.test``)."""
    account = _account(campaign.account_id)
    try:
        compiled = _compile_for(campaign, account)
    except TemplateError as exc:
        raise ValidationError(f"Personalisation error: {exc}") from exc
    return CampaignView(
        campaign_id=campaign.id,
        from_name=campaign.from_name,
        from_email=campaign.from_email or "preview@localhost",
        reply_to=campaign.reply_to,
        account_name=account.name,
        identify_in_urls=False,
        track_opens=False,
        track_clicks=False,
        link_ids=[],
        compiled=compiled,
        message_id_domain=sender_domain(campaign.from_email or "preview@localhost"),
        dkim=_dkim_for(campaign.account_id, campaign.from_email),
        test=test,
    )


def _recipient_for_contact(account_id: int, contact_id: int | None) -> Recipient:
    if contact_id is None:
        return Recipient(0, "preview@example.org", "Sample Contact", {})
    contact = db.session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.account_id == account_id)
    )
    if not may_process(contact):  # erased, restricted, objecting, withdrawn: not rendered
        raise NotFoundError("contact")
    assert contact is not None
    return Recipient(0, contact.email, contact.name, dict(contact.attributes or {}))


@dataclass(frozen=True)
class Preview:
    subject: str
    html: str
    text: str


def preview(account_id: int, campaign_id: int, contact_id: int | None) -> Preview:
    """The campaign as ``contact_id`` (or a sample contact) would get it, without tracking (its
    links are a test message's: they work and record nothing)."""
    campaign = get_campaign(account_id, campaign_id)
    view = _draft_view(campaign, test=True)  # its links work like a test message's
    recipient = _recipient_for_contact(account_id, contact_id)
    try:
        rendered = render_message(view, recipient)
    except (TemplateError, RecipientError) as exc:
        raise ValidationError(str(exc)) from exc
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    parsed = message_from_bytes(rendered.wire, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    html_part = parsed.get_body(preferencelist=("html",))
    text_part = parsed.get_body(preferencelist=("plain",))
    return Preview(
        subject=str(parsed["Subject"]),
        html=html_part.get_content() if html_part else "",
        text=text_part.get_content() if text_part else "",
    )


def preview_missing_fields(account_id: int, campaign_id: int, contact_id: int | None) -> list[str]:
    """The personalisation fields the campaign uses that ``contact_id`` (or the sample
    contact) has no value for: in the real message they render as nothing. Never raises on a
    broken template (saving refuses those)."""
    from campaigns.personalisation import missing_fields

    campaign = get_campaign(account_id, campaign_id)
    recipient = _recipient_for_contact(account_id, contact_id)
    return missing_fields((campaign.subject, campaign.html_body, campaign.text_body), recipient)


def send_test(
    account_id: int, campaign_id: int, addresses: Sequence[str], contact_id: int | None = None
) -> int:
    """Send the campaign now to up to 10 addresses, personalised for ``contact_id`` (or a
    sample), with "[Test]" before the subject. Its links work but record nothing: clicks go
    through the redirect marked as a test, the unsubscribe and preference links open pages
    that say it is a test and change nothing, and there is no beacon. Returns how many were
    sent."""
    campaign = get_campaign(account_id, campaign_id)
    cleaned = []
    for address in addresses:
        if address.strip():
            try:
                cleaned.append(normalise_email(address))
            except ValidationError as exc:
                raise ValidationError(exc.message, field="addresses") from exc
    if not cleaned:
        raise ValidationError("Give at least one address.", field="addresses")
    if len(cleaned) > 10:
        raise ValidationError("At most 10 addresses per test.", field="addresses")
    if not campaign.from_email:
        raise ValidationError("Give a sender address first.", field="addresses")
    view = _draft_view(campaign, test=True)
    base = _recipient_for_contact(account_id, contact_id)
    sent = 0
    servers = _servers(account_id)
    with _connection(servers[0]) as conn:
        for address in cleaned:
            recipient = Recipient(0, address, base.name, base.attributes)
            try:
                rendered = render_message(view, recipient, subject_prefix="[Test] ")
                conn.send(rendered.wire, rendered.envelope_from, [rendered.recipient])
            except (TemplateError, RecipientError) as exc:
                raise ValidationError(str(exc), field="addresses") from exc
            except PermanentMailError as exc:
                raise ValidationError(
                    f"The SMTP server did not take the test for {address}: {exc}",
                    field="addresses",
                ) from exc
            sent += 1
    return sent


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Server:
    """Where a chain sends: an account's SMTP server, or the platform transport (id 0)."""

    id: int
    url: str
    max_per_second: float
    max_connections: int


def _servers(account_id: int) -> list[Server]:
    rows = db.session.scalars(
        select(SmtpServer)
        .where(SmtpServer.account_id == account_id, SmtpServer.enabled.is_(True))
        .order_by(SmtpServer.id)
    ).all()
    if rows:
        return [Server(s.id, s.url, s.max_per_second, s.max_connections) for s in rows]
    return [
        Server(
            0,
            str(current_app.config.get("SMTP_URL", "")),
            float(setting("SMTP_MAX_PER_SECOND")),
            int(setting("SEND_CONNECTIONS")),
        )
    ]


@contextmanager
def _connection(server: Server) -> Iterator[Connection]:
    if not server.url:
        with open_connection("") as conn:
            yield conn
        return
    pool = smtp_pool(server.url, server.max_connections)
    with pool.connection() as conn:
        yield conn


def _enqueue_chains(campaign: Campaign) -> None:
    from campaigns import tasks

    chains = sum(server.max_connections for server in _servers(campaign.account_id))
    for chain in range(max(1, chains)):
        queue.enqueue_after_commit(tasks.send_batch, campaign.id, chain)


def _claim(campaign_id: int, limit: int, now: datetime) -> tuple[str, dict[int, int | None]]:
    """Claim up to ``limit`` due pending rows for this worker; commit; return the token and
    each claimed row's contact id by row id, in send (id) order.

    Empty only when nothing is due: a claim lost to a concurrent worker is tried again.
    """
    token = uuid.uuid4().hex
    if db.session.get_bind().dialect.name == "postgresql":
        # One statement. A materialised CTE is evaluated once; as an IN (subquery) the planner
        # may run the locking subquery again for each row it updates and over-claim.
        due = (
            _due_rows(campaign_id, limit, now)
            .with_for_update(skip_locked=True)
            .cte("due")
            .prefix_with("MATERIALIZED")
        )
        claimed = _mark_claimed(campaign_id, Message.id == due.c.id, token, now)
        db.session.commit()
        return token, claimed
    for _attempt in range(10):
        ids = list(db.session.scalars(_due_rows(campaign_id, limit, now)))
        if not ids:
            db.session.commit()
            return token, {}
        claimed = _mark_claimed(campaign_id, Message.id.in_(ids), token, now)
        db.session.commit()
        if claimed:
            return token, claimed
        # another worker took these rows first: look again
    return token, {}


def _due_rows(campaign_id: int, limit: int, now: datetime) -> Select[int]:
    """The first ``limit`` due pending rows, in the (campaign, status, due_at, id) index's
    order: the scan stops after ``limit`` rows however many were sent before (ordered by id
    alone it would filter past every sent row on each claim: quadratic in the audience)."""
    return (
        select(Message.id)
        .where(
            Message.campaign_id == campaign_id,
            Message.status == "pending",
            Message.due_at <= now,
        )
        .order_by(Message.due_at, Message.id)
        .limit(limit)
    )


def _mark_claimed(
    campaign_id: int, rows: ColumnElement[bool], token: str, now: datetime
) -> dict[int, int | None]:
    """Mark the still pending ``rows`` claimed under ``token`` (no commit); their contact ids
    by row id, in id order."""
    result = db.session.execute(
        update(Message)
        .where(rows, Message.status == "pending")
        .values(status="claimed", claim_token=token, claimed_at=now)
        .returning(Message.id, Message.contact_id)
    )
    claimed = dict(sorted((row[0], row[1]) for row in result))
    if claimed:
        db.session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(last_progress_at=now)
        )
    return claimed


def _eligible_recipients(
    campaign: Campaign, claimed: dict[int, int | None]
) -> dict[int, Recipient]:
    """The claimed messages (row id -> contact id) whose contact may still be mailed right now:
    still in the audience (subscribed, not restricted or objecting) and not suppressed."""
    contact_by_message = {
        contact_id: message_id
        for message_id, contact_id in claimed.items()
        if contact_id is not None
    }
    # Filter the audience's own id column: with segments it is a UNION, and a condition on
    # the contacts table would join it as a cartesian product.
    audience = _audience(
        campaign.account_id, campaign_list_ids(campaign.id), campaign_segment_ids(campaign.id)
    ).subquery()
    still_in = set(
        db.session.scalars(select(audience.c.id).where(audience.c.id.in_(list(contact_by_message))))
    )
    rows = db.session.execute(
        select(Contact.id, Contact.email, Contact.name, Contact.attributes).where(
            Contact.id.in_(still_in)
        )
    ).all()
    emails = [row[1] for row in rows]
    suppressed = set(suppressed_emails(campaign.account_id, emails))
    # The optimisation engine's platform-wide suppression (empty for accounts that opted out).
    suppressed |= engine_gate.engine_suppressed(campaign.account_id, emails)
    return {
        contact_by_message[cid]: Recipient(contact_by_message[cid], email, name, attrs or {})
        for cid, email, name, attrs in rows
        if email not in suppressed
    }


def _mark(message_id: int, token: str, **values: Any) -> None:
    """Record one row's outcome (only while this worker's claim still holds it); commit."""
    db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.claim_token == token)
        .values(claim_token=None, **values)
    )
    db.session.commit()


#: How many rows of a dead worker's claim may have been accepted by SMTP without their mark
#: being committed: the one in the SMTP exchange and the marks queued behind it
#: (:class:`_SentMarker` keeps at most one waiting while another is being written).
UNCERTAIN_PER_CLAIM = 3


class _SentMarker:
    """Marks accepted messages ``sent`` from a thread of its own, one autocommitted statement
    each, so writing a mark overlaps the next SMTP exchange. At most one mark waits in line
    (``put`` blocks), which bounds the window to :data:`UNCERTAIN_PER_CLAIM` rows.

    With ``SEND_MARK_DURABILITY=server`` (the default) PostgreSQL acknowledges the commit
    before flushing it to disk (``synchronous_commit=off`` for this connection only): a killed
    worker loses nothing, a crash of the database server itself can lose the marks of its last
    fraction of a second (those messages would be sent again). ``disk`` waits for the flush.
    """

    DRIVER_SQL = (
        "UPDATE messages SET status = 'sent', sent_at = ?, smtp_message_id = ?, "
        "error = NULL, claim_token = NULL WHERE id = ? AND claim_token = ?"
    )

    def __init__(self) -> None:
        engine = db.session.get_bind().engine
        self.connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        postgres = engine.dialect.name == "postgresql"
        self.relaxed = postgres and setting("SEND_MARK_DURABILITY") == "server"
        if self.relaxed:
            self.connection.exec_driver_sql("SET synchronous_commit = off")
        # The driver's own cursor: one mark per message is the send path's most frequent
        # statement, and the SQL layer's per-statement work would double its cost.
        self.cursor: Any = self.connection.connection.cursor()
        self.sql = self.DRIVER_SQL.replace("?", "%s") if postgres else self.DRIVER_SQL
        self.stamp: Callable[[datetime], Any] = (
            (lambda value: value)
            if postgres
            else (lambda value: value.strftime("%Y-%m-%d %H:%M:%S.%f"))
        )
        self.waiting: Queue[tuple[int, str, str] | None] = Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sent-marker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.waiting.get()
            if item is None:
                return
            if self.error is not None:
                continue
            message_id, token, smtp_message_id = item
            try:
                self.cursor.execute(
                    self.sql, (self.stamp(utcnow()), smtp_message_id, message_id, token)
                )
            except BaseException as exc:  # reported to the sending thread
                self.error = exc

    def mark(self, message_id: int, token: str, smtp_message_id: str) -> None:
        """Queue the mark of an accepted message; raises a previous mark's error."""
        if self.error is not None:
            raise self.error
        self.waiting.put((message_id, token, smtp_message_id))

    def close(self) -> None:
        """Write every queued mark, then release the connection."""
        self.waiting.put(None)
        self.thread.join()
        try:
            self.cursor.close()
            if self.relaxed:
                self.connection.exec_driver_sql("RESET synchronous_commit")
        finally:
            self.connection.close()
        if self.error is not None:
            log.error("a sent mark failed: %s", error_summary(self.error))


class _Prerenderer:
    """Renders a batch's messages a few steps ahead of SMTP, in a thread of its own, so that
    rendering (CPU) overlaps the waits for the SMTP server. Yields ``(message_id, rendered)``
    in claim order; ``rendered`` is None for a recipient no longer eligible, or the exception
    rendering raised."""

    def __init__(
        self,
        view: CampaignView,
        recipients: dict[int, Recipient],
        message_ids: list[int],
        verp_key: str,
        payload: Callable[[bytes], bytes],
    ) -> None:
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.view = view
        self.recipients = recipients
        self.message_ids = message_ids
        self.verp_key = verp_key
        self.payload = payload
        self.ready: Queue[tuple[int, RenderedMessage | BaseException | None]] = Queue(maxsize=4)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="prerender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.app.app_context():
            for message_id in self.message_ids:
                recipient = self.recipients.get(message_id)
                item: RenderedMessage | BaseException | None = None
                if recipient is not None:
                    try:
                        rendered = render_message(self.view, recipient, self.verp_key)
                        item = replace(rendered, payload=self.payload(rendered.wire))
                    except Exception as exc:  # handed to the sending thread
                        item = exc
                while not self.stopping.is_set():
                    try:
                        self.ready.put((message_id, item), timeout=0.2)
                        break
                    except Full:
                        continue
                if self.stopping.is_set():
                    return

    def __iter__(self) -> Iterator[tuple[int, RenderedMessage | BaseException | None]]:
        for _ in self.message_ids:
            yield self.ready.get()

    def close(self) -> None:
        """Stop rendering ahead and wait for the thread."""
        self.stopping.set()
        self.thread.join()


def _stop(ahead: _Prerenderer | None, marker: _SentMarker) -> None:
    """Stop rendering ahead and write the queued sent marks."""
    if ahead is not None:
        ahead.close()
    marker.close()


def _release(token: str) -> None:
    """Give back the rows of a claim this worker did not attempt."""
    db.session.rollback()
    db.session.execute(
        update(Message)
        .where(Message.claim_token == token, Message.status == "claimed")
        .values(status="pending", claim_token=None, claimed_at=None)
    )
    db.session.commit()


def _status_of(campaign_id: int) -> str:
    return db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) or ""


def _retry_delay(attempts: int) -> float:
    base = float(setting("SEND_RETRY_BASE_SECONDS"))
    return min(base * (2 ** max(0, attempts - 1)), 6 * 3600.0)


#: While a claim is being sent, the campaign's ``last_outcome_at`` is written at most this often
#: (and at the claim's end): the stall flag sees a slow claim progress without a write per
#: message on the campaign row every chain shares.
OUTCOME_EVERY_SECONDS = 10.0


class _CampaignStop(Exception):
    """Raised in the send loop for a problem of the campaign, not of one recipient (its
    templates, a refused sender): the claim is given back and the campaign paused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _record_outcome(campaign_id: int) -> None:
    """Note that messages reached an outcome just now (the stall flag's clock); commit."""
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(last_outcome_at=utcnow(), last_error="", last_error_at=None)
    )
    db.session.commit()


def _platform_error_text(error: BaseException) -> str:
    """What the campaign page says about a failure of the platform in the send path: the kind
    of error only (its text may quote data, e.g. a statement's parameters)."""
    if isinstance(error, SQLAlchemyError):
        return f"a database error in the worker ({type(error).__name__}); see the worker's log"
    return f"an error in the worker ({type(error).__name__}); see the worker's log"


def _record_send_error(campaign_id: int, text: str) -> None:
    """Keep the last transport or platform error on the campaign, for its stall flag; commit.
    Never raises (the database may be the thing that failed)."""
    try:
        db.session.rollback()
        db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(last_error=text[:500], last_error_at=utcnow())
        )
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning(
            "campaign %s: could not record a send error (%s)", campaign_id, error_summary(exc)
        )


def _transport_failed(campaign: Campaign, error: Exception, chain: int) -> None:
    """Count a transport error (kept as the campaign's last error); pause after
    ``SEND_MAX_TRANSPORT_ERRORS`` in a row."""
    from campaigns import tasks

    limit = int(setting("SEND_MAX_TRANSPORT_ERRORS"))
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(
            consecutive_errors=Campaign.consecutive_errors + 1,
            last_error=f"SMTP transport error: {str(error)[:300]}",
            last_error_at=utcnow(),
        )
    )
    errors = db.session.scalar(
        select(Campaign.consecutive_errors).where(Campaign.id == campaign.id)
    )
    log.warning(
        "campaign %s: transport error %s in a row: %s", campaign.id, errors, error_summary(error)
    )
    if (errors or 0) >= limit:
        db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == "sending")
            .values(
                status="paused",
                pause_reason=(
                    f"Paused after {errors} transport errors in a row; the last: "
                    f"{str(error)[:300]}. Check the SMTP server, then resume."
                ),
            )
        )
    else:
        delay = int(_retry_delay(errors or 1) * 1000)
        queue.enqueue_after_commit(tasks.send_batch, campaign.id, chain, delay=delay)
    db.session.commit()


def record_bounce(
    message_id: int,
    kind: str,
    source: str,
    diagnostic: str = "",
    occurred_at: datetime | None = None,
) -> bool:
    """Record a bounce or complaint for a message and suppress as the rules say; commit.

    Hard bounces and complaints suppress the address at once; soft bounces once the contact
    has ``SOFT_BOUNCE_LIMIT`` of them. Idempotent per (message, kind, source). False when the
    message is unknown.
    """
    if kind not in ("hard", "soft", "complaint"):
        raise ValueError(f"unknown bounce kind {kind!r}")
    message = db.session.get(Message, message_id)
    if message is None:
        return False
    exists = db.session.scalar(
        select(Bounce.id).where(
            Bounce.message_id == message_id, Bounce.kind == kind, Bounce.source == source
        )
    )
    if exists is None:
        db.session.add(
            Bounce(
                message_id=message_id,
                kind=kind,
                source=source,
                diagnostic=diagnostic[:64],
                occurred_at=occurred_at or utcnow(),
            )
        )
    if message.bounce_kind != "complaint":
        message.bounce_kind = (
            kind if message.bounce_kind != "hard" or kind == "complaint" else "hard"
        )
    db.session.flush()
    campaign = db.session.get(Campaign, message.campaign_id)
    contact = db.session.get(Contact, message.contact_id) if message.contact_id else None
    if campaign is not None and contact is not None:
        # engine input: hard bounce, complaint or soft bounce (a deferral for pacing).
        engine_gate.record_delivery_outcome(
            campaign.account_id,
            contact.id,
            contact.email,
            {"hard": "bounced", "complaint": "complained", "soft": "deferred"}[kind],
            occurred_at or utcnow(),
        )
        if kind == "complaint":
            suppress(campaign.account_id, contact.email, "complaint")
        elif kind == "hard":
            suppress(campaign.account_id, contact.email, "hard_bounce")
        else:
            soft = db.session.scalar(
                select(func.count(func.distinct(Bounce.message_id)))
                .join(Message, Message.id == Bounce.message_id)
                .where(Message.contact_id == contact.id, Bounce.kind == "soft")
            )
            if (soft or 0) >= int(setting("SOFT_BOUNCE_LIMIT")):
                suppress(campaign.account_id, contact.email, "hard_bounce")
    db.session.commit()
    return True


def send_batch(campaign_id: int, chain: int = 0, claims: int = 0) -> int:
    """Send the campaign's due messages claim after claim (``claims`` of them, or as many as
    fit in ``SEND_JOB_SECONDS``), then enqueue the chain's next job. Returns how many messages
    the SMTP server accepted."""
    from campaigns import tasks

    job_deadline = time.monotonic() + float(setting("SEND_JOB_SECONDS"))
    total = 0
    done = 0
    while True:
        campaign = db.session.get(Campaign, campaign_id)
        if campaign is None:
            return total
        db.session.refresh(campaign)
        if campaign.status != "sending":
            return total
        try:
            sent, outcome = _send_one_claim(campaign, chain)
        except Exception as exc:  # a platform failure: retried by the queue, shown on the page
            _record_send_error(campaign_id, _platform_error_text(exc))
            raise
        total += sent
        done += 1
        if outcome == "over":
            return total
        more = claims == 0 or done < claims
        in_time = time.monotonic() < job_deadline and not queue.stopping().is_set()
        if outcome == "complete" and more and in_time:
            continue
        # The chain goes on in the next job (after a stop, another worker's: nothing waits).
        queue.enqueue_after_commit(tasks.send_batch, campaign_id, chain)
        db.session.commit()
        return total


def _send_one_claim(campaign: Campaign, chain: int) -> tuple[int, str]:
    """Claim and send one batch. Returns (accepted, outcome): ``complete`` when every claimed
    row was handled, ``stopped`` when the batch stopped early (pause, cancel, time), ``over``
    when the chain must not go on (nothing due, transport error, broken template)."""
    campaign_id = campaign.id
    now = utcnow()
    token, claimed = _claim(campaign_id, int(setting("SEND_BATCH_SIZE")), now)
    message_ids = list(claimed)
    if not message_ids:
        _after_empty_claim(campaign, chain, now)
        return 0, "over"
    servers = _servers(campaign.account_id)
    server = servers[chain % len(servers)]
    settings = db.session.get(SendingSettings, campaign.account_id)
    account_rate = settings.max_per_second if settings else 0.0
    domain_limit = settings.max_per_domain if settings else 0
    throttle = current_throttle()
    # A worker asked to stop (a deploy's SIGTERM) gives back the rows it has not started, at
    # once, instead of leaving them claimed for the reconciler (SEND_CLAIM_TIMEOUT).
    stopping = queue.stopping()
    # A live worker never holds a claim longer than half the reconciler's stale limit.
    deadline = time.time() + float(setting("SEND_CLAIM_TIMEOUT")) / 2
    verp_key = str(current_app.config["SECRET_KEY"])
    try:
        view = _campaign_view(campaign)
        recipients = _eligible_recipients(campaign, claimed)
    except TemplateError as exc:
        _release(token)
        pause(campaign.account_id, campaign.id, f"The templates do not render: {exc}")
        return 0, "over"
    except Exception:
        _release(token)  # nothing was sent: the rows go back, none is taken for interrupted
        raise
    sent = 0
    handled = 0
    delivered: list[int] = []
    completed = False
    checked_at = outcome_written_at = time.monotonic()
    account_id = campaign.account_id
    account_key, server_key = f"account:{account_id}", f"server:{server.id}"
    marker = _SentMarker()
    ahead: _Prerenderer | None = None
    try:
        with _connection(server) as conn:
            ahead = _Prerenderer(view, recipients, message_ids, verp_key, conn.payload)
            for message_id, rendered in ahead:
                if time.time() > deadline or stopping.is_set():
                    break
                now_monotonic = time.monotonic()
                if handled and now_monotonic - outcome_written_at > OUTCOME_EVERY_SECONDS:
                    outcome_written_at = now_monotonic
                    _record_outcome(campaign_id)
                handled += 1
                if rendered is None:
                    _mark(message_id, token, status="skipped", error="no longer in the audience")
                    continue
                if isinstance(rendered, RecipientError):
                    _mark(message_id, token, status="failed", error=str(rendered)[:500])
                    continue
                if isinstance(rendered, TemplateError):  # the campaign's, not this contact's
                    raise _CampaignStop(f"The templates do not render: {rendered}")
                if isinstance(rendered, BaseException):
                    raise rendered
                waiting_since = time.monotonic()
                if not throttle.wait_for_rate(
                    account_key, account_rate, deadline, stopping
                ) or not throttle.wait_for_rate(
                    server_key, server.max_per_second, deadline, stopping
                ):
                    break
                # A pause or cancel takes effect within a second, and before any send that
                # had to wait for a rate limit (so a throttled campaign stops at once).
                now_monotonic = time.monotonic()
                if now_monotonic - checked_at > 1.0 or now_monotonic - waiting_since > 0.05:
                    checked_at = now_monotonic
                    if _status_of(campaign_id) != "sending":
                        break
                recipient_of = recipients[message_id]
                # The domain as stored (U-labels), as the engine's pacing knows it.
                domain = recipient_of.email.rpartition("@")[2].lower()
                with throttle.domain_slot(account_id, domain, domain_limit) as free:
                    if not free:
                        _mark(
                            message_id,
                            token,
                            status="pending",
                            due_at=utcnow() + timedelta(seconds=5),
                            claimed_at=None,
                        )
                        continue
                    if _deliver(
                        conn, rendered, message_id, token, marker, account_id, recipient_of
                    ):
                        sent += 1
                        delivered.append(message_id)
            else:
                completed = True  # no break: every claimed row was handled
    except TransportError as exc:
        _stop(ahead, marker)
        _release(token)
        _transport_failed(campaign, exc, chain)
        return sent, "over"
    except _CampaignStop as stop:
        _stop(ahead, marker)
        _release(token)
        if _status_of(campaign_id) == "sending":
            pause(campaign.account_id, campaign_id, stop.reason)
        return sent, "over"
    except Exception:
        _stop(ahead, marker)
        _release(token)
        raise
    _stop(ahead, marker)
    _release(token)  # rows not reached (paused, cancelled, deadline, worker stopping)
    # engine input: the claim's deliveries, recorded by an engine job after this commit, so the
    # send path does no engine work per message and holds no engine row lock across sends.
    engine_gate.record_deliveries_soon(campaign.account_id, delivered)
    if sent and campaign.consecutive_errors:
        db.session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(consecutive_errors=0)
        )
    now = utcnow()
    values: dict[str, Any] = {"last_progress_at": now}
    if handled:
        values.update(last_outcome_at=now, last_error="", last_error_at=None)
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
    db.session.commit()
    return sent, "complete" if completed else "stopped"


def _deliver(
    conn: Connection,
    rendered: RenderedMessage,
    message_id: int,
    token: str,
    marker: _SentMarker,
    account_id: int,
    recipient: Recipient,
) -> bool:
    """Send one message and mark its row by the SMTP outcome; True when accepted.

    A refusal of this recipient or this message fails the row with its reason (a 5xx is a hard
    bounce); a message the server cannot take (an international address without SMTPUTF8)
    fails it without a bounce. TransportError propagates (the row is still ``claimed`` and goes
    back to pending); a 5xx refusal of the sender raises _CampaignStop (no recipient's fault).
    """
    try:
        conn.send(rendered.wire, rendered.envelope_from, [rendered.recipient], rendered.payload)
    except UnsupportedByServerError as exc:
        _mark(message_id, token, status="failed", error=str(exc))
        return False
    except PermanentMailError as exc:
        if exc.stage == "sender":
            raise _CampaignStop(
                f"The SMTP server refused the sender address ({smtp_status(exc)}). "
                "Check the sender and the server, then resume."
            ) from exc
        _mark(
            message_id,
            token,
            status="failed",
            error=f"refused by the receiving server ({smtp_status(exc)})",
        )
        record_bounce(message_id, "hard", "smtp", smtp_status(exc))
        return False
    except TransportError:
        raise
    except TransientMailError as exc:
        attempts = int(
            db.session.scalar(select(Message.attempts).where(Message.id == message_id)) or 0
        )
        attempts += 1
        if attempts >= int(setting("SEND_MAX_ATTEMPTS")):
            _mark(
                message_id,
                token,
                status="failed",
                attempts=attempts,
                error=f"gave up after {attempts} deferrals: {smtp_status(exc)}",
            )
            record_bounce(message_id, "soft", "smtp", smtp_status(exc))
        else:
            # engine input: a deferral teaches per-domain pacing.
            engine_gate.record_delivery_outcome(
                account_id, None, recipient.email, "deferred", utcnow()
            )
            _mark(
                message_id,
                token,
                status="pending",
                attempts=attempts,
                claimed_at=None,
                due_at=utcnow() + timedelta(seconds=_retry_delay(attempts)),
                error=f"deferred: {smtp_status(exc)}",
            )
        return False
    marker.mark(message_id, token, rendered.message_id_header)
    return True


def _after_empty_claim(campaign: Campaign, chain: int, now: datetime) -> None:
    """Nothing due: wake up when the next retry is due, or finish the campaign."""
    from campaigns import tasks

    # Only rows due later: rows due now that this claim did not get are another chain's
    # (locked by its claim), and that chain sends them.
    next_due = db.session.scalar(
        select(func.min(Message.due_at)).where(
            Message.campaign_id == campaign.id,
            Message.status == "pending",
            Message.due_at > now,
        )
    )
    if next_due is not None:  # each chain waits for the retries (at most one job per chain)
        delay = max(1.0, (next_due - now).total_seconds())
        queue.enqueue_after_commit(
            tasks.send_batch, campaign.id, chain, delay=int(min(delay, 3600) * 1000)
        )
        db.session.commit()
        return
    _finish_if_done(campaign)


def _finish_if_done(campaign: Campaign) -> None:
    unfinished = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.campaign_id == campaign.id, Message.status.in_(UNFINISHED))
    )
    if not unfinished:
        db.session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == "sending")
            .values(status="sent", finished_at=utcnow())
        )
    db.session.commit()


# --------------------------------------------------------------------------- recovery


@dataclass(frozen=True)
class ReconcileReport:
    """What one :func:`reconcile` run did."""

    started: int
    recovered_claims: int
    interrupted: int
    requeued_campaigns: int
    finished: int


def reconcile(now: datetime | None = None) -> ReconcileReport:
    """Repair sending from database state; safe to run at any time, twice or concurrently.

    1. Scheduled campaigns that are due are started.
    2. Claims older than ``SEND_CLAIM_TIMEOUT`` belong to dead workers (a live one gives its
       claim back after half that time): the first :data:`UNCERTAIN_PER_CLAIM` unmarked rows
       in id order are marked failed as "interrupted" (they may have been accepted: never
       resent), the others return to pending.
    3. Sending campaigns with due work and no progress for ``SEND_STALL_SECONDS`` (their queue
       messages were lost, e.g. Redis restarted without persistence) get their chains again.
    4. Sending campaigns with nothing left are marked sent.
    """
    now = now or utcnow()
    started = 0
    for campaign_id in db.session.scalars(
        select(Campaign.id).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
    ).all():
        started += int(start_scheduled(campaign_id, now))

    stale_before = now - timedelta(seconds=float(setting("SEND_CLAIM_TIMEOUT")))
    tokens = db.session.scalars(
        select(Message.claim_token)
        .where(Message.status == "claimed", Message.claimed_at < stale_before)
        .distinct()
    ).all()
    interrupted = 0
    for token in tokens:
        # Sent in id order: the first unmarked rows are the ones SMTP may have accepted.
        uncertain = db.session.scalars(
            select(Message.id)
            .where(Message.claim_token == token, Message.status == "claimed")
            .order_by(Message.id)
            .limit(UNCERTAIN_PER_CLAIM)
        ).all()
        if not uncertain:
            continue
        interrupted += _rowcount(
            db.session.execute(
                update(Message)
                .where(
                    Message.id.in_(uncertain),
                    Message.claim_token == token,
                    Message.status == "claimed",
                )
                .values(
                    status="failed",
                    claim_token=None,
                    error="interrupted during the SMTP exchange; not resent to avoid a duplicate",
                )
            )
        )
        db.session.execute(
            update(Message)
            .where(Message.claim_token == token, Message.status == "claimed")
            .values(status="pending", claim_token=None, claimed_at=None)
        )
        db.session.commit()

    stalled_before = now - timedelta(seconds=float(setting("SEND_STALL_SECONDS")))
    requeued = 0
    finished = 0
    sending = db.session.scalars(select(Campaign).where(Campaign.status == "sending")).all()
    for campaign in sending:
        due = db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.campaign_id == campaign.id,
                or_(
                    and_(Message.status == "pending", Message.due_at <= now),
                    Message.status == "claimed",
                ),
            )
        )
        stalled = campaign.last_progress_at is None or campaign.last_progress_at < stalled_before
        if due and stalled:
            campaign.last_progress_at = now
            _enqueue_chains(campaign)
            requeued += 1
            db.session.commit()
        elif not due and not _has_pending(campaign.id):
            _finish_if_done(campaign)
            db.session.refresh(campaign)
            finished += int(campaign.status == "sent")
    db.session.commit()
    return ReconcileReport(started, len(tokens), interrupted, requeued, finished)


def _rowcount(result: Any) -> int:
    """Rows an UPDATE touched."""
    return int(result.rowcount)


def _has_pending(campaign_id: int) -> bool:
    return (
        db.session.scalar(
            select(Message.id)
            .where(Message.campaign_id == campaign_id, Message.status == "pending")
            .limit(1)
        )
        is not None
    )
