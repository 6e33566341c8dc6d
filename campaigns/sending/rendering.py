"""The campaign compiled for :func:`campaigns.render.render_message`: the frozen view the send loop
uses (tracking, Link rows, cached per worker while the campaign sends) and the draft view
previews and test sends use; both signed with the account's DKIM key for the sender's domain."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from accounts.models import Account
from accounts.queries import get_account
from campaigns.models import Campaign, DkimKey, Link
from campaigns.render import (
    CampaignView,
    CompiledCampaign,
    Signing,
    TemplateError,
    compile_campaign,
)
from campaigns.settings import setting
from core import db
from core.errors import ValidationError
from core.mail import DkimSigner, sender_domain
from privacy.policy import may_identify_in_urls

_VIEWS: dict[tuple[int, int, str], CampaignView] = {}


def _compile_for(campaign: Campaign, account: Account) -> CompiledCampaign:
    return compile_campaign(
        subject=campaign.subject,
        html=campaign.html_body,
        text=campaign.text_body,
        account_name=account.name,
        postal_address=account.postal_address,
    )


def dkim_for(account_id: int, from_email: str) -> Signing:
    """The account's DKIM signer for the sender's domain (none without a key for it)."""
    domain = sender_domain(from_email).lower()
    key = db.session.scalar(
        select(DkimKey).where(DkimKey.account_id == account_id, DkimKey.domain == domain)
    )
    if key is None:
        return Signing()
    return Signing(DkimSigner(key.domain, key.selector, key.private_key_pem).sign)


def campaign_view(campaign: Campaign) -> CampaignView:
    """The campaign compiled for rendering; cached per worker (a sending campaign is frozen)."""
    app_id = id(current_app._get_current_object())  # type: ignore[attr-defined]
    cache_key = (app_id, campaign.id, str(campaign.started_at))
    cached = _VIEWS.get(cache_key)
    if cached is not None:
        return cached
    account = get_account(campaign.account_id)
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
        dkim=dkim_for(campaign.account_id, campaign.from_email),
    )
    if len(_VIEWS) > 64:
        _VIEWS.clear()
    _VIEWS[cache_key] = view
    return view


def draft_view(campaign: Campaign, test: bool = False) -> CampaignView:
    """A view for previews and (``test``) test sends: no tracking, no Link rows needed; a test
    send's links work and record nothing (see ``CampaignView.test``)."""
    account = get_account(campaign.account_id)
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
        dkim=dkim_for(campaign.account_id, campaign.from_email),
        test=test,
    )
