"""Dashboard, campaign, template and sending-settings pages (behind login), sender confirmation,
and the bounce webhooks (authorised by a signature, not a cookie)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from accounts.queries import get_account
from campaigns import (
    ab_tests,
    audience_count,
    bounces,
    checks,
    demo,
    exports,
    listing,
    previews,
    queries,
    senders,
    services,
    subjects,
    template_library,
)
from campaigns import gallery as gallery_layouts
from campaigns.forms import (
    PREVIEW_VIEWS,
    ABTestForm,
    CampaignForm,
    ConfirmSendForm,
    ConfirmWinnerForm,
    ContentPreviewForm,
    ConvertForm,
    DkimForm,
    LimitsForm,
    NewFromTemplateForm,
    PreviewForm,
    SaveAsTemplateForm,
    ScheduleForm,
    SenderForm,
    SmtpServerForm,
    TemplateForm,
    TestSendForm,
)
from campaigns.models import CampaignStatus
from campaigns.sending import reconciler
from core import nav, timezones
from core.auth import (
    login_required,
    member,
    public,
    require_any_permission,
    require_permission,
)
from core.errors import NotFoundError, ValidationError
from core.forms import ActionForm, show_error
from core.mail import TransientMailError
from core.permissions import Permission
from core.signing import BadTokenError
from subscribers import queries as subscriber_queries
from tracking import analytics

bp = Blueprint(
    "campaigns",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/campaigns-static",
)
# ``flask create-demo``, added at app-factory time (registering the blueprint).
bp.record_once(lambda state: state.app.cli.add_command(demo.create_demo_command))
nav.add("Dashboard", "campaigns.dashboard", 10)
nav.add(
    "Campaigns",
    "campaigns.campaigns",
    20,
    active=(
        "campaigns.campaigns",
        "campaigns.edit",
        "campaigns.detail",
        "campaigns.confirm_send",
        "campaigns.transactional",
    ),
)
nav.add(
    "Templates",
    "campaigns.templates",
    25,
    active=("campaigns.template", "campaigns.gallery", "media.library"),
)
nav.add("Sending", "campaigns.sending", 85)
# Every page that shows a subject shows a personalised one rendered (campaigns/_subject.html).
bp.app_template_global("shown_subject")(subjects.shown_subject)

DEFAULT_BODY = """<html><body>
<h1>Hello {{ contact.first_name or "there" }}!</h1>
<p>Write your message here. Links like <a href="https://example.com/">this one</a> are tracked
as the account's privacy settings allow.</p>
</body></html>"""

# Previews show marketer-written HTML: no script, no forms, no network but images.
PREVIEW_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "font-src https: data:; sandbox"
)


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
    args = request.args
    status = args.get("status", "")
    filters = listing.CampaignFilter(
        q=args.get("q", "")[:200], status=status if status in listing.STATUSES else ""
    )
    page = listing.search_campaigns(me.account_id, filters, args.get("page", 1, type=int))
    rows = [(c, analytics.campaign_stats(c.id)) for c in page.items]
    from_template = NewFromTemplateForm()
    from_template.template_id.choices = [(t.id, t.name) for t in queries.templates(me.account_id)]
    return render_template(
        "campaigns/campaigns.html",
        rows=rows,
        page=page,
        filters=filters,
        statuses=listing.STATUSES,
        query_args={k: v for k, v in args.items() if k in ("q", "status") and v},
        from_template=from_template,
    )


@bp.post("/campaigns/<int:campaign_id>/duplicate")
@require_permission(Permission.MANAGE_CAMPAIGNS)
def duplicate(campaign_id: int) -> Any:
    me = member()
    if not ActionForm().validate_on_submit():
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    copy = services.duplicate_campaign(me.account_id, campaign_id)
    flash(f"“{copy.name}” is a new draft: check it and send when ready.", "success")
    return redirect(url_for("campaigns.edit", campaign_id=copy.id))


def _form(account_id: int, obj: Any = None) -> CampaignForm:
    form = CampaignForm(obj=obj)
    zone = timezones.zone_label(timezones.current_zone())
    form.best_hour_start.label.text = f"Send at each recipient's best hour from ({zone} time)"
    form.best_hour_end.label.text = f"until ({zone} time)"
    form.list_ids.choices = list(subscriber_queries.list_choices(account_id))
    form.segment_ids.choices = [(s.id, s.name) for s in subscriber_queries.segments(account_id)]
    if obj is not None and not form.is_submitted():
        form.list_ids.data = services.campaign_list_ids(obj.id)
        form.segment_ids.data = services.campaign_segment_ids(obj.id)
        has_window = obj.best_hour_start is not None
        form.best_hour_start.data = str(obj.best_hour_start) if has_window else ""
        form.best_hour_end.data = str(obj.best_hour_end) if has_window else "12"
    return form


@bp.route("/campaigns/new", methods=["GET", "POST"])
@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_CAMPAIGNS)
def edit(campaign_id: int | None = None) -> Any:
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id) if campaign_id else None
    form = _form(me.account_id, campaign)
    if campaign is None and not form.is_submitted():
        form.html_body.data = DEFAULT_BODY
        form.from_name.data = me.account_name
        verified = queries.verified_sender_choices(me.account_id)
        if verified:
            form.from_email.data = verified[0][0]
    if form.validate_on_submit():
        try:
            saved = services.save_campaign(
                me.account_id,
                campaign_id=campaign_id,
                name=form.name.data or "",
                subject=form.subject.data or "",
                from_name=form.from_name.data or "",
                from_email=form.from_email.data or "",
                reply_to=form.reply_to.data or "",
                html_body=form.html_body.data or "",
                text_body=form.text_body.data or "",
                **_body_args(form),
                list_ids=form.list_ids.data or [],
                segment_ids=form.segment_ids.data or [],
                best_hour_window=(int(form.best_hour_start.data), int(form.best_hour_end.data))
                if form.best_hour_start.data
                else None,
                track_opens=bool(form.track_opens.data),
                track_clicks=bool(form.track_clicks.data),
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Campaign saved.", "success")
            return redirect(url_for("campaigns.detail", campaign_id=saved.id))
    return render_template(
        "campaigns/edit.html",
        form=form,
        campaign=campaign,
        senders=queries.verified_sender_choices(me.account_id),
        fields=queries.personalisation_fields(me.account_id),
        convert_form=ConvertForm(formdata=None),
    )


def _body_args(form: CampaignForm | TemplateForm) -> dict[str, Any]:
    """The body as the compose form sent it: raw HTML comes in ``html_body``, every other
    format's source in ``content_source``."""
    fmt = form.content_format.data or "html"
    return {
        "content_format": fmt,
        "content_source": None if fmt == "html" else (form.content_source.data or ""),
    }


