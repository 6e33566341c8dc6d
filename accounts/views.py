"""Sign-up, login, logout, password reset, team and settings pages."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from accounts import queries, services, sessions
from accounts.forms import (
    AddMemberForm,
    AdvancedSettingsForm,
    ChangePasswordForm,
    ForgotPasswordForm,
    GeneralSettingsForm,
    LoginForm,
    PrivacySettingsForm,
    ResetPasswordForm,
    SignupForm,
)
from accounts.models import RevokeReason
from core import botcheck, nav
from core.auth import current_member, forget_current_member, login_required, member
from core.errors import PermissionDeniedError, ValidationError
from core.forms import ActionForm, show_error
from core.signing import BadTokenError
from privacy import engine_gate

bp = Blueprint("accounts", __name__, template_folder="templates")
nav.add("Team", "accounts.team", 80, role="admin")
nav.add("Settings", "accounts.settings", 90, role="admin")


@bp.app_context_processor
def _pending_deletion() -> dict[str, Any]:
    """Every signed-in page shows a confirmed deletion (core/templates/core/base.html includes
    accounts/_deletion_banner.html)."""
    found = current_member()
    return {"pending_deletion": queries.pending_deletion(found.account_id) if found else None}


def _start_session(user_id: int, account_id: int) -> None:
    session.clear()  # no session fixation
    session["sid"] = sessions.start(
        user_id, account_id, request.remote_addr, request.headers.get("User-Agent")
    )


def _safe_next(target: str | None) -> str:
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("campaigns.dashboard")


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Any:
    form = SignupForm()
    refused = botcheck.check_request("signup")
    if refused is None and form.validate_on_submit():
        try:
            account, user = services.sign_up(
                form.account_name.data or "",
                form.name.data or "",
                form.email.data or "",
                form.password.data or "",
                time_zone=form.time_zone.data,
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            _start_session(user.id, account.id)
            flash(f"Welcome! {account.name} is ready. Start by creating a list.", "success")
            return redirect(url_for("subscribers.lists"))
    return botcheck.render("accounts/signup.html", "signup", refused, form=form)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        result = services.log_in(
            form.email.data or "", form.password.data or "", request.remote_addr
        )
        if result.retry_after:
            minutes = math.ceil(result.retry_after / 60)
            wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
            form.password.errors = [
                f"Too many failed attempts. Try again in {wait}."
                + (
                    " If this is your account, we emailed you a link to choose a new password."
                    if result.locked
                    else ""
                )
            ]
            response = render_template("accounts/login.html", form=form), 429
            return (*response, {"Retry-After": str(result.retry_after)})
        if result.user_id is None or result.account_id is None:
            form.password.errors = ["Wrong email or password."]
        else:
            _start_session(result.user_id, result.account_id)
            if queries.get_account(result.account_id).deletion_due_at is not None:
                # Scheduled for deletion: say so and offer reactivation first.
                return redirect(url_for("accounts.reactivate"))
            return redirect(_safe_next(request.args.get("next")))
    status = 200 if request.method == "GET" else 422
    return render_template("accounts/login.html", form=form), status


@bp.post("/logout")
def logout() -> Any:
    form = ActionForm()
    if form.validate_on_submit():
        me = current_member()
        if me is not None:
            sessions.end(me.session_id, RevokeReason.LOGOUT)
        forget_current_member()
        flash("You are logged out.", "success")
    return redirect(url_for("accounts.login"))


# --- The signed-in person's own security: sessions and password -------------------------------


@bp.get("/me/sessions")
@login_required(during_deletion=True)
def sessions_page() -> Any:
    me = member()
    return render_template(
        "accounts/sessions.html",
        sessions=queries.list_sessions(me.user_id),
        action=ActionForm(),
    )


@bp.post("/me/sessions/<int:session_id>/end")
@login_required(during_deletion=True)
def end_session(session_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        if session_id == me.session_id:
            flash("To end this session, log out.", "info")
        elif sessions.revoke_one(me.user_id, session_id):
            flash("That session is logged out.", "success")
        else:
            flash("That session had already ended.", "info")
    return redirect(url_for("accounts.sessions_page"))


@bp.post("/me/sessions/end-others")
@login_required(during_deletion=True)
def end_other_sessions() -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        count = sessions.revoke_user(
            me.user_id, RevokeReason.REVOKED, keep_session_id=me.session_id
        )
        if count:
            flash(
                f"Logged out everywhere else ({count} session{'s' if count != 1 else ''}).",
                "success",
            )
        else:
            flash("No other session was open.", "info")
    return redirect(url_for("accounts.sessions_page"))


@bp.route("/me/password", methods=["GET", "POST"])
@login_required(during_deletion=True)
def change_password() -> Any:
    me = member()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(
                me.user_id, form.current_password.data or "", form.password.data or ""
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            # Every session ended with the old password; this browser gets a fresh one.
            _start_session(me.user_id, me.account_id)
            flash("Your password is changed. Every other session was logged out.", "success")
            return redirect(url_for("accounts.sessions_page"))
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/password.html", form=form), status


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> Any:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data or "")
        flash("If that address has an account, a reset link is on its way.", "success")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    try:
        services.user_for_reset_token(token)
    except BadTokenError:
        flash("That link has expired or was already used. Ask for a new one.", "error")
        return redirect(url_for("accounts.forgot_password"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data or "")
        except ValidationError as exc:
            show_error(form, exc)
        except BadTokenError:
            flash("That link has expired or was already used.", "error")
            return redirect(url_for("accounts.forgot_password"))
        else:
            flash("Your password is set. Log in with it.", "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset.html", form=form)


@bp.route("/settings", methods=["GET", "POST"])
@login_required("admin")
def settings() -> Any:
    me = member()
    account = queries.get_account(me.account_id)
    tab = request.args.get("tab", "general")
    general = GeneralSettingsForm(prefix="general", obj=account)
    privacy = PrivacySettingsForm(prefix="privacy", obj=account)
    advanced = AdvancedSettingsForm(prefix="advanced", obj=account)
    try:
        if tab == "general" and general.validate_on_submit():
            services.update_general_settings(
                me.account_id,
                general.name.data or "",
                general.postal_address.data or "",
                time_zone=general.time_zone.data or "",
            )
            flash("Settings saved.", "success")
            return redirect(url_for("accounts.settings", tab="general"))
        if tab == "privacy" and privacy.validate_on_submit():
            services.update_privacy_settings(
                me.account_id,
                bool(privacy.individual_tracking.data),
                privacy.ip_handling.data or "truncate",
                int(privacy.event_retention_days.data or 180),
            )
            flash("Privacy settings saved.", "success")
            return redirect(url_for("accounts.settings", tab="privacy"))
        if tab == "advanced" and advanced.validate_on_submit():
            participate = bool(advanced.engine_participation.data)
            was_participating = account.engine_participation
            services.set_engine_participation(me.account_id, participate)
            if participate == was_participating:
                flash("Nothing changed.", "info")
            elif participate:
                flash(
                    "You take part in the Delivery Optimization Engine again. "
                    "It starts from nothing for your contacts.",
                    "success",
                )
            else:
                flash(
                    "You have left the Delivery Optimization Engine. Nothing about your contacts "
                    "enters it any more, and what they contributed is being removed.",
                    "success",
                )
            return redirect(url_for("accounts.settings", tab="advanced"))
    except ValidationError as exc:
        show_error({"general": general, "privacy": privacy, "advanced": advanced}[tab], exc)
    return render_template(
        "accounts/settings.html",
        tab=tab,
        account=account,
        general=general,
        privacy=privacy,
        advanced=advanced,
        engine_contributions=(
            engine_gate.contribution_count(me.account_id) if tab == "advanced" else 0
        ),
    )


@bp.route("/team", methods=["GET", "POST"])
@login_required("admin")
def team() -> Any:
    me = member()
    form = AddMemberForm()
    if form.validate_on_submit():
        try:
            services.add_member(
                me.account_id,
                me.role,
                form.email.data or "",
                form.name.data or "",
                form.role.data or "member",
            )
        except ValidationError as exc:
            show_error(form, exc)
        except PermissionDeniedError as exc:
            flash(str(exc), "error")
        else:
            flash("Member added. They got an email to choose a password.", "success")
            return redirect(url_for("accounts.team"))
    return render_template(
        "accounts/team.html",
        form=form,
        members=queries.list_members(me.account_id),
        action=ActionForm(),
    )


@bp.post("/team/<int:user_id>/role")
@login_required("admin")
def change_role(user_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            services.change_role(me.account_id, me.role, user_id, request.form.get("role", ""))
            flash("Role changed.", "success")
        except (ValidationError, PermissionDeniedError) as exc:
            flash(str(exc), "error")
    return redirect(url_for("accounts.team"))


@bp.post("/team/<int:user_id>/remove")
@login_required("admin")
def remove_member(user_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            services.remove_member(me.account_id, me.role, user_id)
            flash("Member removed.", "success")
        except (ValidationError, PermissionDeniedError) as exc:
            flash(str(exc), "error")
    return redirect(url_for("accounts.team"))


@bp.get("/")
def index() -> Any:
    if current_member() is None:
        return redirect(url_for("accounts.login"))
    return redirect(url_for("campaigns.dashboard"))


# --- Account lifecycle (deletion with a 30-day grace period, reactivation) --------------------


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required("owner")
def delete_account() -> Any:
    me = member()
    account = queries.get_account(me.account_id)
    form = ActionForm()
    if form.validate_on_submit():
        try:
            services.request_account_deletion(me.account_id, me.user_id, me.role)
        except (ValidationError, PermissionDeniedError) as exc:
            flash(str(exc), "error")
        else:
            flash(f"We emailed a confirmation link to {me.email}. Open it to confirm.", "success")
        return redirect(url_for("accounts.delete_account"))
    return render_template("accounts/delete.html", account=account, form=form)


@bp.route("/account/delete/confirm/<token>", methods=["GET", "POST"])
def confirm_deletion(token: str) -> Any:
    try:
        account = services.account_for_deletion_token(token)
    except BadTokenError:
        return render_template("accounts/deletion_link_problem.html"), 410
    form = ActionForm()
    if form.validate_on_submit():
        try:
            account = services.confirm_account_deletion(token)
        except BadTokenError:
            return render_template("accounts/deletion_link_problem.html"), 410
        return render_template("accounts/deletion_scheduled.html", account=account)
    return render_template("accounts/confirm_deletion.html", account=account, form=form)


@bp.route("/account/reactivate", methods=["GET", "POST"])
@login_required(during_deletion=True)
def reactivate() -> Any:
    me = member()
    account = queries.get_account(me.account_id)
    form = ActionForm()
    if form.validate_on_submit():
        try:
            services.reactivate_account(me.account_id, me.user_id, me.role)
        except (ValidationError, PermissionDeniedError) as exc:
            flash(str(exc), "error")
            return redirect(url_for("accounts.reactivate"))
        flash(f"{account.name} is reactivated and will not be deleted.", "success")
        return redirect(url_for("campaigns.dashboard"))
    grace = int(current_app.config["ACCOUNT_DELETION_GRACE_DAYS"])
    days_left = None
    if account.deletion_due_at is not None:
        from core.db import utcnow

        seconds_left = (account.deletion_due_at - utcnow()).total_seconds()
        days_left = max(0, math.ceil(seconds_left / 86400))
    return render_template(
        "accounts/reactivate.html",
        account=account,
        form=form,
        role=me.role,
        days_left=days_left,
        elapsed_percent=0 if days_left is None else round(100 * (grace - days_left) / grace),
    )
