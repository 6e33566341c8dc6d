"""Lists, contacts, segments, imports and exports (behind login); the operator's block pages;
and the public pages: sign-up form, double opt-in confirmation and preference centre.

Public pages change nothing on GET (link scanners fetch every URL): confirming and changing
preferences are POSTs with a CSRF token. The embeddable form posts to ``/subscribe/<key>/embed``,
which has no CSRF token (it lives on another site); double opt-in makes a forged post harmless.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from werkzeug.exceptions import RequestEntityTooLarge

from core import botcheck, nav
from core.app import csrf
from core.auth import current_member, member, operator_required, public, require_permission
from core.errors import NotFoundError, ValidationError
from core.forms import ActionForm, show_error
from core.permissions import Permission
from core.signing import BadTokenError
from subscribers import exports, queries, segments, services
from subscribers.csvformat import DELIMITER_BY_NAME, DELIMITERS, Format
from subscribers.forms import (
    BlockAddressForm,
    BlockDomainForm,
    ContactEditForm,
    ContactForm,
    ImportFormatForm,
    ImportUploadForm,
    ListForm,
    SegmentForm,
    SettingsForm,
    SignupForm,
)

bp = Blueprint(
    "subscribers",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/subscribers",
)
nav.add("Lists", "subscribers.lists", 30, active=("subscribers.list", "subscribers.subscriber"))
nav.add("Contacts", "subscribers.contacts", 40, active=("subscribers.contact",))
nav.add("Segments", "subscribers.segments_page", 42, active=("subscribers.segment",))
nav.add("Imports", "subscribers.imports_page", 44, active=("subscribers.import",))
nav.add("Blocks", "subscribers.operator_blocks", 95, role="operator")

STATUSES = ("subscribed", "unconfirmed", "unsubscribed")


def _client_ip() -> str | None:
    """The requester's address, handed straight to a service that truncates or drops it."""
    return request.remote_addr


# --- lists -------------------------------------------------------------------------------


@bp.route("/lists", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_CONTACTS)
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
        "subscribers/lists.html",
        form=form,
        lists=queries.list_summaries(me.account_id),
        suppressed=queries.suppression_counts(me.account_id),
    )


@bp.route("/lists/<int:list_id>", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_CONTACTS)
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
    signup_url = (
        url_for("subscribers.signup", key=mailing_list.signup_key, _external=True)
        if mailing_list.signup_enabled and mailing_list.signup_key
        else None
    )
    embed_url = (
        url_for("subscribers.signup_embed", key=mailing_list.signup_key, _external=True)
        if signup_url
        else None
    )
    return render_template(
        "subscribers/list_detail.html",
        mailing_list=mailing_list,
        form=form,
        action_form=ActionForm(),
        members=queries.list_members(me.account_id, list_id),
        signup_url=signup_url,
        embed_url=embed_url,
    )


@bp.post("/lists/<int:list_id>/signup-form")
@require_permission(Permission.MANAGE_CONTACTS)
def list_signup_form(list_id: int) -> Any:
    me = member()
    form = ActionForm()
    if form.validate_on_submit():
        enable = request.form.get("enable") == "1"
        services.set_signup_form(me.account_id, list_id, enable)
        flash("The public sign-up form is on." if enable else "The sign-up form is off.", "success")
    return redirect(url_for("subscribers.list_detail", list_id=list_id) + "#signup")


def _export(kind: str, object_id: int, fmt: str, name: str) -> Response:
    me = member()
    if fmt == "csv":
        body = exports.export_csv(me.account_id, kind, object_id, me.user_id)
        mimetype = "text/csv; charset=utf-8"
    elif fmt == "json":
        body = exports.export_json(me.account_id, kind, object_id, me.user_id)
        mimetype = "application/json"
    else:
        abort(404)
    response = Response(stream_with_context(body), mimetype=mimetype)
    safe = "".join(ch if ch.isalnum() else "-" for ch in name)[:60] or kind
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/lists/<int:list_id>/export.<fmt>")
@require_permission(Permission.EXPORT_CONTACTS)
def list_export(list_id: int, fmt: str) -> Any:
    mailing_list = services.get_list(member().account_id, list_id)
    return _export("list", list_id, fmt, mailing_list.name)


# --- contacts ----------------------------------------------------------------------------


