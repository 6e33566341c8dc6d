"""The account's reusable templates (a subject and bodies that must compile in the sandbox). A
draft is made from one by :func:`campaigns.services.campaign_from_template`."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.content import apply_body, checked_body
from campaigns.input_checks import one_line
from campaigns.models import Campaign, ContentFormat, Template
from core import db
from core.errors import NotFoundError, ValidationError


def save_template(
    account_id: int,
    *,
    template_id: int | None,
    name: str,
    subject: str,
    html_body: str,
    text_body: str = "",
    content_format: ContentFormat | str = ContentFormat.HTML,
    content_source: str | None = None,
) -> Template:
    """Create or update a reusable template (it must compile in the sandbox). The body is
    ``content_source`` in ``content_format`` (raw HTML: ``html_body`` by default), compiled
    as a campaign's is (:func:`campaigns.content.compile_content`)."""
    if not name.strip():
        raise ValidationError("Give the template a name.", field="name")
    subject = one_line(subject, "subject", "subject")
    source = content_source if content_source is not None else html_body
    body = checked_body(content_format, source, subject=subject, text_body=text_body)
    if template_id is None:
        template = Template(account_id=account_id, name=name.strip())
        db.session.add(template)
    else:
        template = get_template(account_id, template_id)
    template.name = name.strip()
    template.subject = subject
    apply_body(template, body)
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


def template_from_campaign(account_id: int, campaign_id: int, name: str = "") -> Template:
    """Save a campaign's subject and bodies as a new template of the account (any status).
    Commits; NotFoundError for another account's campaign."""
    campaign = db.session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.account_id == account_id)
    )
    if campaign is None:
        raise NotFoundError("campaign")
    chosen = name.strip() or campaign.name
    return save_template(
        account_id,
        template_id=None,
        name=chosen[:200],
        subject=campaign.subject,
        html_body=campaign.html_body,
        text_body=campaign.text_body,
        content_format=campaign.content_format,
        content_source=campaign.content_source,
    )
