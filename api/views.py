"""The API package's blueprints: Settings > API keys (pages for members, CSRF-protected), and
``/api/v1`` nested in it (api/v1.py; its operations in api/resources/), exempt from CSRF
because it takes keys from a header, never a cookie.

Adding a resource: write ``api/resources/<name>.py`` with operations on ``api.v1.v1`` (see
api/spec.py and docs/readme/api.md) and import it below.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState

from api import keys
from api.forms import ApiKeyForm
from api.resources import (  # noqa: F401 - they add their operations
    audience,
    campaigns,
    contacts,
    data_requests,
    imports,
    lists,
    messages,
    reports,
    templates,
    webhooks,
)
from api.v1 import v1
from core import auth
from core.auth import member, require_permission
from core.errors import PermissionDeniedError, ValidationError
from core.forms import ActionForm, show_error
from core.permissions import Permission

bp = Blueprint("api", __name__, template_folder="templates", static_folder=None)
bp.register_blueprint(v1)


def _setup(state: BlueprintSetupState) -> None:
    state.app.extensions["csrf"].exempt(v1)
    auth.init_api_keys(state.app, keys.authenticate)


bp.record_once(_setup)


def _keys_page(form: ApiKeyForm, new_key: keys.NewKey | None = None, status: int = 200) -> Any:
    me = member()
    return render_template(
        "api/keys.html",
        form=form,
        action=ActionForm(),
        keys=keys.account_keys(me.account_id),
        permissions=[p for p in Permission if p in me.permissions],
        new_key=new_key,
        tab="api-keys",
    ), status


@bp.route("/settings/api-keys", methods=["GET", "POST"])
@require_permission(Permission.MANAGE_SENDING)
def keys_page() -> Any:
    """List the account's keys and create one (its secret is shown once, in this answer)."""
    me = member()
    form = ApiKeyForm()
    if request.method == "GET":
        return _keys_page(form)
    if form.validate_on_submit():
        try:
            made = keys.create_key(
                me.account_id, me.user_id, me.permissions, form.name.data or "", form.scopes.data
            )
        except ValidationError as exc:
            show_error(form, exc)
        except PermissionDeniedError as exc:
            form.scopes.errors = [str(exc)]
        else:
            response, _status = _keys_page(ApiKeyForm(formdata=None), made)
            return response, 200, {"Cache-Control": "no-store"}
    return _keys_page(form, status=422)


@bp.post("/settings/api-keys/<int:key_id>/revoke")
@require_permission(Permission.MANAGE_SENDING)
def revoke_key(key_id: int) -> Any:
    """Revoke a key: refused from the next request on."""
    me = member()
    if ActionForm().validate_on_submit():
        key = keys.revoke_key(me.account_id, me.user_id, key_id)
        flash(f"Key “{key.name}” revoked: it no longer works.", "success")
    return redirect(url_for("api.keys_page"), 303)
