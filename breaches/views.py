"""Operators: record incidents, select accounts, send notices and reports. Owners: Settings >
Breach notices."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from breaches import queries, services
from breaches.forms import AccountsForm, IncidentForm, ReportForm
from core import nav
from core.auth import member, operator_required, require_permission
from core.errors import ValidationError
from core.forms import ActionForm, show_error
from core.permissions import Permission

bp = Blueprint("breaches", __name__, template_folder="templates")
nav.add("Breaches", "breaches.incidents", 97, role="operator", active=("breaches.incident",))


@bp.route("/admin/breaches", methods=["GET", "POST"])
@operator_required
def incidents() -> Any:
    me = member()
    form = IncidentForm()
    if form.validate_on_submit():
        try:
            incident = services.record_incident(
                me.user_id,
                title=form.title.data or "",
                what_happened=form.what_happened.data or "",
                discovered_at=form.discovered_at.data,
                data_categories=form.data_categories.data or "",
                consequences=form.consequences.data or "",
                measures=form.measures.data or "",
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Incident recorded. Select the affected accounts next.", "success")
            return redirect(url_for("breaches.incident", incident_id=incident.id))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "breaches/incidents.html", form=form, incidents=queries.incidents()
    ), status


def _incident_page(incident_id: int, status: int = 200, **forms: Any) -> Any:
    detail = queries.incident_detail(incident_id)
    accounts_form = forms.get("accounts_form") or AccountsForm()
    candidates = queries.candidate_accounts(incident_id)
    accounts_form.account_ids.choices = [(c.id, c.name) for c in candidates]
    return render_template(
        "breaches/incident.html",
        detail=detail,
        candidates=candidates,
        accounts_form=accounts_form,
        report_form=forms.get("report_form") or ReportForm(),
        action=ActionForm(),
    ), status


@bp.get("/admin/breaches/<int:incident_id>")
@operator_required
def incident(incident_id: int) -> Any:
    return _incident_page(incident_id)


@bp.post("/admin/breaches/<int:incident_id>/accounts")
@operator_required
def select_accounts(incident_id: int) -> Any:
    form = AccountsForm()
    form.account_ids.choices = []
    if form.validate_on_submit():
        try:
            added = services.select_accounts(
                member().user_id, incident_id, list(form.account_ids.data or [])
            )
        except ValidationError as exc:
            show_error(form, exc)
            return _incident_page(incident_id, 422, accounts_form=form)
        flash(f"{added} account{'s' if added != 1 else ''} added.", "success")
    return redirect(url_for("breaches.incident", incident_id=incident_id))


@bp.post("/admin/breaches/<int:incident_id>/notify")
@operator_required
def notify(incident_id: int) -> Any:
    if ActionForm().validate_on_submit():
        try:
            count = services.send_notices(member().user_id, incident_id)
        except ValidationError as exc:
            flash(exc.message, "error")
        else:
            flash(
                f"The notice is on its way to the owners of {count} "
                f"account{'s' if count != 1 else ''}.",
                "success",
            )
    return redirect(url_for("breaches.incident", incident_id=incident_id))


@bp.post("/admin/breaches/<int:incident_id>/report")
@operator_required
def report(incident_id: int) -> Any:
    form = ReportForm()
    if form.validate_on_submit():
        try:
            count = services.send_report(member().user_id, incident_id, form.report.data or "")
        except ValidationError as exc:
            show_error(form, exc)
            return _incident_page(incident_id, 422, report_form=form)
        flash(
            f"The report is on its way to the owners of {count} "
            f"account{'s' if count != 1 else ''}. The incident is closed.",
            "success",
        )
        return redirect(url_for("breaches.incident", incident_id=incident_id))
    return _incident_page(incident_id, 422, report_form=form)


@bp.get("/settings/breach-notices")
@require_permission(Permission.OWN_ACCOUNT)
def account_notices() -> Any:
    """Settings > Breach notices (owners): what the platform told this account's owners."""
    return render_template(
        "breaches/account_notices.html",
        tab="notices",
        notices=queries.notices_for_account(member().account_id),
    )
