"""The Media page, the editors' JSON (``GET /media.json``, ``POST /media``) and the public
image path (``/img/<name>``, answered by :mod:`media.public` in front of Flask)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import RequestEntityTooLarge

from core.auth import member, public, require_any_permission
from core.errors import NotFoundError, ValidationError
from core.forms import ActionForm, show_error
from core.permissions import Permission
from media import public as public_path
from media import queries, services
from media.forms import UploadForm
from media.storage import StorageError

bp = Blueprint(
    "media",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/media-static",
)

#: Who may use the library: those who write campaigns or templates.
EDITORS = (Permission.MANAGE_CAMPAIGNS, Permission.MANAGE_TEMPLATES)
#: Room for the multipart framing and the CSRF field around the file.
UPLOAD_OVERHEAD_BYTES = 16 * 1024


@bp.record_once
def _install_public_path(state: BlueprintSetupState) -> None:
    public_path.install(state.app)  # type: ignore[arg-type]


@bp.url_value_preprocessor
def _limit_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Before CSRFProtect reads the form: an upload over the limit is refused from its
    # Content-Length (or while streaming) without being spooled whole.
    if endpoint == "media.upload" and request.method == "POST":
        request.max_content_length = (
            int(current_app.config["MEDIA_MAX_BYTES"]) + UPLOAD_OVERHEAD_BYTES
        )


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _error(message: str, status: int) -> Any:
    if _wants_json():
        return jsonify({"error": message}), status
    flash(message, "error")
    return redirect(url_for("media.library"))


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Any:
    if request.endpoint != "media.upload":
        return error
    limit = services.limits().max_bytes
    return _error(f"The file is larger than {limit / 1000 / 1000:.1f} MB.", 413)


def _library_page(form: UploadForm, status: int = 200) -> Any:
    page = render_template(
        "media/library.html",
        items=queries.account_media(member().account_id),
        form=form,
        action=ActionForm(),
        as_json=queries.as_json,
    )
    return page, status


@bp.get("/media")
@require_any_permission(*EDITORS)
def library() -> Any:
    return _library_page(UploadForm())


@bp.get("/media.json")
@require_any_permission(*EDITORS)
def list_json() -> Any:
    items = queries.account_media(member().account_id)
    response = jsonify([queries.as_json(item) for item in items])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/media")
@require_any_permission(*EDITORS)
def upload() -> Any:
    me = member()
    form = UploadForm()
    if not form.validate_on_submit():
        if _wants_json():
            errors = [e for errs in form.errors.values() for e in errs]
            return jsonify({"error": str(errors[0]) if errors else "Choose an image."}), 422
        return _library_page(form, 422)
    file = form.file.data
    try:
        item = services.upload(me.account_id, me.user_id, file.filename or "", file.read())
    except ValidationError as exc:
        if _wants_json():
            return jsonify({"error": exc.message}), 422
        show_error(form, exc)
        return _library_page(form, 422)
    except StorageError:
        current_app.logger.exception("media upload: storage failed")
        return _error("The image could not be stored just now; try again in a minute.", 503)
    if _wants_json():
        return jsonify(queries.as_json(item)), 201
    flash("Image uploaded.", "success")
    return redirect(url_for("media.library"))


@bp.post("/media/<int:media_id>/delete")
@require_any_permission(*EDITORS)
def delete(media_id: int) -> Any:
    form = ActionForm()
    if not form.validate_on_submit():
        return _error("The form expired; try again.", 400)
    try:
        services.delete(member().account_id, media_id)
    except NotFoundError:
        if _wants_json():
            return jsonify({"error": "Not found."}), 404
        raise
    if _wants_json():
        return jsonify({"deleted": media_id})
    flash("Image deleted.", "success")
    return redirect(url_for("media.library"))


@bp.route("/img/<name>", methods=["GET", "HEAD"])
@public("images in emails, under a random 128-bit name the same for every recipient")
def public_image(name: str) -> Any:
    """Answered by media.public before Flask; the same answer if a request reaches here."""
    status, headers, body = public_path.answer(current_app._get_current_object(), name)  # type: ignore[attr-defined]
    return Response(body, status=int(status.split()[0]), headers=headers)