@bp.get("/contacts")
@require_permission(Permission.MANAGE_CONTACTS)
def contacts() -> Any:
    me = member()
    args = request.args
    list_id = args.get("list", type=int)
    status = args.get("status", "")
    filters = queries.ContactFilter(
        q=args.get("q", "")[:320],
        status=status if status in STATUSES else "",
        list_id=list_id,
        attribute=args.get("attribute", "")[:64],
        attribute_value=args.get("value", "")[:320],
    )
    page = queries.search_contacts(me.account_id, filters, args.get("page", 1, type=int))
    query_args = {k: v for k, v in args.items() if k != "page" and v}
    return render_template(
        "subscribers/contacts.html",
        page=page,
        filters=filters,
        lists=queries.list_choices(me.account_id),
        statuses=STATUSES,
        query_args=query_args,
    )


def _attributes_text(attributes: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {value}" for key, value in sorted(attributes.items()))


@bp.route("/contacts/<int:contact_id>", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_CONTACTS)
def contact_detail(contact_id: int) -> Any:
    me = member()
    contact = services.get_contact(me.account_id, contact_id)
    form = ContactEditForm()
    if request.method == "GET":
        form.name.data = contact.name
        form.attributes.data = _attributes_text(contact.attributes or {})
    elif form.validate_on_submit():
        try:
            attributes = services.attributes_from_text(form.attributes.data or "")
            services.update_contact(me.account_id, contact_id, form.name.data or "", attributes)
        except ValidationError as exc:
            exc.field = exc.field or "attributes"
            show_error(form, exc)
        else:
            flash("Contact saved.", "success")
            return redirect(url_for("subscribers.contact_detail", contact_id=contact_id))
    return render_template(
        "subscribers/contact_detail.html",
        contact=contact,
        form=form,
        subscriptions=queries.contact_lists(me.account_id, contact_id),
        consent=queries.consent_history(me.account_id, contact_id),
        messages=queries.contact_messages(me.account_id, contact_id),
        events=queries.contact_events(me.account_id, contact_id),
    )


# --- segments ----------------------------------------------------------------------------


def _rules_from_form() -> list[dict[str, Any]]:
    """The builder's rows as rule dicts (checked by the service, not here)."""
    form = request.form
    fields = form.getlist("field")
    ops = form.getlist("op")
    keys = form.getlist("key")
    values = form.getlist("value")
    list_values = form.getlist("list_value")
    rules = []
    for index, field in enumerate(fields):
        if not field:
            continue
        op = ops[index] if index < len(ops) else ""
        value = values[index] if index < len(values) else ""
        if field == "list":
            value = list_values[index] if index < len(list_values) else ""
        rule: dict[str, Any] = {"field": field, "op": op, "value": value}
        if field == "attribute":
            rule["key"] = keys[index] if index < len(keys) else ""
        rules.append(rule)
    return rules


def _builder_context(account_id: int) -> dict[str, Any]:
    return {
        "fields": segments.FIELDS,
        "op_labels": segments.OP_LABELS,
        "valueless": segments.VALUELESS_OPS,
        "lists": queries.list_choices(account_id),
    }


@bp.get("/segments")
@require_permission(Permission.MANAGE_CONTACTS)
def segments_page() -> Any:
    me = member()
    return render_template(
        "subscribers/segments.html",
        segments=queries.segments(me.account_id),
        list_names=queries.list_names(me.account_id),
        describe=segments.describe,
    )


@bp.route("/segments/new", methods=["GET", "POST"])
@bp.route("/segments/<int:segment_id>/edit", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_CONTACTS)
def segment_edit(segment_id: int | None = None) -> Any:
    me = member()
    segment = services.get_segment(me.account_id, segment_id) if segment_id else None
    form = SegmentForm(obj=segment)
    rules: list[dict[str, Any]] = list(segment.rules) if segment else []
    status = 200
    if form.validate_on_submit():
        rules = _rules_from_form()
        try:
            saved = services.save_segment(
                me.account_id, segment_id, form.name.data or "", form.match.data or "all", rules
            )
        except ValidationError as exc:
            show_error(form, exc)
            status = 422
        else:
            flash(f"Segment “{saved.name}” saved.", "success")
            return redirect(url_for("subscribers.segment_detail", segment_id=saved.id))
    elif request.method == "POST":
        status = 422
    return render_template(
        "subscribers/segment_edit.html",
        form=form,
        segment=segment,
        rules=rules,
        **_builder_context(me.account_id),
    ), status


@bp.get("/segments/<int:segment_id>")
@require_permission(Permission.MANAGE_CONTACTS)
def segment_detail(segment_id: int) -> Any:
    me = member()
    segment = services.get_segment(me.account_id, segment_id)
    total, sample, kept_out = queries.segment_preview(me.account_id, segment)
    return render_template(
        "subscribers/segment_detail.html",
        segment=segment,
        total=total,
        sample=sample,
        kept_out=kept_out,
        list_names=queries.list_names(me.account_id),
        describe=segments.describe,
        action_form=ActionForm(),
    )


@bp.post("/segments/<int:segment_id>/delete")
@require_permission(Permission.MANAGE_CONTACTS)
def segment_delete(segment_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        services.delete_segment(me.account_id, segment_id)
        flash("Segment deleted. Its contacts are unchanged.", "success")
    return redirect(url_for("subscribers.segments_page"))


@bp.get("/segments/<int:segment_id>/export.<fmt>")
@require_permission(Permission.EXPORT_CONTACTS)
def segment_export(segment_id: int, fmt: str) -> Any:
    segment = services.get_segment(member().account_id, segment_id)
    return _export("segment", segment_id, fmt, segment.name)


# --- imports -----------------------------------------------------------------------------


#: Room for the form's other fields and the multipart framing around the file.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


@bp.url_value_preprocessor
def _limit_import_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Runs before every before_request (CSRFProtect reads the form in one): an upload over the
    # limit is refused from its Content-Length, or while streaming when it has none, and
    # Werkzeug's spooled temporary file goes with it.
    if endpoint == "subscribers.imports_page" and request.method == "POST":
        request.max_content_length = services.import_max_bytes() + UPLOAD_OVERHEAD_BYTES


@bp.errorhandler(RequestEntityTooLarge)
def _upload_too_large(error: RequestEntityTooLarge) -> Any:
    if request.endpoint != "subscribers.imports_page" or current_member() is None:
        return error
    form = ImportUploadForm(formdata=None)
    limit = services.human_size(services.import_max_bytes())
    form.file.errors = [f"The file is larger than {limit}; split it."]
    return _imports_page(form, 413)


def _imports_page(form: ImportUploadForm, status: int) -> Any:
    me = member()
    choices = queries.list_choices(me.account_id)
    form.list_id.choices = choices
    return render_template(
        "subscribers/imports.html",
        form=form,
        has_lists=bool(choices),
        jobs=queries.imports(me.account_id),
        list_names=dict(choices),
        max_bytes=services.import_max_bytes(),
        human_size=services.human_size,
    ), status


@bp.route("/imports", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_CONTACTS)
def imports_page() -> Any:
    me = member()
    form = ImportUploadForm()
    form.list_id.choices = queries.list_choices(me.account_id)
    preselect = request.args.get("list", "")
    if request.method == "GET" and preselect.isdigit():
        form.list_id.data = int(preselect)
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        try:
            job = services.create_import(
                me.account_id,
                form.list_id.data,
                upload.stream,
                upload.filename or "upload.csv",
                bool(form.update_existing.data),
            )
        except ValidationError as exc:
            show_error(form, exc)
            status = 422
        else:
            return redirect(url_for("subscribers.import_detail", import_id=job.id))
    elif request.method == "POST":
        status = 422
    return _imports_page(form, status)


@bp.route("/imports/<int:import_id>", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_CONTACTS)
def import_detail(import_id: int) -> Any:
    me = member()
    job = services.get_import(me.account_id, import_id)
    form = ActionForm()
    if job.status == "uploaded" and form.validate_on_submit():
        mapping = {
            str(index): request.form.get(f"column-{index}", job.mapping.get(str(index), "ignore"))
            for index in range(len(job.columns))
        }
        try:
            services.start_import(
                me.account_id, import_id, mapping, request.form.get("update_existing") == "1"
            )
        except ValidationError as exc:
            flash(exc.message, "error")
        else:
            flash("Import started. You can leave this page: it carries on.", "success")
        return redirect(url_for("subscribers.import_detail", import_id=import_id))
    format_form = ImportFormatForm(encoding=job.encoding, delimiter=DELIMITERS[job.delimiter])
    return render_template(
        "subscribers/import_detail.html",
        job=job,
        form=form,
        format_form=format_form,
        reading=Format(job.encoding, job.delimiter).describe(),
        preview=services.import_preview(job) if job.status == "uploaded" else None,
        size=services.human_size(job.total_bytes),
        list_names=queries.list_names(me.account_id),
        targets=services.IMPORT_TARGETS,
        report_keep_days=services.import_report_keep_days(),
    )


@bp.post("/imports/<int:import_id>/format")
@require_permission(Permission.MANAGE_CONTACTS)
def import_format(import_id: int) -> Any:
    me = member()
    form = ImportFormatForm()
    if form.validate_on_submit():
        try:
            services.set_import_format(
                me.account_id,
                import_id,
                form.encoding.data or "",
                DELIMITER_BY_NAME.get(form.delimiter.data or "", ""),
            )
        except ValidationError as exc:
            flash(exc.message, "error")
        else:
            flash("The file was read again: check the columns below.", "success")
    else:
        flash("Choose a separator and an encoding from the lists.", "error")
    return redirect(url_for("subscribers.import_detail", import_id=import_id))


@bp.get("/imports/<int:import_id>/status")
@require_permission(Permission.MANAGE_CONTACTS)
def import_status(import_id: int) -> Any:
    job = services.get_import(member().account_id, import_id)
    percent = (
        100
        if job.status == "done"
        else int(100 * job.processed_bytes / job.total_bytes if job.total_bytes else 0)
    )
    response = jsonify(
        status=job.status,
        percent=percent,
        rows=job.rows_read,
        created=job.created_count,
        updated=job.updated_count,
        unchanged=job.skipped_count,
        errors=job.error_count,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/imports/<int:import_id>/errors.csv")
@require_permission(Permission.MANAGE_CONTACTS)
def import_report(import_id: int) -> Any:
    path = services.import_report_path(member().account_id, import_id)
    response = send_file(
        path,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"import-{import_id}-errors.csv",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/imports/<int:import_id>/delete")
@require_permission(Permission.MANAGE_CONTACTS)
def import_delete(import_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            services.delete_import(me.account_id, import_id)
        except ValidationError as exc:
            flash(exc.message, "error")
            return redirect(url_for("subscribers.import_detail", import_id=import_id))
        flash("Import deleted with its file and error report. The contacts stay.", "success")
    return redirect(url_for("subscribers.imports_page"))


# --- subscriber settings ------------------------------------------------------------------


@bp.route("/lists/settings", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_PRIVACY)
def subscriber_settings() -> Any:
    me = member()
    current = services.get_settings(me.account_id)
    form = SettingsForm(obj=current)
    if form.validate_on_submit():
        services.update_settings(me.account_id, bool(form.record_consent_ip.data))
        flash("Settings saved.", "success")
        return redirect(url_for("subscribers.subscriber_settings"))
    return render_template("subscribers/settings.html", form=form)


# --- operators: platform-wide blocks -----------------------------------------------------


@bp.route("/operator/blocks", methods=["GET", "POST"])
@operator_required
def operator_blocks() -> Any:
    address_form = BlockAddressForm(prefix="address")
    domain_form = BlockDomainForm(prefix="domain")
    action = request.form.get("action", "")
    if request.method == "POST":
        try:
            if action in ("block", "unblock") and address_form.validate_on_submit():
                email = address_form.email.data or ""
                if action == "block":
                    flash(
                        f"{services.block_address(email)} is blocked on every account.", "success"
                    )
                elif services.unblock_address(email):
                    flash("The address is no longer blocked.", "success")
                else:
                    flash("That address was not blocked.", "info")
                return redirect(url_for("subscribers.operator_blocks"))
            if action == "domain" and domain_form.validate_on_submit():
                blocked = services.block_domain(
                    domain_form.domain.data or "", domain_form.note.data or ""
                )
                flash(f"{blocked.domain} and its subdomains are blocked.", "success")
                return redirect(url_for("subscribers.operator_blocks"))
        except ValidationError as exc:
            show_error(domain_form if action == "domain" else address_form, exc)
    return render_template(
        "subscribers/operator_blocks.html",
        address_form=address_form,
        domain_form=domain_form,
        action_form=ActionForm(),
        domains=queries.blocked_domains(),
        address_count=queries.blocked_address_count(),
    )


@bp.post("/operator/blocks/domains/<int:domain_id>/remove")
@operator_required
def operator_unblock_domain(domain_id: int) -> Any:
    if ActionForm().validate_on_submit():
        services.unblock_domain(domain_id)
        flash("The domain is no longer blocked.", "success")
    return redirect(url_for("subscribers.operator_blocks"))


# --- public: sign-up, confirmation, preference centre -------------------------------------


#: Every public page: no caching, no referrer leaking the token in its URL.
_PUBLIC_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _public(template: str, status: int = 200, **context: Any) -> Response:
    """A public page: no caching, no referrer leaking the token in its URL."""
    response = Response(render_template(f"subscribers/public/{template}", **context), status=status)
    response.headers.update(_PUBLIC_HEADERS)
    return response


@bp.route("/subscribe/<key>", methods=["GET", "POST"])
@public("the public sign-up form of a list")
def signup(key: str) -> Any:
    mailing_list = services.list_for_signup(key)
    form = SignupForm()
    refused = botcheck.check_request("list-signup")
    if refused is None and form.validate_on_submit():
        try:
            services.request_signup(key, form.email.data or "", form.name.data or "", _client_ip())
        except ValidationError as exc:
            show_error(form, exc)
        else:
            return _public("check_inbox.html", mailing_list=mailing_list)
    return botcheck.render(
        "subscribers/public/signup.html",
        "list-signup",
        refused,
        headers=_PUBLIC_HEADERS,
        form=form,
        mailing_list=mailing_list,
    )


@bp.post("/subscribe/<key>/embed")
@csrf.exempt
@public("the embedded sign-up form on a site")
def signup_embed(key: str) -> Any:
    """The target of the embeddable form on the marketer's own site."""
    mailing_list = services.list_for_signup(key)
    if request.form.get("website"):  # the hidden honeypot: a bot filled it in
        return _public("check_inbox.html", mailing_list=mailing_list)
    form = SignupForm(meta={"csrf": False})
    # A page on another site cannot carry our challenge: its POSTs count against the same
    # per-network limits as our sign-up page's.
    refused = botcheck.limit_request("list-signup")
    if refused is None and form.validate():
        try:
            services.request_signup(key, form.email.data or "", form.name.data or "", _client_ip())
        except ValidationError as exc:
            show_error(form, exc)
        else:
            return _public("check_inbox.html", mailing_list=mailing_list)
    # Continue on our own page, which has a CSRF token, with what was typed kept.
    page_form = SignupForm(formdata=None, email=form.email.data, name=form.name.data)
    page_form.email.errors = list(form.email.errors)
    return botcheck.render(
        "subscribers/public/signup.html",
        "list-signup",
        refused,
        headers=_PUBLIC_HEADERS,
        form=page_form,
        mailing_list=mailing_list,
    )


def _link_problem(exc: BadTokenError) -> tuple[str, int]:
    if isinstance(exc, services.LinkExpiredError):
        return "This confirmation link has expired. Sign up again to get a new one.", 410
    if isinstance(exc, services.LinkUsedError):
        return "This confirmation link was already used: your subscription is confirmed.", 410
    return "This link is not valid. Check that you copied all of it.", 404


@bp.route("/subscribe/confirm/<token>", methods=["GET", "POST"])
@public("a signed double opt-in link")
def signup_confirm(token: str) -> Any:
    form = ActionForm()
    try:
        mailing_list = services.check_signup_token(token)
        if form.validate_on_submit():
            services.confirm_signup(token, _client_ip())
            return _public("confirmed.html", mailing_list=mailing_list)
    except BadTokenError as exc:
        message, status = _link_problem(exc)
        return _public("link_problem.html", status, message=message)
    return _public("confirm.html", form=form, mailing_list=mailing_list, token=token)


@bp.route("/preferences/<token>", methods=["GET", "POST"])
@public("a signed preferences link")
def preferences(token: str) -> Any:
    from accounts.queries import get_account

    try:
        test = services.test_preferences(token)
        if test is not None:  # a test message's link: the page recipients get, changing nothing
            return _public(
                "preferences.html",
                form=ActionForm(),
                masked_email="a test recipient",
                account=get_account(test.account_id),
                choices=test.choices,
                done="This is a test message: nothing was changed."
                if request.method == "POST"
                else "",
                tracking_refused=False,
                test=True,
            )
        contact = services.contact_for_preference_token(token)
    except (BadTokenError, NotFoundError):
        message = "This preferences link is not valid, or the address is no longer held."
        return _public("link_problem.html", 404, message=message)
    form = ActionForm()
    done = ""
    if form.validate_on_submit():
        action = request.form.get("action")
        if action == "everything":
            services.unsubscribe_everything(token, _client_ip())
            done = "You are unsubscribed from everything. You will get no more emails from us."
        elif action == "tracking":
            allow = request.form.get("tracking") == "on"
            services.set_tracking_choice(token, allow, _client_ip())
            done = (
                "Tracking of your opens and clicks is on."
                if allow
                else "Your opens and clicks are no longer recorded. You stay subscribed."
            )
        else:
            wanted = [int(v) for v in request.form.getlist("list_id") if v.isdigit()]
            changed = services.update_preferences(token, wanted, _client_ip())
            done = "Your choices are saved." if changed else "Nothing changed."
    return _public(
        "preferences.html",
        form=form,
        masked_email=services.masked_email(contact.email),
        account=get_account(contact.account_id),
        choices=services.preference_choices(contact),
        tracking_refused=contact.tracking_refused_at is not None,
        done=done,
    )
