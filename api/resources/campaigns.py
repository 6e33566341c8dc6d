"""Campaigns: compose drafts, read them, count their audience, send, schedule, pause, resume,
cancel, and follow their progress; all through campaigns.services, as the campaign pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from api.paging import DEFAULT_LIMIT, MAX_LIMIT, Sort, keyset_page
from api.schemas import Id, Strict, Timestamp
from api.spec import MAX_ID, check_if_match, operation
from api.v1 import v1
from campaigns import audience_count, listing, queries
from campaigns import services as campaigns
from campaigns.models import Campaign
from core.auth import api_caller
from core.permissions import Permission
from core.problems import FieldError, Problem

TAGS = ("campaigns",)


class CampaignFields(Strict):
    name: str = Field(min_length=1, max_length=200)
    subject: str = Field("", max_length=500, description="a Jinja template (personalisation)")
    from_name: str = Field("", max_length=200)
    from_email: str = Field("", max_length=320)
    reply_to: str = Field("", max_length=320)
    html_body: str = Field("", max_length=1_000_000)
    text_body: str = Field("", max_length=1_000_000, description="empty: made from the HTML")
    list_ids: list[Id] = Field(default_factory=list, max_length=100)
    segment_ids: list[Id] = Field(default_factory=list, max_length=100)
    track_opens: bool = True
    track_clicks: bool = True


class CampaignUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    subject: str | None = Field(None, max_length=500)
    from_name: str | None = Field(None, max_length=200)
    from_email: str | None = Field(None, max_length=320)
    reply_to: str | None = Field(None, max_length=320)
    html_body: str | None = Field(None, max_length=1_000_000)
    text_body: str | None = Field(None, max_length=1_000_000)
    list_ids: list[Id] | None = Field(None, max_length=100)
    segment_ids: list[Id] | None = Field(None, max_length=100)
    track_opens: bool | None = None
    track_clicks: bool | None = None


class CampaignOut(BaseModel):
    id: int
    name: str
    subject: str
    from_name: str
    from_email: str
    reply_to: str
    html_body: str
    text_body: str
    list_ids: list[int]
    segment_ids: list[int]
    track_opens: bool
    track_clicks: bool
    status: str
    created_at: Timestamp
    scheduled_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    pause_reason: str

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignOut:
        return cls(
            id=campaign.id,
            name=campaign.name,
            subject=campaign.subject,
            from_name=campaign.from_name,
            from_email=campaign.from_email,
            reply_to=campaign.reply_to,
            html_body=campaign.html_body,
            text_body=campaign.text_body,
            list_ids=campaigns.campaign_list_ids(campaign.id),
            segment_ids=campaigns.campaign_segment_ids(campaign.id),
            track_opens=campaign.track_opens,
            track_clicks=campaign.track_clicks,
            status=str(campaign.status),
            created_at=campaign.created_at,
            scheduled_at=campaign.scheduled_at,
            started_at=campaign.started_at,
            finished_at=campaign.finished_at,
            pause_reason=campaign.pause_reason,
        )


class CampaignSummary(BaseModel):
    id: int
    name: str
    subject: str
    status: str
    created_at: Timestamp
    scheduled_at: Timestamp | None


class CampaignPage(BaseModel):
    items: list[CampaignSummary]
    next_cursor: str | None


class CampaignQuery(BaseModel):
    q: str = Field("", max_length=200, description="part of the name or subject")
    status: Literal["", *listing.STATUSES] = ""  # type: ignore[valid-type]
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=500)


class AudienceOut(BaseModel):
    recipients: int = Field(description="who would receive it now (suppressed ones included)")
    suppressed: int = Field(description="of them, suppressed addresses: skipped when sending")
    problems: list[str] = Field(description="what must be fixed before it can be sent")


class SendIn(Strict):
    expected_recipients: int | None = Field(
        None,
        ge=0,
        le=MAX_ID,
        description="the count you confirmed (GET …/audience); when the audience moved by "
        "more than 1 % since, nothing is sent and the answer is 409 with the new count",
    )


class ScheduleIn(Strict):
    send_at: AwareDatetime = Field(description="RFC 3339 with an offset, in the future")


class ProgressOut(BaseModel):
    status: str
    total: int
    sent: int
    failed: int
    skipped: int
    pending: int
    percent: int
    rate_per_second: float
    pause_reason: str
    stalled: str


def _mine(campaign_id: int) -> Campaign:
    return campaigns.get_campaign(api_caller().account_id, campaign_id)


@v1.get("/campaigns")
@operation(Permission.MANAGE_CAMPAIGNS, CampaignPage, tags=TAGS)
def list_campaigns(query: CampaignQuery) -> CampaignPage:
    """The account's campaigns, newest first, searchable by name and subject and status."""
    page = keyset_page(
        listing.campaign_search(
            api_caller().account_id, listing.CampaignFilter(q=query.q, status=query.status)
        ),
        Campaign.id,
        {"created": Sort(Campaign.id)},
        "-created",
        query.limit,
        query.cursor,
        {"q": query.q, "status": query.status},
        lambda campaign: (campaign.id, campaign.id),
    )
    return CampaignPage(
        items=[
            CampaignSummary(
                id=c.id,
                name=c.name,
                subject=c.subject,
                status=str(c.status),
                created_at=c.created_at,
                scheduled_at=c.scheduled_at,
            )
            for c in page.items
        ],
        next_cursor=page.next_cursor,
    )


