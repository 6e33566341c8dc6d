"""Settings > Webhooks: endpoints (list, create, edit, delete), the signing secret and its
rotation, a test event, and each endpoint's delivery log with retry."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from core.auth import member, require_permission
from core.errors import ValidationError
from core.forms import ActionForm, show_error
from core.permissions import Permission
from webhooks import endpoints, queries
from webhooks.forms import EndpointForm
from webhooks.models import SUBSCRIBABLE, DeliveryStatus

bp = Blueprint("webhooks", __name__, template_folder="templates")

MANAGE = Permission.MANAGE_SENDING


@bp.route("/settings/webhooks")
@require_permission(MANAGE)
def endpoints_page() -> Any:
    """The account's endpoints."""
    me = member()
    return render_template(
        "webhooks/endpoints.html",
        endpoints=queries.endpoints(me.account_id),
        tab="webhooks",
    )


@bp.route("/settings/webhooks/new", methods=["GET", "POST"])
@require_permission(MANAGE)
def endpoint_new() -> Any:
    """Add an endpoint; its signing secret is shown on its page."""
    me = member()
    form = EndpointForm()
    if request.method == "GET":
        form.event_types.data = [t.value for t in SUBSCRIBABLE if t.value.startswith("message.")]
    if form.validate_on_submit():
        try:
            created = endpoints.create_endpoint(
                me.account_id,
                me.user_id,
                form.url.data or "",
                form.event_types.data or [],
                form.description.data or "",
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash(
                "Endpoint added. Configure its signing secret in your receiver to verify "
                "the signatures.",
                "success",
            )
            return redirect(url_for("webhooks.endpoint_page", endpoint_id=created.endpoint.id))
    status = 200 if request.method == "GET" else 422
    return render_template(
        "webhooks/endpoint_form.html", form=form, hook=None, tab="webhooks"
    ), status


@bp.route("/settings/webhooks/<int:endpoint_id>", methods=["GET", "POST"])
@require_permission(MANAGE)
def endpoint_page(endpoint_id: int) -> Any:
    """An endpoint: its settings, its signing secret, and its delivery log."""
    me = member()
    endpoint = endpoints.get_endpoint(me.account_id, endpoint_id)
    form = EndpointForm(obj=endpoint)
    if form.validate_on_submit():
        try:
            endpoints.update_endpoint(
                me.account_id,
                me.user_id,
                endpoint_id,
                url=form.url.data or "",
                event_types=form.event_types.data or [],
                description=form.description.data or "",
                enabled=bool(form.enabled.data),
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Endpoint saved.", "success")
            return redirect(url_for("webhooks.endpoint_page", endpoint_id=endpoint_id))
    wanted = request.args.get("status", "")
    if wanted not in {s.value for s in DeliveryStatus}:
        wanted = ""
    log = queries.delivery_log(
        me.account_id, endpoint_id, request.args.get("page", 1, type=int), wanted or None
    )
    status = 200 if request.method == "GET" else 422
    return render_template(
        "webhooks/endpoint_form.html",
        form=form,
        hook=endpoint,
        secret=endpoints.current_secret(me.account_id, endpoint_id),
        log=log,
        wanted=wanted,
        statuses=list(DeliveryStatus),
        action=ActionForm(),
        tab="webhooks",
    ), status


@bp.post("/settings/webhooks/<int:endpoint_id>/rotate")
@require_permission(MANAGE)
def rotate(endpoint_id: int) -> Any:
    """Rotate the signing secret (the old one keeps signing for the grace period)."""
    me = member()
    if ActionForm().validate_on_submit():
        endpoints.rotate_secret(me.account_id, me.user_id, endpoint_id)
        flash(
            "New signing secret created. Deliveries carry signatures of both secrets until the "
            "old one expires: update your receiver now.",
            "success",
        )
    return redirect(url_for("webhooks.endpoint_page", endpoint_id=endpoint_id))


@bp.post("/settings/webhooks/<int:endpoint_id>/test")
@require_permission(MANAGE)
def send_test(endpoint_id: int) -> Any:
    """Send a ``webhook.test`` event to the endpoint."""
    me = member()
    if ActionForm().validate_on_submit():
        endpoints.send_test_event(me.account_id, endpoint_id)
        flash("Test event queued. Its delivery shows in the log below.", "success")
    return redirect(url_for("webhooks.endpoint_page", endpoint_id=endpoint_id))


@bp.post("/settings/webhooks/<int:endpoint_id>/delete")
@require_permission(MANAGE)
def delete(endpoint_id: int) -> Any:
    """Delete the endpoint and its delivery log."""
    me = member()
    if ActionForm().validate_on_submit():
        endpoints.delete_endpoint(me.account_id, me.user_id, endpoint_id)
        flash("Endpoint deleted.", "success")
    return redirect(url_for("webhooks.endpoints_page"))


@bp.post("/settings/webhooks/deliveries/<int:delivery_id>/retry")
@require_permission(MANAGE)
def retry(delivery_id: int) -> Any:
    """Attempt a failed or waiting delivery again now."""
    me = member()
    endpoint_id = request.form.get("endpoint_id", type=int)
    if ActionForm().validate_on_submit():
        try:
            delivery = endpoints.retry_delivery(me.account_id, delivery_id)
        except ValidationError as exc:
            flash(exc.message, "error")
        else:
            endpoint_id = delivery.endpoint_id
            flash("Delivery queued again.", "success")
    if endpoint_id is None:
        return redirect(url_for("webhooks.endpoints_page"))
    return redirect(url_for("webhooks.endpoint_page", endpoint_id=endpoint_id))
