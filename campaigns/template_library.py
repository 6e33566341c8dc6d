"""The account's reusable templates (a subject and bodies that must compile in the sandbox). A
draft is made from one by :func:`campaigns.services.campaign_from_template`."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.input_checks import check_templates, one_line
from campaigns.models import Campaign, Template
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
) -> Template:
    """Create or update a reusable template (it must compile in the sandbox)."""
    if not name.strip():
        raise ValidationError("Give the template a name.", field="name")
    subject = one_line(subject, "subject", "subject")
    check_templates(subject, html_body, text_body)
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
    )
