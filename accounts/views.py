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

from accounts import audit, queries, roles, services, sessions, sso, twofactor
from accounts.forms import (
    AddMemberForm,
    AdvancedSettingsForm,
    ChangePasswordForm,
    ForgotPasswordForm,
    GeneralSettingsForm,
    LoginForm,
    PrivacySettingsForm,
    ResetPasswordForm,
    RoleForm,
    SignupForm,
    SsoLoginForm,
    SsoSettingsForm,
)
from accounts.models import RevokeReason
from core import auth, botcheck, nav
from core.auth import (
    check_permission,
    current_member,
    forget_current_member,
    login_required,
    member,
    public,
    require_any_permission,
    require_permission,
)
from core.errors import PermissionDeniedError, ValidationError
from core.forms import ActionForm, show_error
from core.permissions import Permission
from core.signing import BadTokenError
from core.urls import external_url
from privacy import engine_gate

bp = Blueprint("accounts", __name__, template_folder="templates")
# At app-factory time (registering the blueprint), not at import: the signed-in member.
bp.record_once(lambda state: auth.init_app(state.app, sessions.load_current_member))
nav.add("Team", "accounts.team", 80, active=("accounts.team", "accounts.role"))
nav.add("Settings", "accounts.settings", 90)


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


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else the dashboard (no open redirect)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("campaigns.dashboard")


@bp.route("/signup", methods=["GET", "POST"])
@public("creating an account")
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
                of_age=bool(form.of_age.data),
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            _start_session(user.id, account.id)
            flash(f"Welcome! {account.name} is ready. Start by creating a list.", "success")
            return redirect(url_for("subscribers.lists"))
    return botcheck.render("accounts/signup.html", "signup", refused, form=form)


@bp.route("/login", methods=["GET", "POST"])
@public("the login page")
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
        elif twofactor.is_enabled(result.user_id):
            # Second step: the cookie names a server-side half-done login, not a session.
            return twofactor_views.begin_second_step(result.user_id, result.account_id)
        else:
            _start_session(result.user_id, result.account_id)
            if queries.get_account(result.account_id).deletion_due_at is not None:
                # Scheduled for deletion: say so and offer reactivation first.
                return redirect(url_for("accounts.reactivate"))
            return redirect(safe_next(request.args.get("next")))
    status = 200 if request.method == "GET" else 422
    return render_template("accounts/login.html", form=form), status


@bp.post("/logout")
@public("ends whatever session the cookie names")
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
        recovery_logins=queries.recovery_logins(me.user_id),
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
@public("asking for a reset link")
def forgot_password() -> Any:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data or "")
        flash("If that address has an account, a reset link is on its way.", "success")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@public("a signed password-reset link")
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


#: The settings tabs and the permission each needs (the page needs one of them).
SETTINGS_TABS = {
    "general": Permission.MANAGE_SETTINGS,
    "privacy": Permission.MANAGE_PRIVACY,
    "advanced": Permission.MANAGE_SETTINGS,
}


@bp.route("/settings", methods=["GET", "POST"])
@require_any_permission(Permission.MANAGE_SETTINGS, Permission.MANAGE_PRIVACY)
def settings() -> Any:
    me = member()
    account = queries.get_account(me.account_id)
    default = "general" if member().can(Permission.MANAGE_SETTINGS) else "privacy"
    tab = request.args.get("tab", default)
    if tab not in SETTINGS_TABS:
        tab = default
    check_permission(SETTINGS_TABS[tab])
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
                actor_user_id=me.user_id,
            )
            flash("Privacy settings saved.", "success")
            return redirect(url_for("accounts.settings", tab="privacy"))
        if tab == "advanced" and advanced.validate_on_submit():
            participate = bool(advanced.engine_participation.data)
            was_participating = account.engine_participation
            services.set_engine_participation(me.account_id, participate, actor_user_id=me.user_id)
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
        tabs=[name for name, needed in SETTINGS_TABS.items() if me.can(needed)],
        account=account,
        general=general,
        privacy=privacy,
        advanced=advanced,
        engine_contributions=(
            engine_gate.contribution_count(me.account_id) if tab == "advanced" else 0
        ),
    )


