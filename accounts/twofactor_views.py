"""Second-factor pages: the login's second step, enrolment, recovery codes, turning it off,
and the account's "require it for every member" setting (Settings > Security)."""

from __future__ import annotations

import math
from typing import Any

from flask import Response, flash, jsonify, redirect, render_template, request, session, url_for

from accounts import passkeys, queries, twofactor
from accounts.forms import (
    LoginCodeForm,
    PasswordCheckForm,
    SecuritySettingsForm,
    TotpConfirmForm,
)
from accounts.views import bp, safe_next
from core.auth import (
    allowed_before_two_factor,
    login_required,
    member,
    public,
    require_permission,
)
from core.errors import PermissionDeniedError, ValidationError
from core.forms import ActionForm, show_error
from core.permissions import Permission

#: The cookie key of a half-done login (the password was right, the code is awaited).
CHALLENGE_KEY = "challenge"


def begin_second_step(user_id: int, account_id: int) -> Any:
    """After the right password for a user with a second factor: a fresh cookie naming only a
    server-side half-done login, and the code page."""
    session.clear()  # no session fixation; no half state carried over
    session[CHALLENGE_KEY] = twofactor.start_challenge(user_id, account_id)
    return redirect(url_for("accounts.login_code", next=request.args.get("next")))


@bp.route("/login/code", methods=["GET", "POST"])
@public("the second step of a login: a server-side half-done login named by the cookie")
def login_code() -> Any:
    challenge = twofactor.find_challenge(session.get(CHALLENGE_KEY))
    if challenge is None:
        session.pop(CHALLENGE_KEY, None)
        flash("Log in with your password first (a login waits 5 minutes for its code).", "info")
        return redirect(url_for("accounts.login", next=request.args.get("next")))
    form = LoginCodeForm()
    if form.validate_on_submit():
        account_id = challenge.account_id
        result = twofactor.complete_login(
            challenge,
            form.code.data or "",
            request.remote_addr,
            request.headers.get("User-Agent"),
        )
        if result.retry_after:
            minutes = math.ceil(result.retry_after / 60)
            form.code.errors = [
                f"Too many failed attempts. Try again in {minutes} minute"
                f"{'s' if minutes != 1 else ''}."
            ]
            page = render_template("accounts/login_code.html", form=form)
            return page, 429, {"Retry-After": str(result.retry_after)}
        target = _after_second_factor(result, account_id)
        if target is not None:
            return redirect(target)
        form.code.errors = ["That code is not right. Enter the newest code from your app."]
    status = 200 if request.method == "GET" else 422
    return render_template(
        "accounts/login_code.html",
        form=form,
        has_passkey=passkeys.has_passkey(challenge.user_id),
    ), status


def _after_second_factor(result: twofactor.CodeResult, account_id: int) -> str | None:
    """Where the browser goes after a checked second factor (a fresh session cookie when it
    was right), or None to answer "not right" on the same page."""
    if result.restart:
        session.clear()
        flash("Too many wrong codes. Log in again.", "error")
        return url_for("accounts.login")
    if result.session_token is None:
        return None
    session.clear()
    session["sid"] = result.session_token
    if result.factor == twofactor.SecondFactor.RECOVERY_CODE:
        flash(
            f"You logged in with a recovery code; {result.recovery_codes_left} left. "
            "Every other session was logged out. If you lost your phone, set up "
            "two-factor again under Your login > Two-factor.",
            "info",
        )
    if queries.get_account(account_id).deletion_due_at is not None:
        return url_for("accounts.reactivate")
    return safe_next(request.args.get("next"))


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


@bp.post("/login/passkey/options")
@public("the second step of a login: a server-side half-done login named by the cookie")
def login_passkey_options() -> Any:
    challenge = twofactor.find_challenge(session.get(CHALLENGE_KEY))
    if challenge is None or not passkeys.has_passkey(challenge.user_id):
        return jsonify(error="Log in with your password first."), 409
    return Response(passkeys.authentication_options(challenge), mimetype="application/json")


@bp.post("/login/passkey")
@public("the second step of a login: a server-side half-done login named by the cookie")
def login_passkey() -> Any:
    challenge = twofactor.find_challenge(session.get(CHALLENGE_KEY))
    if challenge is None:
        return jsonify(redirect=url_for("accounts.login")), 409
    credential = _json_body().get("credential")
    account_id = challenge.account_id
    result = twofactor.complete_login(
        challenge,
        "",
        request.remote_addr,
        request.headers.get("User-Agent"),
        passkey=credential if isinstance(credential, dict) else {},
    )
    if result.retry_after:
        minutes = math.ceil(result.retry_after / 60)
        return (
            jsonify(
                error=f"Too many failed attempts. Try again in {minutes} minute"
                f"{'s' if minutes != 1 else ''}."
            ),
            429,
            {"Retry-After": str(result.retry_after)},
        )
    target = _after_second_factor(result, account_id)
    if target is None:
        return jsonify(error="That passkey did not work. Try again or enter a code."), 422
    return jsonify(redirect=target)


@bp.get("/me/two-factor")
@login_required(during_deletion=True)
def two_factor() -> Any:
    me = member()
    return render_template(
        "accounts/two_factor.html",
        status=queries.two_factor_status(me.user_id),
        passkeys=queries.list_passkeys(me.user_id),
        password_form=PasswordCheckForm(),
        codes_form=PasswordCheckForm(prefix="codes"),
        action=ActionForm(),
    )