@bp.post("/campaigns/<int:campaign_id>/convert")
@require_permission(Permission.MANAGE_CAMPAIGNS)
def convert(campaign_id: int) -> Any:
    """Convert a draft's body down to raw HTML, once the person ticked that they understand."""
    me = member()
    form = ConvertForm()
    if not form.validate_on_submit():
        flash("Tick the box to confirm the conversion.", "error")
    else:
        try:
            services.convert_content(me.account_id, campaign_id, "html")
        except ValidationError as exc:
            flash(exc.message, "error")
        else:
            flash("Converted to raw HTML: the email is unchanged, edit its HTML below.", "success")
    return redirect(url_for("campaigns.edit", campaign_id=campaign_id))


@bp.post("/content-preview")
@require_any_permission(Permission.MANAGE_TEMPLATES, Permission.MANAGE_CAMPAIGNS)
def content_preview() -> Any:
    """A body being written, compiled as saving would (fields left as written), for the live
    preview in a sandboxed iframe."""
    form = ContentPreviewForm()
    if not form.validate_on_submit():
        body = "<p style='color:#c92a2a;font-family:sans-serif'>The page expired: reload it.</p>"
    else:
        body = previews.content_preview(
            form.content_format.data or "html", form.content_source.data or ""
        )
    response = make_response(body)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/campaigns/from-template")
