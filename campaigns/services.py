"""A campaign's life before and around sending: composing a draft (content, audience, send
window), making one from a template or duplicating one, the checks before sending, scheduling,
starting, pausing, resuming and cancelling.

Starting freezes the audience into ``Message`` rows (unique on campaign and contact), commits,
then enqueues one send chain per SMTP connection (:func:`campaigns.sending.servers.enqueue_chains`).
What happens to those rows is the :mod:`campaigns.sending` package's job. Elsewhere in this
package: senders, SMTP servers and DKIM keys in :mod:`campaigns.senders`, reusable templates in
:mod:`campaigns.template_library`, previews and test sends in :mod:`campaigns.previews`, bounce
rules in :mod:`campaigns.bounces`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, delete, func, insert, literal, select, update

from accounts.models import Account
from accounts.queries import get_account
from campaigns import ab_tests, checks, progress_counts, webhook_events
from campaigns.content import apply_body, can_convert, checked_body
from campaigns.input_checks import one_line
from campaigns.models import (
    Campaign,
    CampaignList,
    CampaignSegment,
    CampaignStatus,
    ContentFormat,
    Link,
    Message,
)
from campaigns.render import find_links
from campaigns.senders import is_verified_sender
from campaigns.sending.servers import enqueue_chains
from campaigns.settings import setting
from campaigns.template_library import get_template
from core import db, queue, timezones
from core.db import rowcount, utcnow
from core.errors import NotFoundError, ValidationError
from privacy import engine_gate
from subscribers import queries as subscriber_queries
from subscribers.audience import audience_contact_ids
from subscribers.models import Contact, MailingList
from subscribers.normalise import normalise_email
from webhooks.models import EventType

EDITABLE_STATUSES = (CampaignStatus.DRAFT,)


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
    track_opens: bool | None = None,
    track_clicks: bool | None = None,
    content_format: ContentFormat | str = ContentFormat.HTML,
    content_source: str | None = None,
) -> Campaign:
    """Create a draft or update one. Only drafts can be edited.

    The body is ``content_source`` written in ``content_format`` (for raw HTML,
    ``content_source`` defaults to ``html_body``), compiled to the HTML that is previewed and
    sent by :func:`campaigns.content.compile_content`. Header values must be one line (no
    header injection); templates must compile in the sandbox; lists must be the account's own.
    ``track_opens`` / ``track_clicks`` switch the campaign's open and click tracking (None:
    unchanged; a new campaign tracks both); what a hit records is still decided by
    privacy.policy.
    """
    if not name.strip():
        raise ValidationError("Give the campaign a name.", field="name")
    subject = one_line(subject, "subject", "subject")
    from_name = one_line(from_name, "from_name", "sender name")
    reply_to = one_line(reply_to, "reply_to", "reply-to address")
    from_email = one_line(from_email, "from_email", "sender address")
    if from_email:
        from_email = normalise_email(from_email)
    if reply_to:
        try:
            reply_to = normalise_email(reply_to)
        except ValidationError as exc:
            raise ValidationError(exc.message, field="reply_to") from exc
    chosen = list(dict.fromkeys(list_ids if list_ids is not None else [list_id] if list_id else []))
    _check_lists(account_id, chosen)
    source = content_source if content_source is not None else html_body
    body = checked_body(content_format, source, subject=subject, text_body=text_body)
    for switch, field in ((track_opens, "track_opens"), (track_clicks, "track_clicks")):
        if switch is not None and not isinstance(switch, bool):
            raise ValidationError("Choose on or off.", field=field)
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
    apply_body(campaign, body)
    segments = list(dict.fromkeys(segment_ids))
    _check_segments(account_id, segments)
    if best_hour_window is not None:
        start_hour, end_hour = best_hour_window
        if not (0 <= start_hour <= 23 and 0 <= end_hour <= 23) or start_hour == end_hour:
            raise ValidationError(
                "Choose two different hours between 0 and 23.", field="best_hour_start"
            )
    campaign.best_hour_start, campaign.best_hour_end = best_hour_window or (None, None)
    if track_opens is not None:
        campaign.track_opens = track_opens
    if track_clicks is not None:
        campaign.track_clicks = track_clicks
    db.session.execute(delete(CampaignList).where(CampaignList.campaign_id == campaign.id))
    db.session.execute(delete(CampaignSegment).where(CampaignSegment.campaign_id == campaign.id))
    db.session.add_all(CampaignList(campaign_id=campaign.id, list_id=i) for i in chosen)
    db.session.add_all(CampaignSegment(campaign_id=campaign.id, segment_id=i) for i in segments)
    db.session.commit()
    return campaign


def convert_content(account_id: int, campaign_id: int, to_format: ContentFormat | str) -> Campaign:
    """Convert a draft's body down to ``to_format`` (raw HTML: the compiled HTML becomes the
    source to edit by hand). Converting up is refused: nothing could be read back into blocks
    or markdown. Commits."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status not in EDITABLE_STATUSES:
        raise ValidationError("Only drafts can be edited.")
    if not can_convert(campaign.content_format, to_format):
        raise ValidationError(
            f"A {campaign.content_format.value} body cannot be converted to {to_format}.",
            field="content_format",
        )
    apply_body(
        campaign,
        checked_body(
            to_format, campaign.html_body, subject=campaign.subject, text_body=campaign.text_body
        ),
    )
    db.session.commit()
    return campaign