@v1.post("/campaigns")
@operation(Permission.MANAGE_CAMPAIGNS, CampaignOut, status=201, creates=True, tags=TAGS)
def create_campaign(json: CampaignFields) -> tuple[CampaignOut, int]:
    """Create a draft: content, sender, audience (lists and segments) and tracking switches.

    Subject and body are sandboxed Jinja templates, checked as the editor checks them."""
    made = campaigns.save_campaign(
        api_caller().account_id,
        campaign_id=None,
        name=json.name,
        subject=json.subject,
        from_name=json.from_name,
        from_email=json.from_email,
        html_body=json.html_body,
        text_body=json.text_body,
        reply_to=json.reply_to,
        list_ids=json.list_ids,
        segment_ids=json.segment_ids,
        track_opens=json.track_opens,
        track_clicks=json.track_clicks,
    )
    return CampaignOut.of(made), 201


@v1.get("/campaigns/<int:campaign_id>")
@operation(Permission.MANAGE_CAMPAIGNS, CampaignOut, etag=True, tags=TAGS)
def get_campaign(campaign_id: int) -> CampaignOut:
    """Read a campaign."""
    return CampaignOut.of(_mine(campaign_id))


@v1.patch("/campaigns/<int:campaign_id>")
@operation(Permission.MANAGE_CAMPAIGNS, CampaignOut, etag=True, tags=TAGS)
def update_campaign(campaign_id: int, json: CampaignUpdate) -> CampaignOut:
    """Change a draft (fields left out stay); only drafts can be edited."""
    current = CampaignOut.of(_mine(campaign_id))
    check_if_match(current)
    merged = current.model_copy(update=json.model_dump(exclude_none=True))
    saved = campaigns.save_campaign(
        api_caller().account_id,
        campaign_id=campaign_id,
        name=merged.name,
        subject=merged.subject,
        from_name=merged.from_name,
        from_email=merged.from_email,
        html_body=merged.html_body,
        text_body=merged.text_body,
        reply_to=merged.reply_to,
        list_ids=merged.list_ids,
        segment_ids=merged.segment_ids,
        track_opens=merged.track_opens,
        track_clicks=merged.track_clicks,
    )
    return CampaignOut.of(saved)