@require_permission(Permission.MANAGE_CAMPAIGNS)
def from_template() -> Any:
    me = member()
    form = NewFromTemplateForm()
    form.template_id.choices = [(t.id, t.name) for t in queries.templates(me.account_id)]
    if form.validate_on_submit():
        campaign = services.campaign_from_template(
            me.account_id, form.template_id.data or 0, form.name.data or ""
        )
        flash("Draft created from the template.", "success")
        return redirect(url_for("campaigns.edit", campaign_id=campaign.id))
    flash("Choose a template.", "error")
    return redirect(url_for("campaigns.campaigns"))


@bp.get("/templates/gallery")
@require_permission(Permission.MANAGE_CAMPAIGNS)
def gallery() -> Any:
    me = member()
    return render_template(
        "campaigns/gallery.html",
        starters=gallery_layouts.GALLERY,
        templates=queries.templates(me.account_id),
        action=ActionForm(),
    )


@bp.post("/campaigns/from-gallery/<slug>")
@require_permission(Permission.MANAGE_CAMPAIGNS)
def from_gallery(slug: str) -> Any:
    form = ActionForm()
    if not form.validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("campaigns.gallery"))
    campaign = services.campaign_from_gallery(member().account_id, slug)
    flash("Draft created from the gallery. Choose its audience and sender next.", "success")
    return redirect(url_for("campaigns.edit", campaign_id=campaign.id))


@bp.post("/campaigns/<int:campaign_id>/save-as-template")
@require_permission(Permission.MANAGE_TEMPLATES)
def save_as_template(campaign_id: int) -> Any:
    form = SaveAsTemplateForm()
    me = member()
    if not form.validate_on_submit():
        services.get_campaign(me.account_id, campaign_id)  # 404 for another account's id
        flash("Give the template a name of at most 200 characters.", "error")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    try:
        template = template_library.template_from_campaign(
            me.account_id, campaign_id, form.name.data or ""
        )
    except ValidationError as exc:
        flash(f"Not saved as a template: {exc.message}", "error")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    flash(f"Saved as the template “{template.name}”.", "success")
    return redirect(url_for("campaigns.template", template_id=template.id))


def _contact_choices(account_id: int, q: str = "") -> list[tuple[int, str]]:
    return [(0, "A sample contact"), *queries.preview_contacts(account_id, q=q[:200])]


def _schedule_form() -> ScheduleForm:
    form = ScheduleForm()
    form.send_at.label.text = f"Send at ({timezones.zone_label(timezones.current_zone())} time)"
    return form


def _detail_forms(account_id: int) -> dict[str, Any]:
    test_form = TestSendForm()
    test_form.contact_id.choices = _contact_choices(account_id)
    preview_form = PreviewForm(request.args)
    preview_form.contact_id.choices = _contact_choices(account_id, preview_form.q.data or "")
    if preview_form.view.data not in dict(PREVIEW_VIEWS):
        preview_form.view.data = "desktop"
    return {
        "test_form": test_form,
        "preview_form": preview_form,
        "schedule_form": _schedule_form(),
        "action": ActionForm(),
    }