def campaign_audience(campaign: Campaign) -> Any:
    """The query of the contact ids the campaign goes to, over its lists and segments (the
    subscribers package's one audience query; segments passed only when there are some)."""
    list_ids = campaign_list_ids(campaign.id)
    segment_ids = campaign_segment_ids(campaign.id)
    if segment_ids:
        return audience_contact_ids(campaign.account_id, list_ids, segment_ids=segment_ids)
    return audience_contact_ids(campaign.account_id, list_ids)


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
    # The pre-send checks' errors (the postal address is the one above, in its words).
    if campaign.html_body.strip():
        problems += [
            check.message[:1].lower() + check.message[1:].rstrip(".")
            for check in checks.errors(checks.run_checks(campaign, account))
            if check.code not in ("postal_address", "subject")
        ]
    return problems


def send_problems(account_id: int, campaign_id: int) -> list[str]:
    """What must be fixed before the campaign can be sent (empty when it is ready): the same
    checks :func:`start` makes, for the confirmation page to show before asking."""
    return _send_problems(get_campaign(account_id, campaign_id), get_account(account_id))


def start(account_id: int, campaign_id: int) -> Campaign:
    """Freeze the audience into Message rows and start sending (after the commit)."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise ValidationError("This campaign has already been sent or is sending.")
    problems = _send_problems(campaign, get_account(account_id))
    if problems:
        raise ValidationError("Before sending, " + ", ".join(problems) + ".")
    _begin_sending(campaign)
    db.session.commit()
    return campaign


def _begin_sending(campaign: Campaign) -> None:
    from accounts.services import record_activity

    for position, url in enumerate(find_links(campaign.html_body)):
        db.session.add(Link(campaign_id=campaign.id, position=position, url=url))
    contact_ids = campaign_audience(campaign).subquery()
    audience = select(
        literal(campaign.id, Integer).label("campaign_id"),
        contact_ids.c.id,
        literal(utcnow(), DateTime).label("due_at"),
    )
    db.session.execute(
        insert(Message).from_select(["campaign_id", "contact_id", "due_at"], audience)
    )
    # Counted, not the INSERT's row count: SQLAlchemy answers -1 for an INSERT ... SELECT on
    # psycopg. An index-only count, small beside making the rows.
    made = db.session.scalar(
        select(func.count()).select_from(Message).where(Message.campaign_id == campaign.id)
    )
    progress_counts.record_start(campaign.id, int(made or 0))
    if campaign.best_hour_start is not None and campaign.best_hour_end is not None:
        _spread_over_best_hours(campaign, (campaign.best_hour_start, campaign.best_hour_end))
    # After the spread: the rows an A/B test holds for its winner stay held.
    ab_tests.split_audience(campaign, utcnow())
    campaign.status = CampaignStatus.SENDING
    campaign.started_at = utcnow()
    campaign.last_progress_at = utcnow()
    campaign.scheduled_at = None
    record_activity(campaign.account_id)
    enqueue_chains(campaign)
    webhook_events.campaign_event(campaign, EventType.CAMPAIGN_STARTED)


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
    zone = get_account(campaign.account_id).time_zone
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
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise ValidationError("Only drafts can be scheduled.")
    if when <= utcnow():
        raise ValidationError("Choose a time in the future.", field="send_at")
    problems = _send_problems(campaign, get_account(account_id))
    if problems:
        raise ValidationError("Before scheduling, " + ", ".join(problems) + ".")
    campaign.status = CampaignStatus.SCHEDULED
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
    zone = get_account(account_id).time_zone
    try:
        resolved = timezones.resolve_local(wall, zone)
    except timezones.NonexistentLocalTimeError as exc:
        raise ValidationError(str(exc), field="send_at") from exc
    return schedule(account_id, campaign_id, resolved.utc), resolved.note()


def unschedule(account_id: int, campaign_id: int) -> Campaign:
    """Turn a scheduled campaign back into a draft."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status != CampaignStatus.SCHEDULED:
        raise ValidationError("This campaign is not scheduled.")
    campaign.status = CampaignStatus.DRAFT
    campaign.scheduled_at = None
    db.session.commit()
    return campaign


