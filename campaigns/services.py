"""Every write and rule about campaigns: composing, starting, and sending in batches.

Sending: :func:`start` creates one ``Message`` row per subscribed contact (unique on campaign
and contact), commits, then enqueues the first batch. :func:`send_batch` claims pending rows,
checks each recipient again, sends through one SMTP connection and marks each row after the
server accepted it. The database, not the queue, says what is left to do.
"""

from __future__ import annotations

from email.utils import parseaddr

from sqlalchemy import Integer, and_, func, insert, literal, select, update

from accounts.models import Account
from campaigns.models import Campaign, Link, Message
from campaigns.render import CampaignView, Recipient, compile_body, find_links, render_message
from core import db, queue
from core.db import utcnow
from core.errors import NotFoundError, ValidationError
from core.mail import PermanentMailError, open_connection, to_wire
from privacy import engine_gate
from privacy.policy import may_identify_in_urls
from subscribers.audience import audience_contact_ids
from subscribers.models import Contact, MailingList, Subscription
from subscribers.normalise import normalise_email
from subscribers.suppression import suppressed_emails

EDITABLE_STATUSES = ("draft",)


def get_campaign(account_id: int, campaign_id: int) -> Campaign:
    """The account's campaign, or NotFoundError (also when it belongs to another account)."""
    found = db.session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.account_id == account_id)
    )
    if found is None:
        raise NotFoundError("campaign")
    return found


def _check_list(account_id: int, list_id: int | None) -> None:
    if list_id is None:
        return
    owner = db.session.scalar(select(MailingList.account_id).where(MailingList.id == list_id))
    if owner != account_id:
        raise ValidationError("Choose one of your lists.", field="list_id")


def save_campaign(
    account_id: int,
    *,
    campaign_id: int | None,
    name: str,
    subject: str,
    from_name: str,
    from_email: str,
    html_body: str,
    list_id: int | None,
) -> Campaign:
    """Create a draft or update one. Only drafts can be edited."""
    if not name.strip():
        raise ValidationError("Give the campaign a name.", field="name")
    if "\r" in subject or "\n" in subject:
        raise ValidationError("The subject must be one line.", field="subject")
    if "\r" in from_name or "\n" in from_name:
        raise ValidationError("The sender name must be one line.", field="from_name")
    if from_email.strip():
        from_email = normalise_email(from_email)
    _check_list(account_id, list_id)
    if campaign_id is None:
        campaign = Campaign(account_id=account_id, name=name.strip())
        db.session.add(campaign)
    else:
        campaign = get_campaign(account_id, campaign_id)
        if campaign.status not in EDITABLE_STATUSES:
            raise ValidationError("Only drafts can be edited.")
    campaign.name = name.strip()
    campaign.subject = subject.strip()
    campaign.from_name = from_name.strip()
    campaign.from_email = from_email
    campaign.html_body = html_body
    campaign.list_id = list_id
    db.session.commit()
    return campaign


def start(account_id: int, campaign_id: int) -> Campaign:
    """Freeze the audience into Message rows and start sending (after the commit)."""
    from campaigns import tasks

    campaign = get_campaign(account_id, campaign_id)
    account = db.session.get(Account, account_id)
    assert account is not None
    if campaign.status != "draft":
        raise ValidationError("This campaign has already been sent or is sending.")
    problems = []
    if campaign.list_id is None:
        problems.append("choose a list")
    if not campaign.subject:
        problems.append("write a subject")
    if not campaign.from_email:
        problems.append("give a sender address")
    if not campaign.html_body.strip():
        problems.append("write the body")
    if not account.postal_address.strip():
        problems.append("add your postal address in Settings (required in every campaign)")
    if problems:
        raise ValidationError("Before sending, " + ", ".join(problems) + ".")
    for position, url in enumerate(find_links(campaign.html_body)):
        db.session.add(Link(campaign_id=campaign.id, position=position, url=url))
    assert campaign.list_id is not None
    contact_ids = audience_contact_ids(account_id, [campaign.list_id]).subquery()
    audience = select(literal(campaign.id, Integer).label("campaign_id"), contact_ids.c.id)
    db.session.execute(insert(Message).from_select(["campaign_id", "contact_id"], audience))
    campaign.status = "sending"
    campaign.started_at = utcnow()
    from accounts.services import record_activity

    record_activity(account_id)
    queue.enqueue_after_commit(tasks.send_batch, campaign.id)
    db.session.commit()
    return campaign


