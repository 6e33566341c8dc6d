"""Lists and contacts pages (behind login)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from core import nav
from core.auth import login_required, member
from core.errors import ValidationError
from core.forms import show_error
from subscribers import queries, services
from subscribers.forms import ContactForm, ListForm

bp = Blueprint("subscribers", __name__, template_folder="templates")
nav.add("Lists", "subscribers.lists", 30, active=("subscribers.list",))
nav.add("Contacts", "subscribers.contacts", 40, active=("subscribers.contact",))


@bp.route("/lists", methods=["GET", "POST"])
@login_required()
def lists() -> Any:
    me = member()
    form = ListForm()
    if form.validate_on_submit():
        try:
            created = services.create_list(
                me.account_id, form.name.data or "", form.description.data or ""
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash(f"List “{created.name}” created. Add contacts to it.", "success")
            return redirect(url_for("subscribers.list_detail", list_id=created.id))
    return render_template(
        "subscribers/lists.html", form=form, lists=queries.list_summaries(me.account_id)
    )


@bp.route("/lists/<int:list_id>", methods=["GET", "POST"])
@login_required()
def list_detail(list_id: int) -> Any:
    me = member()
    mailing_list = services.get_list(me.account_id, list_id)
    form = ContactForm()
    if form.validate_on_submit():
        try:
            contact = services.add_contact_to_list(
                me.account_id, list_id, form.email.data or "", form.name.data or ""
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash(f"{contact.email} is subscribed.", "success")
            return redirect(url_for("subscribers.list_detail", list_id=list_id))
    return render_template(
        "subscribers/list_detail.html",
        mailing_list=mailing_list,
        form=form,
        members=queries.list_members(me.account_id, list_id),
    )


@bp.get("/contacts")
@login_required()
def contacts() -> Any:
    me = member()
    return render_template(
        "subscribers/contacts.html", contacts=queries.recent_contacts(me.account_id)
    )


@bp.get("/contacts/<int:contact_id>")
@login_required()
def contact_detail(contact_id: int) -> Any:
    me = member()
    contact = services.get_contact(me.account_id, contact_id)
    return render_template(
        "subscribers/contact_detail.html",
        contact=contact,
        subscriptions=queries.contact_subscriptions(me.account_id, contact_id),
    )
