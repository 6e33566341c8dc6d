"""The ``/api/v1`` blueprint: its operations (api/resources/), the OpenAPI document and the
reference page. Exempt from CSRF (api.views): operations take an API key from a header,
never a cookie (core.auth.require_scope)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui_bundle
from flask import Blueprint, abort, current_app, jsonify, render_template, send_from_directory

from api.spec import build_spec
from core.auth import public

v1 = Blueprint("v1", __name__, url_prefix="/api/v1")

#: Swagger UI's files, from the swagger-ui-bundle-v2 package (no CDN).
SWAGGER_UI_DIR = Path(swagger_ui_bundle.swagger_ui_path)
SWAGGER_UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})


@v1.get("/openapi.json")
@public("the API's OpenAPI document: it describes the operations and holds no account data")
def openapi_document() -> Any:
    response = jsonify(build_spec(current_app._get_current_object()))  # type: ignore[attr-defined]
    response.headers["Cache-Control"] = "no-cache"
    return response


@v1.get("/docs")
@public("the API's reference page: it shows the OpenAPI document")
def reference() -> Any:
    return render_template("api/reference.html")


@v1.get("/docs/assets/<name>")
@public("the reference page's vendored Swagger UI files")
def reference_asset(name: str) -> Any:
    if name == "init.js":
        return send_from_directory(
            Path(__file__).parent / "static", "reference-init.js", max_age=3600
        )
    if name not in SWAGGER_UI_FILES:
        abort(404)
    return send_from_directory(SWAGGER_UI_DIR, name, max_age=86400)