def start_scheduled(campaign_id: int, now: datetime | None = None) -> bool:
    """Start a scheduled campaign whose time has come; False if it is not (yet) due.

    Safe to run twice or concurrently: only one run moves it from ``scheduled``.
    """
    now = now or utcnow()
    moved = rowcount(
        db.session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.status == CampaignStatus.SCHEDULED,
                Campaign.scheduled_at <= now,
            )
            .values(status=CampaignStatus.STARTING)
        )
    )
    if not moved:
        db.session.rollback()
        return False
    campaign = db.session.get(Campaign, campaign_id)
    assert campaign is not None
    db.session.refresh(campaign)
    problems = _send_problems(campaign, get_account(campaign.account_id))
    if problems:
        campaign.status = CampaignStatus.PAUSED
        campaign.pause_reason = "Could not start as scheduled: " + ", ".join(problems) + "."
    else:
        _begin_sending(campaign)
    db.session.commit()
    return True


def pause(account_id: int, campaign_id: int, reason: str = "") -> Campaign:
    """Stop sending after the messages in flight; :func:`resume` continues."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status != CampaignStatus.SENDING:
        raise ValidationError("Only a sending campaign can be paused.")
    campaign.status = CampaignStatus.PAUSED
    campaign.pause_reason = reason
    db.session.commit()
    return campaign


def resume(account_id: int, campaign_id: int) -> Campaign:
    """Continue a paused campaign; clears the reason and the transport-error count."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status != CampaignStatus.PAUSED:
        raise ValidationError("Only a paused campaign can be resumed.")
    if campaign.started_at is None:  # paused before it could start (scheduled with problems)
        problems = _send_problems(campaign, get_account(account_id))
        if problems:
            raise ValidationError("Before sending, " + ", ".join(problems) + ".")
        _begin_sending(campaign)
    else:
        campaign.status = CampaignStatus.SENDING
        enqueue_chains(campaign)
    campaign.pause_reason = ""
    campaign.consecutive_errors = 0
    campaign.last_progress_at = campaign.last_outcome_at = utcnow()
    campaign.last_error = ""
    db.session.commit()
    return campaign


def cancel(account_id: int, campaign_id: int) -> Campaign:
    """Stop for good: messages not yet sent are never sent."""
    campaign = get_campaign(account_id, campaign_id)
    if campaign.status not in (
        CampaignStatus.SCHEDULED,
        CampaignStatus.SENDING,
        CampaignStatus.PAUSED,
    ):
        raise ValidationError("This campaign cannot be cancelled now.")
    campaign.status = CampaignStatus.CANCELLED
    campaign.finished_at = utcnow()
    db.session.commit()
    return campaign


def campaign_from_template(account_id: int, template_id: int, name: str) -> Campaign:
    """A new draft with the template's subject and bodies."""
    template = get_template(account_id, template_id)
    account = get_account(account_id)
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
        content_format=template.content_format,
        content_source=template.content_source,
    )


def campaign_from_gallery(account_id: int, slug: str, name: str = "") -> Campaign:
    """A new draft from a gallery layout: a visual body (its MJML as the source, compiled
    when saved), its images on this platform. Commits; NotFoundError for an unknown layout."""
    from campaigns import gallery
    from core.urls import external_url

    starter = gallery.starter(slug)
    assets = external_url("campaigns.static", filename="gallery/").rstrip("/")
    account = get_account(account_id)
    return save_campaign(
        account_id,
        campaign_id=None,
        name=name.strip() or starter.name,
        subject=starter.subject,
        from_name=account.name,
        from_email="",
        html_body="",
        list_ids=[],
        content_format=ContentFormat.VISUAL,
        content_source=gallery.visual_source(slug, assets),
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
        content_format=original.content_format,
        content_source=original.content_source,
        html_body=original.html_body,
        text_body=original.text_body,
        track_opens=original.track_opens,
        track_clicks=original.track_clicks,
        best_hour_start=original.best_hour_start,
        best_hour_end=original.best_hour_end,
        status=CampaignStatus.DRAFT,
    )
    owned_segments = {segment.id for segment in subscriber_queries.segments(account_id)}
    lists = campaign_list_ids(original.id)
    segments = [i for i in campaign_segment_ids(original.id) if i in owned_segments]
    db.session.add(copy)
    db.session.flush()
    db.session.add_all(CampaignList(campaign_id=copy.id, list_id=i) for i in lists)
    db.session.add_all(CampaignSegment(campaign_id=copy.id, segment_id=i) for i in segments)
    db.session.commit()
    return copy
