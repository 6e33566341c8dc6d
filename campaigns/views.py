"""Dashboard and campaign pages (behind login)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from campaigns import queries, services
from campaigns.forms import CampaignForm
from core import nav
from core.auth import login_required, member
from core.errors import ValidationError
from core.forms import ActionForm, show_error
from subscribers import queries as subscriber_queries
from tracking import analytics

bp = Blueprint("campaigns", __name__, template_folder="templates")
nav.add("Dashboard", "campaigns.dashboard", 10)
nav.add(
    "Campaigns",
    "campaigns.campaigns",
    20,
    active=("campaigns.campaigns", "campaigns.edit", "campaigns.detail"),
)

DEFAULT_BODY = """<html><body>
<h1>Hello!</h1>
<p>Write your message here. Links like <a href="https://example.com/">this one</a> are tracked
as the account's privacy settings allow.</p>
</body></html>"""


@bp.get("/dashboard")
@login_required()
def dashboard() -> Any:
    me = member()
    rows = [
        (c, analytics.campaign_stats(c.id)) for c in queries.list_campaigns(me.account_id, limit=10)
    ]
    return render_template(
        "campaigns/dashboard.html",
        rows=rows,
        lists=subscriber_queries.list_summaries(me.account_id),
    )


@bp.get("/campaigns")
@login_required()
def campaigns() -> Any:
    me = member()
    rows = [(c, analytics.campaign_stats(c.id)) for c in queries.list_campaigns(me.account_id)]
    return render_template("campaigns/campaigns.html", rows=rows)


def _form(account_id: int, obj: Any = None) -> CampaignForm:
    form = CampaignForm(obj=obj)
    form.list_id.choices = [(0, "— choose a list —"), *subscriber_queries.list_choices(account_id)]
    return form


@bp.route("/campaigns/new", methods=["GET", "POST"])
@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@login_required()
def edit(campaign_id: int | None = None) -> Any:
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id) if campaign_id else None
    form = _form(me.account_id, campaign)
    if campaign is None and not form.is_submitted():
        form.html_body.data = DEFAULT_BODY
        form.from_name.data = me.account_name
    if form.validate_on_submit():
        try:
            saved = services.save_campaign(
                me.account_id,
                campaign_id=campaign_id,
                name=form.name.data or "",
                subject=form.subject.data or "",
                from_name=form.from_name.data or "",
                from_email=form.from_email.data or "",
                html_body=form.html_body.data or "",
                list_id=form.list_id.data or None,
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Campaign saved.", "success")
            return redirect(url_for("campaigns.detail", campaign_id=saved.id))
    return render_template("campaigns/edit.html", form=form, campaign=campaign)


@bp.get("/campaigns/<int:campaign_id>")
@login_required()
def detail(campaign_id: int) -> Any:
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id)
    return render_template(
        "campaigns/detail.html",
        campaign=campaign,
        stats=analytics.campaign_stats(campaign.id),
        action=ActionForm(),
    )


@bp.post("/campaigns/<int:campaign_id>/send")
@login_required()
def send(campaign_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            services.start(me.account_id, campaign_id)
        except ValidationError as exc:
            flash(exc.message, "error")
        else:
            flash("Sending started.", "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