@v1.get("/campaigns/<int:campaign_id>/audience")
@operation(Permission.SEND_CAMPAIGNS, AudienceOut, tags=TAGS)
def campaign_audience(campaign_id: int) -> AudienceOut:
    """Who would receive the campaign now, as the "Send now" confirmation counts them."""
    campaign = _mine(campaign_id)
    count = audience_count.count_for_campaign(campaign)
    return AudienceOut(
        recipients=count.recipients,
        suppressed=count.suppressed,
        problems=campaigns.send_problems(campaign.account_id, campaign.id),
    )


@v1.post("/campaigns/<int:campaign_id>/send")
@operation(
    Permission.SEND_CAMPAIGNS,
    CampaignOut,
    tags=TAGS,
    conflict="The audience moved by more than 1 % since `expected_recipients` was counted; "
    "nothing was sent and `detail` gives the new count.",
)
def send_campaign(campaign_id: int, json: SendIn) -> CampaignOut:
    """Start sending now (a draft or a scheduled campaign).

    With ``expected_recipients``, as the "Send now" confirmation: an audience that moved by
    more than 1 % since you counted it is not sent (409, with the new count)."""
    campaign = _mine(campaign_id)
    if json.expected_recipients is not None:
        count = audience_count.count_for_campaign(campaign)
        if audience_count.changed_materially(json.expected_recipients, count.recipients):
            raise Problem(
                409,
                f"The audience is now {count.recipients} recipients, not "
                f"{json.expected_recipients}: check it and send again with the new count.",
                "audience-changed",
            )
    return CampaignOut.of(campaigns.start(campaign.account_id, campaign_id))


@v1.post("/campaigns/<int:campaign_id>/schedule")
@operation(Permission.SEND_CAMPAIGNS, CampaignOut, tags=TAGS)
def schedule_campaign(campaign_id: int, json: ScheduleIn) -> CampaignOut:
    """Send at a time in the future (it must be ready to send)."""
    try:
        when = json.send_at.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        when = datetime.min
    if not datetime(2000, 1, 1) < when < datetime(9000, 1, 1):
        raise Problem(
            422,
            "Choose a time in the future.",
            "validation-error",
            [FieldError("send_at", "out of range")],
        )
    return CampaignOut.of(campaigns.schedule(api_caller().account_id, campaign_id, when))


@v1.post("/campaigns/<int:campaign_id>/unschedule")
@operation(Permission.SEND_CAMPAIGNS, CampaignOut, tags=TAGS)
def unschedule_campaign(campaign_id: int) -> CampaignOut:
    """Turn a scheduled campaign back into a draft."""
    return CampaignOut.of(campaigns.unschedule(api_caller().account_id, campaign_id))


@v1.post("/campaigns/<int:campaign_id>/pause")
@operation(Permission.SEND_CAMPAIGNS, CampaignOut, tags=TAGS)
def pause_campaign(campaign_id: int) -> CampaignOut:
    """Stop sending after the messages in flight."""
    return CampaignOut.of(campaigns.pause(api_caller().account_id, campaign_id))


@v1.post("/campaigns/<int:campaign_id>/resume")
@operation(Permission.SEND_CAMPAIGNS, CampaignOut, tags=TAGS)
def resume_campaign(campaign_id: int) -> CampaignOut:
    """Continue a paused campaign."""
    return CampaignOut.of(campaigns.resume(api_caller().account_id, campaign_id))


@v1.post("/campaigns/<int:campaign_id>/cancel")
@operation(Permission.SEND_CAMPAIGNS, CampaignOut, tags=TAGS)
def cancel_campaign(campaign_id: int) -> CampaignOut:
    """Stop for good: messages not yet sent are never sent."""
    return CampaignOut.of(campaigns.cancel(api_caller().account_id, campaign_id))


@v1.get("/campaigns/<int:campaign_id>/progress")
@operation(Permission.SEND_CAMPAIGNS, ProgressOut, tags=TAGS)
def campaign_progress(campaign_id: int) -> ProgressOut:
    """Where sending stands: counts by outcome, the rate, and why it paused or stalled."""
    return ProgressOut.model_validate(queries.progress(_mine(campaign_id)).as_dict())
