"""A campaign's figures, as its report page shows them (tracking.analytics): human and machine
opens and clicks apart, and unique or per-domain engagement only when the account tracks
individually (otherwise they are null, as the page leaves them out)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.spec import operation
from api.v1 import v1
from core.auth import api_caller
from core.permissions import Permission
from tracking import analytics


class LinkFigures(BaseModel):
    url: str
    clicks: int
    unique_clicks: int | None
    machine_clicks: int


class DomainFigures(BaseModel):
    domain: str
    sent: int
    failed: int
    opens: int | None
    unique_opens: int | None
    clicks: int | None
    unique_clicks: int | None


class ReportOut(BaseModel):
    campaign_id: int
    identified: bool = Field(
        description="the account tracks individually; when false, opens and clicks are "
        "anonymous counts and unique or per-domain engagement is not available (null)"
    )
    total: int
    sent: int
    pending: int
    failed: int
    skipped: int
    bounces: int
    complaints: int
    unsubscribes: int
    opens: int = Field(description="by people (machines apart)")
    unique_opens: int | None
    clicks: int = Field(description="by people (machines apart)")
    unique_clicks: int | None
    machine_opens: int
    machine_clicks: int
    machine_reasons: dict[str, int]
    links: list[LinkFigures]
    domains: list[DomainFigures]


@v1.get("/campaigns/<int:campaign_id>/report")
@operation(Permission.VIEW_REPORTS, ReportOut, tags=("reports",))
def campaign_report(campaign_id: int) -> ReportOut:
    """The campaign's figures, with the report page's human/machine split and privacy limits."""
    report = analytics.campaign_report(api_caller().account_id, campaign_id)
    s, known = report.stats, report.identified
    return ReportOut(
        campaign_id=report.campaign.id,
        identified=known,
        total=s.total,
        sent=s.sent,
        pending=s.pending,
        failed=s.failed,
        skipped=s.skipped,
        bounces=report.bounces.bounces,
        complaints=report.bounces.complaints,
        unsubscribes=s.unsubscribes,
        opens=s.opens,
        unique_opens=s.unique_opens if known else None,
        clicks=s.clicks,
        unique_clicks=s.unique_clicks if known else None,
        machine_opens=s.machine_opens,
        machine_clicks=s.machine_clicks,
        machine_reasons=dict(report.machine_reasons),
        links=[
            LinkFigures(
                url=link.url,
                clicks=link.clicks,
                unique_clicks=link.unique_clicks if known else None,
                machine_clicks=link.machine_clicks,
            )
            for link in report.links
        ],
        domains=[
            DomainFigures(
                domain=d.domain,
                sent=d.sent,
                failed=d.failed,
                opens=d.opens if known else None,
                unique_opens=d.unique_opens if known else None,
                clicks=d.clicks if known else None,
                unique_clicks=d.unique_clicks if known else None,
            )
            for d in report.domains
        ],
    )