def _ab_context(campaign: Any, form: ABTestForm | None = None) -> dict[str, Any]:
    """The A/B test card: its set-up form (drafts), its results and the confirmation."""
    test = ab_tests.get_ab_test(campaign.id)
    found = ab_tests.variants(test.id) if test is not None else []
    if form is None:
        form = ABTestForm(formdata=None)
        if test is not None:
            for variant in found:
                getattr(form, f"subject_{variant.position}").data = variant.subject
                getattr(form, f"from_name_{variant.position}").data = variant.from_name
            form.test_percent.data = test.test_percent
            form.metric.data = test.metric
            form.wait_hours.data = max(1, test.wait_minutes // 60)
            form.auto_send.data = "yes" if test.auto_send else "no"
        else:
            form.subject_0.data = campaign.subject
    confirm = ConfirmWinnerForm(formdata=None)
    confirm.position.choices = [
        (v.position, f"{ab_tests.LETTERS[v.position]}: {v.subject}") for v in found
    ]
    if test is not None and test.winner is not None:
        confirm.position.data = test.winner
    started = test is not None and test.status != "draft"
    return {
        "ab_test": test,
        "ab_form": form,
        "ab_confirm": confirm,
        "ab_results": ab_tests.results(test) if started and test is not None else [],
        "ab_letters": ab_tests.LETTERS,
    }


def _render_detail(campaign: Any, **forms: Any) -> Any:
    me = member()
    context = _detail_forms(me.account_id)
    context.update(_ab_context(campaign, forms.pop("ab_form", None)))
    context.update(forms)
    before_sending = campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
    # A large account's count and checks are fetched by the page once it is shown.
    counted_later = before_sending and audience_count.counted_after_page(me.account_id)
    counted_here = before_sending and not counted_later
    try:
        missing = previews.preview_missing_fields(
            me.account_id, campaign.id, context["preview_form"].contact_id.data or None
        )
    except NotFoundError:
        missing = []
    preview_text = None
    if context["preview_form"].view.data == "text":
        try:
            preview_text = previews.preview(
                me.account_id, campaign.id, context["preview_form"].contact_id.data or None
            ).text
        except ValidationError as exc:
            preview_text = exc.message
        except NotFoundError:
            preview_text = "This contact cannot be previewed."
    progress = queries.progress(campaign)
    failed_page = request.args.get("failed_page", 1, type=int) or 1
    return render_template(
        "campaigns/detail.html",
        campaign=campaign,
        stats=analytics.campaign_stats(campaign.id),
        progress=progress,
        failed=queries.failed_recipients(campaign.id, failed_page) if progress.failed else None,
        bounces=queries.bounce_counts(campaign.id),
        list_names=subscriber_queries.list_choices(me.account_id),
        list_ids=services.campaign_list_ids(campaign.id),
        missing_fields=missing,
        preview_text=preview_text,
        preview_views=PREVIEW_VIEWS,
        before_sending_url=(
            url_for("campaigns.before_sending", campaign_id=campaign.id) if counted_later else None
        ),
        **(_before_sending_context(campaign) if counted_here else {"audience": None, "checks": []}),
        **context,
    )


def _before_sending_context(campaign: Any) -> dict[str, Any]:
    return {
        "audience": audience_count.recent_count_for_campaign(campaign),
        "checks": checks.run_checks(campaign, get_account(campaign.account_id)),
    }


@bp.get("/campaigns/<int:campaign_id>")
@login_required()
def detail(campaign_id: int) -> Any:
    me = member()
    return _render_detail(services.get_campaign(me.account_id, campaign_id))


@bp.get("/campaigns/<int:campaign_id>/before-sending")
@login_required()
def before_sending(campaign_id: int) -> Any:
    """The recipient count and the pre-send checks, as the part of the campaign page that a
    large account's page fetches once it is shown (empty once the campaign has started)."""
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        return ""
    return render_template("campaigns/_before_sending.html", **_before_sending_context(campaign))


@bp.get("/campaigns/<int:campaign_id>/preview")
@login_required()
def preview(campaign_id: int) -> Any:
    """The rendered HTML alone, for the sandboxed iframe (CSP sandbox, no script); with
    ``dark=1`` as a dark-mode client shows it (:func:`campaigns.previews.dark_mode`)."""
    me = member()
    contact_id = request.args.get("contact_id", type=int) or None
    try:
        shown = previews.preview(me.account_id, campaign_id, contact_id)
        body = shown.html
        if request.args.get("dark"):
            body, _how = previews.dark_mode(body)
    except ValidationError as exc:
        body = f"<p style='color:#c92a2a;font-family:sans-serif'>{exc.message}</p>"
    response = make_response(body)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


@bp.get("/campaigns/<int:campaign_id>/progress.json")
@login_required()
def progress(campaign_id: int) -> Any:
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id)
    response = jsonify(queries.progress(campaign).as_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/campaigns/<int:campaign_id>/failed.csv")
@require_permission(Permission.VIEW_REPORTS)
def failed_csv(campaign_id: int) -> Any:
    """The campaign's failed recipients and their reasons, as a CSV download."""
    body = exports.failed_csv(member().account_id, campaign_id)
    response = Response(stream_with_context(body), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="campaign-{campaign_id}-failed.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/campaigns/<int:campaign_id>/test")
@require_permission(Permission.MANAGE_CAMPAIGNS)
def test_send(campaign_id: int) -> Any:
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id)
    forms = _detail_forms(me.account_id)
    form = forms["test_form"]
    if form.validate_on_submit():
        try:
            sent = previews.send_test(
                me.account_id, campaign_id, form.addresses.data or "", form.contact_id.data or None
            )
        except ValidationError as exc:
            show_error(form, exc)
        except TransientMailError as exc:
            form.addresses.errors = [f"The SMTP server did not take the test: {exc}"]
        else:
            flash(f"Test sent to {sent} address{'es' if sent != 1 else ''}.", "success")
            return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    return _render_detail(campaign, test_form=form), 400