def _campaign_view(campaign: Campaign) -> CampaignView:
    account = db.session.get(Account, campaign.account_id)
    assert account is not None
    link_ids = list(
        db.session.scalars(
            select(Link.id).where(Link.campaign_id == campaign.id).order_by(Link.position)
        )
    )
    return CampaignView(
        campaign_id=campaign.id,
        subject=campaign.subject,
        from_name=campaign.from_name,
        from_email=campaign.from_email,
        postal_address=account.postal_address,
        account_name=account.name,
        identify_in_urls=may_identify_in_urls(account.individual_tracking),
        track_opens=campaign.track_opens,
        track_clicks=campaign.track_clicks,
        link_ids=link_ids,
        body=compile_body(campaign.html_body),
    )


def _claim(campaign_id: int, limit: int) -> list[int]:
    """Mark up to ``limit`` pending rows as being sent by this worker; return their ids."""
    query = (
        select(Message.id)
        .where(Message.campaign_id == campaign_id, Message.status == "pending")
        .order_by(Message.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(db.session.scalars(query))
    if not ids:
        db.session.commit()
        return []
    result = db.session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.status == "pending")
        .values(status="sending", claimed_at=utcnow())
        .returning(Message.id)
    )
    claimed = [row[0] for row in result]
    db.session.commit()
    return claimed


def _eligible_recipients(campaign: Campaign, message_ids: list[int]) -> dict[int, Recipient]:
    """The claimed messages whose contact may still be mailed right now."""
    rows = db.session.execute(
        select(Message.id, Contact.email, Contact.name)
        .join(Contact, Contact.id == Message.contact_id)
        .join(
            Subscription,
            and_(Subscription.contact_id == Contact.id, Subscription.list_id == campaign.list_id),
        )
        .where(
            Message.id.in_(message_ids),
            Subscription.status == "subscribed",
            Contact.restricted_at.is_(None),
            Contact.objected_at.is_(None),
            Contact.consent_withdrawn_at.is_(None),  # privacy: consent withdrawal (art. 7(3))
        )
    ).all()
    suppressed = suppressed_emails(campaign.account_id, [row[1] for row in rows])
    return {
        row[0]: Recipient(message_id=row[0], email=row[1], name=row[2])
        for row in rows
        if row[1] not in suppressed
    }


def _mark(
    message_id: int, status: str, smtp_message_id: str | None = None, error: str | None = None
) -> None:
    db.session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            status=status,
            sent_at=utcnow() if status == "sent" else None,
            smtp_message_id=smtp_message_id,
            error=error,
        )
    )
    db.session.commit()


def send_batch(campaign_id: int) -> int:
    """Send one batch of the campaign's pending messages, enqueue the next; return the count."""
    from flask import current_app

    from campaigns import tasks

    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != "sending":
        return 0
    message_ids = _claim(campaign_id, current_app.config["SEND_BATCH_SIZE"])
    if not message_ids:
        _finish_if_done(campaign)
        return 0
    view = _campaign_view(campaign)
    recipients = _eligible_recipients(campaign, message_ids)
    envelope_from = parseaddr(campaign.from_email)[1]
    sent = 0
    try:
        with open_connection() as conn:
            for message_id in message_ids:
                recipient = recipients.get(message_id)
                if recipient is None:
                    _mark(message_id, "skipped", error="recipient no longer subscribed")
                    continue
                message = render_message(view, recipient)
                try:
                    conn.send(to_wire(message), envelope_from, [recipient.email])
                except PermanentMailError as exc:
                    # engine input (one call, committed with the mark; re-apply after merging)
                    engine_gate.record_delivery_outcome(
                        campaign.account_id, None, recipient.email, "bounced", utcnow()
                    )
                    _mark(message_id, "failed", error=str(exc)[:500])
                    continue
                # engine input (one call, committed with the mark; re-apply after merging)
                engine_gate.record_delivery_outcome(
                    campaign.account_id, None, recipient.email, "delivered", utcnow()
                )
                _mark(message_id, "sent", smtp_message_id=str(message["Message-ID"]))
                sent += 1
    except Exception:
        # A deferral, a lost connection or a bug: what this batch did not send goes back to
        # pending, and the actor is retried with backoff.
        db.session.rollback()
        db.session.execute(
            update(Message)
            .where(Message.id.in_(message_ids), Message.status == "sending")
            .values(status="pending", claimed_at=None)
        )
        db.session.commit()
        raise
    queue.enqueue_after_commit(tasks.send_batch, campaign_id)
    db.session.commit()
    return sent


def _finish_if_done(campaign: Campaign) -> None:
    unfinished = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.campaign_id == campaign.id, Message.status.in_(("pending", "sending")))
    )
    if not unfinished:
        campaign.status = "sent"
        campaign.finished_at = utcnow()
        db.session.commit()
