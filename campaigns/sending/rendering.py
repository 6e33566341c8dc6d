"""The campaign compiled for :func:`campaigns.render.render_message`: the frozen view the send loop
uses (tracking, Link rows, cached per worker while the campaign sends) and the draft view
previews and test sends use; both signed with the account's DKIM key for the sender's domain."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from sqlalchemy import select

from accounts.models import Account
from accounts.queries import get_account
from campaigns.models import ABTest, ABVariant, Campaign, DkimKey, Link, Message
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

_VIEWS: dict[tuple[int, int, str, int | None], CampaignView] = {}


def _compile_for(
    campaign: Campaign, account: Account, variant: ABVariant | None = None
) -> CompiledCampaign:
    return compile_campaign(
        subject=variant.subject if variant is not None else campaign.subject,
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


def campaign_view(campaign: Campaign, variant: ABVariant | None = None) -> CampaignView:
    """The campaign compiled for rendering, with an A/B test ``variant``'s subject and sender
    name when given; cached per worker (a sending campaign and its variants are frozen)."""
    app_id = id(current_app._get_current_object())  # type: ignore[attr-defined]
    position = variant.position if variant is not None else None
    cache_key = (app_id, campaign.id, str(campaign.started_at), position)
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
        from_name=variant.from_name if variant and variant.from_name else campaign.from_name,
        from_email=campaign.from_email,
        reply_to=campaign.reply_to,
        account_name=account.name,
        identify_in_urls=may_identify_in_urls(account.individual_tracking),
        track_opens=campaign.track_opens,
        track_clicks=campaign.track_clicks,
        link_ids=link_ids,
        compiled=_compile_for(campaign, account, variant),
        message_id_domain=sender_domain(campaign.from_email),
        return_path=str(setting("RETURN_PATH")),
        dkim=dkim_for(campaign.account_id, campaign.from_email),
    )
    if len(_VIEWS) > 64:
        _VIEWS.clear()
    _VIEWS[cache_key] = view
    return view


def claim_views(campaign: Campaign, message_ids: list[int]) -> Callable[[int], CampaignView]:
    """The view each claimed message is rendered with: the campaign's, or the one of the A/B
    test variant the message carries (one query for the claim, and none for a campaign without
    an A/B test)."""
    view = campaign_view(campaign)
    test_id = db.session.scalar(select(ABTest.id).where(ABTest.campaign_id == campaign.id))
    if test_id is None:
        return lambda message_id: view
    carried: dict[int, int] = {
        message_id: position
        for message_id, position in db.session.execute(
            select(Message.id, Message.ab_variant).where(
                Message.id.in_(message_ids), Message.ab_variant.is_not(None)
            )
        )
        if position is not None
    }
    by_position: dict[int, CampaignView] = {
        v.position: campaign_view(campaign, v)
        for v in db.session.scalars(select(ABVariant).where(ABVariant.ab_test_id == test_id))
    }
    return lambda message_id: by_position.get(carried.get(message_id, -1), view)


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