@bp.post("/campaigns/<int:campaign_id>/ab-test")
@require_permission(Permission.MANAGE_CAMPAIGNS)
def ab_test(campaign_id: int) -> Any:
    """Set up or change the draft's A/B test."""
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id)
    form = ABTestForm()
    if form.validate_on_submit():
        try:
            ab_tests.save_ab_test(
                me.account_id,
                campaign_id,
                subjects=form.subjects(),
                from_names=form.from_names(),
                test_percent=form.test_percent.data or 0,
                metric=form.metric.data or "",
                wait_minutes=(form.wait_hours.data or 0) * 60,
                auto_send=form.auto_send.data == "yes",
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("A/B test saved: it starts with the campaign.", "success")
            return redirect(url_for("campaigns.detail", campaign_id=campaign_id) + "#ab-test")
    return _render_detail(campaign, ab_form=form), 400


@bp.post("/campaigns/<int:campaign_id>/ab-test/delete")
@require_permission(Permission.MANAGE_CAMPAIGNS)
def delete_ab_test(campaign_id: int) -> Any:
    return _action(campaign_id, ab_tests.delete_ab_test, "A/B test removed.")


@bp.post("/campaigns/<int:campaign_id>/ab-test/confirm")
@require_permission(Permission.SEND_CAMPAIGNS)
def confirm_ab_winner(campaign_id: int) -> Any:
    """Send the rest of the audience the chosen variant."""
    me = member()
    form = ConfirmWinnerForm()
    test = ab_tests.get_ab_test(services.get_campaign(me.account_id, campaign_id).id)
    form.position.choices = [
        (v.position, v.subject) for v in (ab_tests.variants(test.id) if test else [])
    ]
    if form.validate_on_submit():
        try:
            ab_tests.confirm_winner(me.account_id, campaign_id, form.position.data)
        except ValidationError as exc:
            flash(exc.message, "error")
        else:
            flash("The rest of the audience is being sent the chosen variant.", "success")
    else:
        flash("Choose one of the variants.", "error")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/campaigns/<int:campaign_id>/schedule")
@require_permission(Permission.SEND_CAMPAIGNS)
def schedule(campaign_id: int) -> Any:
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id)
    form = _schedule_form()
    if form.validate_on_submit() and form.send_at.data is not None:
        try:
            _, note = services.schedule_local(me.account_id, campaign_id, form.send_at.data)
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Campaign scheduled.", "success")
            if note:
                flash(note, "info")
            return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    return _render_detail(campaign, schedule_form=form), 400