@bp.route("/me/two-factor/setup", methods=["GET", "POST"])
@login_required(during_deletion=True)
@allowed_before_two_factor
def two_factor_setup() -> Any:
    me = member()
    if twofactor.is_enabled(me.user_id):
        flash("Two-factor authentication is already on.", "info")
        return redirect(url_for("accounts.two_factor"))
    form = TotpConfirmForm()
    if form.validate_on_submit():
        try:
            codes = twofactor.confirm_enrolment(
                me.user_id, form.code.data or "", keep_session_id=me.session_id
            )
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Two-factor authentication is on. Every other session was logged out.", "success")
            return render_template("accounts/recovery_codes.html", codes=codes, first=True)
    enrolment = twofactor.begin_enrolment(me.user_id)
    status = 422 if request.method == "POST" else 200
    return render_template(
        "accounts/two_factor_setup.html",
        form=form,
        enrolment=enrolment,
        action=ActionForm(),
        required=me.must_enrol_two_factor,
    ), status


@bp.post("/me/two-factor/cancel")
@login_required(during_deletion=True)
def two_factor_cancel() -> Any:
    if ActionForm().validate_on_submit():
        twofactor.cancel_enrolment(member().user_id)
        flash("Set-up cancelled. Two-factor authentication stays off.", "info")
    return redirect(url_for("accounts.two_factor"))


@bp.post("/me/two-factor/disable")
@login_required(during_deletion=True)
def two_factor_disable() -> Any:
    me = member()
    form = PasswordCheckForm()
    if form.validate_on_submit():
        try:
            twofactor.disable(me.user_id, form.password.data or "")
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("Two-factor authentication is off. Logins ask for your password only.", "success")
            return redirect(url_for("accounts.two_factor"))
    return render_template(
        "accounts/two_factor.html",
        status=queries.two_factor_status(me.user_id),
        passkeys=queries.list_passkeys(me.user_id),
        password_form=form,
        codes_form=PasswordCheckForm(prefix="codes"),
        action=ActionForm(),
    ), 422


@bp.post("/me/two-factor/recovery-codes")
@login_required(during_deletion=True)
def recovery_codes() -> Any:
    me = member()
    form = PasswordCheckForm(prefix="codes")
    if form.validate_on_submit():
        try:
            codes = twofactor.regenerate_recovery_codes(me.user_id, form.password.data or "")
        except ValidationError as exc:
            show_error(form, exc)
        else:
            flash("New recovery codes. The old ones no longer work.", "success")
            return render_template("accounts/recovery_codes.html", codes=codes, first=False)
    return render_template(
        "accounts/two_factor.html",
        status=queries.two_factor_status(me.user_id),
        passkeys=queries.list_passkeys(me.user_id),
        password_form=PasswordCheckForm(),
        codes_form=form,
        action=ActionForm(),
    ), 422


@bp.route("/settings/security", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_SETTINGS)
def security_settings() -> Any:
    me = member()
    account = queries.get_account(me.account_id)
    # On POST only what was sent counts: an unticked box sends nothing at all.
    form = SecuritySettingsForm(obj=account if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            changed = twofactor.set_required(
                me.account_id, me.user_id, me.role, bool(form.require_two_factor.data)
            )
        except ValidationError as exc:
            show_error(form, exc)
        except PermissionDeniedError as exc:
            flash(str(exc), "error")
            return redirect(url_for("accounts.security_settings"))
        else:
            if not changed:
                flash("Nothing changed.", "info")
            elif form.require_two_factor.data:
                flash(
                    "Two-factor authentication is now required. Members without it are asked "
                    "to set it up before they can go on.",
                    "success",
                )
            else:
                flash("Two-factor authentication is no longer required.", "success")
            return redirect(url_for("accounts.security_settings"))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "accounts/security_settings.html",
        form=form,
        account=account,
        without=queries.members_without_two_factor(me.account_id),
        tab="security",
    ), status


#: The signed-session key of a passkey being added (its WebAuthn challenge, used once).
REGISTRATION_KEY = "passkey_registration"


@bp.post("/me/two-factor/passkeys/options")
@login_required(during_deletion=True)
def passkey_options() -> Any:
    try:
        options, challenge = passkeys.registration_options(member().user_id)
    except ValidationError as exc:
        return jsonify(error=str(exc)), 409
    session[REGISTRATION_KEY] = challenge
    return Response(options, mimetype="application/json")


@bp.post("/me/two-factor/passkeys")
@login_required(during_deletion=True)
def passkey_add() -> Any:
    challenge = session.pop(REGISTRATION_KEY, None)
    body = _json_body()
    credential = body.get("credential")
    if not isinstance(challenge, str) or not isinstance(credential, dict):
        return jsonify(error="Start again: press Add a passkey."), 409
    try:
        added = passkeys.register(
            member().user_id, credential, challenge, str(body.get("name", ""))
        )
    except ValidationError as exc:
        return jsonify(error=str(exc)), 422
    flash(f"Passkey “{added.name}” added. Logins can use it instead of a code.", "success")
    return jsonify(redirect=url_for("accounts.two_factor"))


@bp.post("/me/two-factor/passkeys/<int:passkey_id>/remove")
@login_required(during_deletion=True)
def passkey_remove(passkey_id: int) -> Any:
    if ActionForm().validate_on_submit():
        if passkeys.remove(member().user_id, passkey_id):
            flash("Passkey removed.", "success")
        else:
            flash("That passkey was already removed.", "info")
    return redirect(url_for("accounts.two_factor"))
