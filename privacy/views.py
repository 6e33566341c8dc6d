"""The public data-request form, its confirmation and downloads; the marketer's privacy pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from core import botcheck, nav
from core.auth import member, operator_required, public, require_permission
from core.errors import PermissionDeniedError, ValidationError
from core.forms import ActionForm, show_error
from core.permissions import Permission
from core.signing import BadTokenError
from privacy import queries, services
from privacy.forms import DataRequestForm
from privacy.models import REQUEST_KINDS

bp = Blueprint("privacy", __name__, template_folder="templates")
nav.add(
    "Data requests", "privacy.account_requests", 70, active=("privacy.account", "privacy.contact")
)
nav.add("Privacy log", "privacy.operator_log", 95, role="operator")


# --- Public ------------------------------------------------------------------------------------


@bp.route("/privacy/request", methods=["GET", "POST"])
@public("the public data-request form")
def request_form() -> Any:
    form = DataRequestForm()
    refused = botcheck.check_request("data-request")
    if refused is None and form.validate_on_submit():
        proposed = {"name": form.new_name.data or "", "note": form.note.data or ""}
        try:
            answer = services.submit_request(
                form.email.data or "", form.kind.data or "", request.remote_addr, proposed
            )
        except ValidationError as exc:
            show_error(form, exc)
        except services.RateLimitedError:
            return render_template("privacy/rate_limited.html"), 429
        else:
            return render_template("privacy/check_inbox.html", answer=answer)
    return botcheck.render("privacy/request.html", "data-request", refused, form=form)


def _link_problem() -> tuple[str, int]:
    return render_template("privacy/link_problem.html"), 410


@bp.get("/privacy/confirm/<token>")
@public("a signed confirmation link")
def confirm(token: str) -> Any:
    try:
        pending = services.pending_request(token)
    except BadTokenError:
        return _link_problem()
    return render_template(
        "privacy/confirm.html",
        kind=pending.kind,
        kind_label=REQUEST_KINDS[pending.kind],
        proposed=pending.proposed,
        form=ActionForm(),
        token=token,
    )


@bp.post("/privacy/confirm/<token>")
@public("a signed confirmation link")
def confirm_post(token: str) -> Any:
    if not ActionForm().validate_on_submit():
        return redirect(url_for("privacy.confirm", token=token))
    try:
        outcome = services.confirm_request(token)
    except BadTokenError:
        return _link_problem()
    return render_template(
        "privacy/done.html",
        outcome=outcome,
        kind_label=REQUEST_KINDS[outcome.kind],
        form=ActionForm(),
    )


@bp.post("/privacy/download/<token>")
@public("a signed download link")
def download(token: str) -> Any:
    if not ActionForm().validate_on_submit():
        return _link_problem()
    try:
        fetched = services.fetch_download(token)
    except BadTokenError:
        return _link_problem()
    return Response(
        fetched.content,
        mimetype=fetched.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{fetched.filename}"',
            "Cache-Control": "no-store",
        },
    )


# --- Marketers ---------------------------------------------------------------------------------


@bp.get("/privacy/requests")
@require_permission(Permission.HANDLE_DATA_REQUESTS)
def account_requests() -> Any:
    me = member()
    return render_template(
        "privacy/account_requests.html",
        requests=queries.requests_for_account(me.account_id),
        audit=queries.audit_for_account(me.account_id, limit=50),
        form=ActionForm(),
    )


@bp.post("/privacy/requests/<int:request_account_id>/apply")
@require_permission(Permission.HANDLE_DATA_REQUESTS)
def apply_rectification(request_account_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            services.apply_rectification(me.account_id, request_account_id, me.user_id)
            flash("Correction applied and recorded.", "success")
        except ValidationError as exc:
            flash(exc.message, "error")
    return redirect(url_for("privacy.account_requests"))


@bp.get("/privacy/contacts/<int:contact_id>")
@require_permission(Permission.HANDLE_DATA_REQUESTS)
def contact_privacy(contact_id: int) -> Any:
    me = member()
    report = services.contact_report(me.account_id, contact_id)
    return render_template(
        "privacy/contact.html", report=report, contact_id=contact_id, form=ActionForm()
    )


@bp.post("/privacy/contacts/<int:contact_id>/export.<fmt>")
@require_permission(Permission.HANDLE_DATA_REQUESTS)
def contact_export(contact_id: int, fmt: str) -> Any:
    me = member()
    if not ActionForm().validate_on_submit():
        return redirect(url_for("privacy.contact_privacy", contact_id=contact_id))
    try:
        filename, content = services.contact_export(me.account_id, contact_id, fmt, me.user_id)
    except ValidationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("privacy.contact_privacy", contact_id=contact_id))
    return Response(
        content,
        mimetype="application/json" if fmt == "json" else "text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/privacy/contacts/<int:contact_id>/restrict")
@require_permission(Permission.HANDLE_DATA_REQUESTS)
def contact_restrict(contact_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        if request.form.get("lift") == "1":
            try:
                services.lift_restriction(me.account_id, contact_id, me.user_id)
                flash("Restriction lifted.", "success")
            except PermissionDeniedError as exc:
                flash(str(exc), "error")
        else:
            services.restrict_contact(me.account_id, contact_id, me.user_id)
            flash(
                "Processing restricted: the contact is kept but not mailed or tracked.", "success"
            )
    return redirect(url_for("privacy.contact_privacy", contact_id=contact_id))


@bp.post("/privacy/contacts/<int:contact_id>/erase")
@require_permission(Permission.MANAGE_PRIVACY)
def contact_erase(contact_id: int) -> Any:
    me = member()
    if not ActionForm().validate_on_submit():
        return redirect(url_for("privacy.contact_privacy", contact_id=contact_id))
    if request.form.get("confirm") != "erase":
        flash("Tick the box to confirm the erasure.", "error")
        return redirect(url_for("privacy.contact_privacy", contact_id=contact_id))
    services.erase_contact(me.account_id, contact_id, me.user_id)
    flash("The contact was erased. Its address stays suppressed as a keyed hash.", "success")
    return redirect(url_for("subscribers.contacts"))


# --- Operators ---------------------------------------------------------------------------------


@bp.get("/admin/privacy")
@operator_required
def operator_log() -> Any:
    from datetime import timedelta

    from core.db import utcnow
    from core.scheduler import JOBS

    tallies = queries.request_tallies(utcnow() - timedelta(days=30))
    return render_template(
        "privacy/operator_log.html",
        audit=queries.audit_log(),
        jobs=JOBS,
        tallies=tallies,
        most=max([t.received for t in tallies] + [1]),
    )