def _action(campaign_id: int, do: Any, done: str) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            do(me.account_id, campaign_id)
        except ValidationError as exc:
            flash(exc.message, "error")
        else:
            flash(done, "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


def _confirm_page(
    campaign: Any,
    form: ConfirmSendForm,
    count: audience_count.AudienceCount | None = None,
    changed_from: int | None = None,
) -> Any:
    count = count or audience_count.count_for_campaign(campaign)
    form.expected.data = count.recipients
    return render_template(
        "campaigns/confirm_send.html",
        campaign=campaign,
        count=count,
        problems=services.send_problems(campaign.account_id, campaign.id),
        changed_from=changed_from,
        form=form,
    )


@bp.get("/campaigns/<int:campaign_id>/send")
@require_permission(Permission.SEND_CAMPAIGNS)
def confirm_send(campaign_id: int) -> Any:
    """The "Send now" confirmation: the exact recipient count, and a button that POSTs it."""
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        flash("This campaign has already been sent or is sending.", "error")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    return _confirm_page(campaign, ConfirmSendForm())


@bp.post("/campaigns/<int:campaign_id>/send")
@require_permission(Permission.SEND_CAMPAIGNS)
def send(campaign_id: int) -> Any:
    """Start sending what was confirmed; when the audience moved materially since the count
    was shown, show the new count and ask again instead."""
    me = member()
    campaign = services.get_campaign(me.account_id, campaign_id)
    form = ConfirmSendForm()
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        flash("This campaign has already been sent or is sending.", "error")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    if not form.validate_on_submit() or form.expected.data is None:
        flash("Confirm the number of recipients first.", "error")
        return redirect(url_for("campaigns.confirm_send", campaign_id=campaign_id))
    confirmed = form.expected.data
    count = audience_count.count_for_campaign(campaign)
    if audience_count.changed_materially(confirmed, count.recipients):
        again = ConfirmSendForm(formdata=None)
        return _confirm_page(campaign, again, count, changed_from=confirmed), 409
    try:
        services.start(me.account_id, campaign_id)
    except ValidationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("campaigns.detail", campaign_id=campaign_id))
    noun = "recipient" if count.recipients == 1 else "recipients"
    skipped = ""
    if count.suppressed:  # they have a message row too, marked skipped when its turn comes
        were = "address is" if count.suppressed == 1 else "addresses are"
        skipped = f" ({count.suppressed:,} suppressed {were} skipped)"
    flash(f"Sending started to {count.recipients:,} {noun}{skipped}.", "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.post("/campaigns/<int:campaign_id>/unschedule")
@require_permission(Permission.SEND_CAMPAIGNS)
def unschedule(campaign_id: int) -> Any:
    return _action(campaign_id, services.unschedule, "Schedule removed; the campaign is a draft.")


@bp.post("/campaigns/<int:campaign_id>/pause")
@require_permission(Permission.SEND_CAMPAIGNS)
def pause(campaign_id: int) -> Any:
    return _action(campaign_id, services.pause, "Paused.")


@bp.post("/campaigns/<int:campaign_id>/resume")
@require_permission(Permission.SEND_CAMPAIGNS)
def resume(campaign_id: int) -> Any:
    return _action(campaign_id, services.resume, "Resumed.")


@bp.post("/campaigns/<int:campaign_id>/cancel")
@require_permission(Permission.SEND_CAMPAIGNS)
def cancel(campaign_id: int) -> Any:
    return _action(campaign_id, services.cancel, "Cancelled: nothing more will be sent.")


# --------------------------------------------------------------------------- transactional


@bp.get("/transactional")
@require_any_permission(Permission.SEND_CAMPAIGNS, Permission.VIEW_REPORTS)
def transactional() -> Any:
    me = member()
    return render_template(
        "campaigns/transactional.html", messages=queries.recent_transactional(me.account_id)
    )


# --------------------------------------------------------------------------- templates


@bp.get("/templates")
@require_any_permission(Permission.MANAGE_TEMPLATES, Permission.MANAGE_CAMPAIGNS)
def templates() -> Any:
    me = member()
    return render_template(
        "campaigns/templates.html", templates=queries.templates(me.account_id), action=ActionForm()
    )


@bp.route("/templates/new", methods=["GET", "POST"])
@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_TEMPLATES)
def template(template_id: int | None = None) -> Any:
    me = member()
    existing = template_library.get_template(me.account_id, template_id) if template_id else None
    form = TemplateForm(obj=existing)
    if existing is None and not form.is_submitted():
        form.html_body.data = DEFAULT_BODY
    if form.validate_on_submit():
        try:
            template_library.save_template(
                me.account_id,
                template_id=template_id,
                name=form.name.data or "",
                subject=form.subject.data or "",
                html_body=form.html_body.data or "",
                text_body=form.text_body.data or "",
                **_body_args(form),
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Template saved.", "success")
            return redirect(url_for("campaigns.templates"))
    return render_template(
        "campaigns/template_edit.html",
        form=form,
        template=existing,
        fields=queries.personalisation_fields(me.account_id),
    )


@bp.post("/templates/<int:template_id>/delete")
@require_permission(Permission.MANAGE_TEMPLATES)
def delete_template(template_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        template_library.delete_template(me.account_id, template_id)
        flash("Template deleted.", "success")
    return redirect(url_for("campaigns.templates"))


# --------------------------------------------------------------------------- sending settings


def _sending_page(**forms: Any) -> Any:
    me = member()
    limits = queries.sending_settings(me.account_id)
    context: dict[str, Any] = {
        "sender_form": SenderForm(),
        "server_form": SmtpServerForm(),
        "dkim_form": DkimForm(),
        "limits_form": LimitsForm(
            max_per_second=limits.max_per_second, max_per_domain=limits.max_per_domain
        ),
    }
    context.update(forms)
    keys = [(key, senders.dkim_record(key)) for key in queries.dkim_keys(me.account_id)]
    return render_template(
        "campaigns/sending.html",
        senders=queries.senders(me.account_id),
        servers=queries.smtp_servers(me.account_id),
        keys=keys,
        action=ActionForm(),
        **context,
    )


@bp.get("/sending")
@require_permission(Permission.MANAGE_SENDING)
def sending() -> Any:
    return _sending_page()


@bp.post("/sending/senders")
@require_permission(Permission.MANAGE_SENDING)
def add_sender() -> Any:
    me = member()
    form = SenderForm()
    if form.validate_on_submit():
        try:
            senders.add_sender(me.account_id, form.email.data or "", form.name.data or "")
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash(f"We emailed a confirmation link to {form.email.data}.", "success")
            return redirect(url_for("campaigns.sending"))
    return _sending_page(sender_form=form), 400


@bp.post("/sending/senders/<int:sender_id>/delete")
@require_permission(Permission.MANAGE_SENDING)
def delete_sender(sender_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        senders.delete_sender(me.account_id, sender_id)
        flash("Sender removed.", "success")
    return redirect(url_for("campaigns.sending"))


@bp.post("/sending/servers")
@require_permission(Permission.MANAGE_SENDING)
def add_server() -> Any:
    me = member()
    form = SmtpServerForm()
    if form.validate_on_submit():
        try:
            senders.save_smtp_server(
                me.account_id,
                name=form.name.data or "",
                url=form.url.data or "",
                max_per_second=float(form.max_per_second.data or 0),
                max_connections=int(form.max_connections.data or 1),
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("SMTP server added.", "success")
            return redirect(url_for("campaigns.sending"))
    return _sending_page(server_form=form), 400


@bp.post("/sending/servers/<int:server_id>/delete")
@require_permission(Permission.MANAGE_SENDING)
def delete_server(server_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        senders.delete_smtp_server(me.account_id, server_id)
        flash("SMTP server removed.", "success")
    return redirect(url_for("campaigns.sending"))


@bp.post("/sending/dkim")
@require_permission(Permission.MANAGE_SENDING)
def add_dkim() -> Any:
    me = member()
    form = DkimForm()
    if form.validate_on_submit():
        try:
            senders.create_dkim_key(me.account_id, form.domain.data or "", form.selector.data or "")
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("DKIM key created: publish the DNS record shown below.", "success")
            return redirect(url_for("campaigns.sending"))
    return _sending_page(dkim_form=form), 400


@bp.post("/sending/dkim/<int:key_id>/delete")
@require_permission(Permission.MANAGE_SENDING)
def delete_dkim(key_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        senders.delete_dkim_key(me.account_id, key_id)
        flash("DKIM key removed.", "success")
    return redirect(url_for("campaigns.sending"))


@bp.post("/sending/limits")
@require_permission(Permission.MANAGE_SENDING)
def limits() -> Any:
    me = member()
    form = LimitsForm()
    if form.validate_on_submit():
        try:
            senders.update_sending_settings(
                me.account_id,
                float(form.max_per_second.data or 0),
                int(form.max_per_domain.data or 0),
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Limits saved.", "success")
            return redirect(url_for("campaigns.sending"))
    return _sending_page(limits_form=form), 400


@bp.route("/senders/confirm/<token>", methods=["GET", "POST"])
@public("a signed sender-verification link")
def verify_sender(token: str) -> Any:
    """GET shows a button (link scanners fetch links); POST confirms the address."""
    try:
        sender = senders.sender_for_token(token)
    except BadTokenError:
        return render_template(
            "core/error.html", code=400, message="This link is invalid or expired."
        ), 400
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        senders.confirm_sender(token)
        return render_template("campaigns/sender_confirm.html", sender=sender, done=True, form=form)
    return render_template("campaigns/sender_confirm.html", sender=sender, done=False, form=form)


# --------------------------------------------------------------------------- webhooks


@bp.post("/webhooks/ses")
@public("Amazon SNS, verified by its signature")
def ses_webhook() -> Any:
    """Amazon SES bounce and complaint notifications delivered by SNS (signature verified).

    403 for a forged or foreign message (nothing fetched), 400 for a malformed one, 503 when
    Amazon's certificate cannot be fetched (SNS retries).
    """
    try:
        outcome = bounces.handle_sns(request.get_data())
    except bounces.SignatureError:
        abort(403)
    except bounces.FetchError:
        abort(503)
    except ValueError:
        abort(400)
    return jsonify({"result": outcome})


@bp.post("/webhooks/bounces")
@public("bounce webhook, authorised by its secret")
def generic_webhook() -> Any:
    """The generic JSON bounce webhook, authenticated by ``X-Envoy-Signature``."""
    try:
        recorded = bounces.handle_generic(
            request.get_data(), request.headers.get("X-Envoy-Signature", "")
        )
    except bounces.SignatureError:
        abort(403)
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"recorded": recorded})


def _exempt_webhooks() -> None:
    from core.app import csrf

    csrf.exempt(ses_webhook)
    csrf.exempt(generic_webhook)


_exempt_webhooks()


# --------------------------------------------------------------------------- CLI


@bp.cli.command("reconcile")
def reconcile_command() -> None:
    """Start due scheduled campaigns, recover dead claims, re-enqueue lost work."""
    import click

    report = reconciler.reconcile()
    click.echo(
        f"started {report.started} scheduled, recovered {report.recovered_claims} claims "
        f"({report.interrupted} interrupted), re-enqueued {report.requeued_campaigns} "
        f"campaigns, finished {report.finished}"
    )


@bp.cli.command("read-bounces")
def read_bounces_command() -> None:
    """Read DSN and ARF reports from BOUNCE_MAILDIR / BOUNCE_IMAP_URL."""
    import click

    click.echo(f"recorded {bounces.process_configured_mailboxes()} bounces and complaints")