@bp.get("/settings/security-log")
@require_permission(Permission.OWN_ACCOUNT)
def security_log() -> Any:
    """Settings > Security log (owners): the account's security events, filtered and paged."""
    me = member()
    kind = request.args.get("kind", "")
    found = queries.security_log(me.account_id, kind or None, request.args.get("page", 1, type=int))
    return render_template(
        "accounts/security_log.html",
        tab="security-log",
        log=found,
        kind=kind if kind in audit.KIND_LABELS else "",
        kinds=audit.KIND_LABELS,
        describe=audit.describe,
    )


@bp.route("/team", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_TEAM)
def team() -> Any:
    me = member()
    form = AddMemberForm()
    choices = roles.choices(me.account_id)
    form.role.choices = [(choice.key, choice.name) for choice in choices]
    if form.validate_on_submit():
        try:
            services.add_member(
                me.account_id,
                me.permissions,
                form.email.data or "",
                form.name.data or "",
                form.role.data or "member",
                actor_user_id=me.user_id,
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
        choices=choices,
        action=ActionForm(),
    )


@bp.post("/team/<int:user_id>/role")
@require_permission(Permission.MANAGE_TEAM)
def change_role(user_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            services.change_role(
                me.account_id,
                me.permissions,
                user_id,
                request.form.get("role", ""),
                actor_user_id=me.user_id,
            )
            flash("Role changed.", "success")
        except (ValidationError, PermissionDeniedError) as exc:
            flash(str(exc), "error")
    return redirect(url_for("accounts.team"))


@bp.post("/team/<int:user_id>/remove")
@require_permission(Permission.MANAGE_TEAM)
def remove_member(user_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            services.remove_member(me.account_id, me.permissions, user_id, actor_user_id=me.user_id)
            flash("Member removed.", "success")
        except (ValidationError, PermissionDeniedError) as exc:
            flash(str(exc), "error")
    return redirect(url_for("accounts.team"))


# --- Team > Roles: the account's own roles -----------------------------------------------------


@bp.get("/team/roles")
@require_permission(Permission.MANAGE_TEAM)
def roles_page() -> Any:
    me = member()
    return render_template(
        "accounts/roles.html",
        builtin=[choice for choice in roles.choices(me.account_id) if choice.builtin],
        custom=queries.list_roles(me.account_id),
        usage=queries.role_usage(me.account_id),
        permissions=list(Permission),
        action=ActionForm(),
    )


def _role_form(role_id: int | None) -> Any:
    me = member()
    role = queries.get_role(me.account_id, role_id) if role_id is not None else None
    form = RoleForm(obj=role)
    form.permissions.choices = [(p.value, p.label) for p in Permission]
    if request.method == "GET" and role is not None:
        form.permissions.data = sorted(p.value for p in role.permissions)
    if form.validate_on_submit():
        try:
            saved = roles.save_role(
                me.account_id,
                me.permissions,
                role.id if role is not None else None,
                form.name.data or "",
                form.permissions.data or [],
                form.description.data or "",
                actor_user_id=me.user_id,
            )
            flash(
                f"Role “{saved.name}” saved. Give it to members on the Team page."
                if role is None
                else f"Role “{saved.name}” saved. Its members have the new permissions now.",
                "success",
            )
            return redirect(url_for("accounts.roles_page"))
        except ValidationError as exc:
            show_error(form, exc)
        except PermissionDeniedError as exc:
            form.permissions.errors = [str(exc)]
    status = 422 if request.method == "POST" else 200
    return render_template(
        "accounts/role_edit.html",
        form=form,
        role=role,
        permissions=list(Permission),
        holders=queries.role_usage(me.account_id).get(role.id, 0) if role else 0,
        action=ActionForm(),
    ), status


@bp.route("/team/roles/new", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_TEAM)
def role_new() -> Any:
    return _role_form(None)


@bp.route("/team/roles/<int:role_id>", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_TEAM)
def role_edit(role_id: int) -> Any:
    return _role_form(role_id)


@bp.post("/team/roles/<int:role_id>/delete")
@require_permission(Permission.MANAGE_TEAM)
def role_delete(role_id: int) -> Any:
    me = member()
    if ActionForm().validate_on_submit():
        try:
            name = queries.get_role(me.account_id, role_id).name
            roles.delete_role(me.account_id, me.permissions, role_id, actor_user_id=me.user_id)
        except ValidationError as exc:
            flash(exc.message, "error")
            return redirect(url_for("accounts.role_edit", role_id=role_id))
        flash(f"Role “{name}” deleted.", "success")
    return redirect(url_for("accounts.roles_page"))


@bp.get("/")
@public("sends to the login page or the dashboard")
def index() -> Any:
    if current_member() is None:
        return redirect(url_for("accounts.login"))
    return redirect(url_for("campaigns.dashboard"))


# --- Account lifecycle (deletion with a 30-day grace period, reactivation) --------------------


@bp.route("/account/delete", methods=["GET", "POST"])
@require_permission(Permission.OWN_ACCOUNT)
def delete_account() -> Any:
    me = member()
    account = queries.get_account(me.account_id)
    form = ActionForm()
    if form.validate_on_submit():
        try:
            services.request_account_deletion(me.account_id, me.user_id, me.permissions)
        except (ValidationError, PermissionDeniedError) as exc:
            flash(str(exc), "error")
        else:
            flash(f"We emailed a confirmation link to {me.email}. Open it to confirm.", "success")
        return redirect(url_for("accounts.delete_account"))
    return render_template("accounts/delete.html", account=account, form=form)


@bp.route("/account/delete/confirm/<token>", methods=["GET", "POST"])
@public("a signed account-deletion link")
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
            services.reactivate_account(me.account_id, me.user_id, me.permissions)
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
        is_owner=me.can(Permission.OWN_ACCOUNT),
        days_left=days_left,
        elapsed_percent=0 if days_left is None else round(100 * (grace - days_left) / grace),
    )


SSO_PENDING = "sso_pending"


@bp.route("/settings/sso", methods=["GET", "POST"])
@require_permission(Permission.OWN_ACCOUNT)
def sso_settings() -> Any:
    """Owners set up the account's OpenID Connect provider (accounts/sso.py)."""
    me = member()
    provider = sso.provider_for_account(me.account_id)
    form = SsoSettingsForm(obj=provider)
    if request.method == "GET" and provider is None:
        form.enabled.data = True
    delete_form = ActionForm(prefix="delete")
    if request.method == "POST" and request.form.get("delete-submit") is not None:
        if delete_form.validate_on_submit() and provider is not None:
            sso.delete_provider(me.account_id, me.user_id)
            flash("Single sign-on removed. Members log in with their passwords.", "success")
        return redirect(url_for("accounts.sso_settings"))
    if form.validate_on_submit():
        try:
            sso.save_provider(
                me.account_id,
                me.user_id,
                issuer=form.issuer.data or "",
                client_id=form.client_id.data or "",
                client_secret=form.client_secret.data or "",
                email_domain=form.email_domain.data or "",
                default_role=form.default_role.data or "member",
                enabled=bool(form.enabled.data),
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Single sign-on saved.", "success")
            return redirect(url_for("accounts.sso_settings"))
    status = 200 if request.method == "GET" else 422
    return render_template(
        "accounts/sso_settings.html",
        form=form,
        delete_form=delete_form,
        provider=provider,
        callback_url=external_url("accounts.sso_callback"),
        tab="sso",
    ), status


@bp.route("/login/sso", methods=["GET", "POST"])
@public("the login page for single sign-on")
def sso_login() -> Any:
    """Log in through the identity provider of the address's domain."""
    form = SsoLoginForm()
    if form.validate_on_submit():
        try:
            url, pending = sso.begin_login(form.email.data or "")
        except ValidationError as exc:
            show_error(form, exc)
        else:
            session[SSO_PENDING] = pending
            return redirect(url)
    status = 200 if request.method == "GET" else 422
    return render_template("accounts/sso_login.html", form=form), status


@bp.get("/login/sso/callback")
@public("the identity provider's answer, checked against the state kept in the session")
def sso_callback() -> Any:
    """Where the provider sends the person back: the login is finished or refused here."""
    pending = session.pop(SSO_PENDING, None)
    try:
        user_id, account_id = sso.finish_login(pending, request.args.to_dict())
    except sso.SsoError as exc:
        flash(str(exc), "error")
        return redirect(url_for("accounts.sso_login")), 303
    if twofactor.is_enabled(user_id):
        # A second factor set up here is asked for after the provider's login too.
        return twofactor_views.begin_second_step(user_id, account_id)
    _start_session(user_id, account_id)
    if queries.get_account(account_id).deletion_due_at is not None:
        return redirect(url_for("accounts.reactivate"))
    return redirect(url_for("campaigns.dashboard"))


# The second-factor pages register on this blueprint (kept in their own module).
from accounts import twofactor_views  # noqa: E402
