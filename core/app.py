"""The application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, render_template, request, send_from_directory
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from core import db, logsafe, problems, queue, timezones
from core import secrets as core_secrets
from core.auth import ApiAuthError, public
from core.errors import (
    DATABASE_RETRY_AFTER,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    database_unavailable,
)
from core.registry import import_modules
from core.settings import SettingsError, load_config

csrf = CSRFProtect()
app_log = logging.getLogger(__name__)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, database, queue, blueprints, CLI."""
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.config.update(load_config(config))
    logging.basicConfig(
        level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # Werkzeug sets its own logger to INFO unless it has a level: it follows LOG_LEVEL instead.
    logging.getLogger("werkzeug").setLevel(app.config["LOG_LEVEL"])
    # The embedded server's request lines: no client address, no token, no query string.
    logsafe.install_access_log_filter()
    # dramatiq logs a failed task's traceback, whose last line may quote an address.
    logsafe.install_exception_text_filter("dramatiq.worker.WorkerThread")
    # Flask logs an unhandled error as "Exception on <path>" with its traceback; PostgreSQL's
    # error text quotes the failing row ("DETAIL: Failing row contains ..."), the path a token.
    logsafe.install_exception_text_filter(app.logger.name)
    logsafe.install_access_log_filter(app.logger.name)
    # APScheduler narrates every job it adds and runs; core.scheduler logs what matters.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # At DEBUG the engine would log every statement and result row (addresses): never follow
    # LOG_LEVEL down; its parameters are hidden anyway (core.db.make_engine).
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

    db.init_app(app)
    import_modules("models")
    # Fails at start, with what to do, when ENCRYPTION_KEYS is malformed or cannot decrypt what
    # the database holds (a lost or replaced key), never later as a 500 (core/secrets.py).
    core_secrets.init_app(app)
    core_secrets.check_keys(
        app.extensions["db_engine"], db.Base.metadata, app.extensions["secrets_fernet"]
    )
    import_modules("tasks")
    queue.init_app(app)
    csrf.init_app(app)
    timezones.init_app(app)

    for module in import_modules("views"):
        blueprint = module.bp
        app.register_blueprint(blueprint)
        if getattr(module, "PUBLIC_NO_CSRF", False):
            # Public endpoints authorised by a signed token, never by a cookie (RFC 8058).
            csrf.exempt(blueprint)

    from core import cli

    cli.register(app)
    _trust_proxies(app)

    _register_error_handlers(app)

    def _favicon() -> Any:
        # Browsers ask for /favicon.ico whatever the page links to; answer with the SVG icon.
        return send_from_directory(
            app.static_folder or "static", "favicon.svg", mimetype="image/svg+xml", max_age=86400
        )

    app.add_url_rule("/favicon.ico", "favicon", public("the site icon")(_favicon))

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.context_processor
    def _inject_member() -> dict[str, Any]:
        from core import nav
        from core.auth import current_member

        found = current_member()
        return {
            "current_member": found,
            "nav_items": nav.items(),
            "main_nav_items": nav.main_items(found) if found is not None else [],
            # can_open('subscribers.list_export'): show a link or button only to those it admits.
            "can_open": lambda endpoint: nav.may_open(found, endpoint),
        }

    if queue_is_inprocess(app) and app.config["INPROCESS_WORKER"] and not app.config["TESTING"]:
        app.extensions["queue"].start_worker()
    # privacy: periodic jobs run in-process on the embedded default (see core/scheduler.py).
    if queue_is_inprocess(app) and app.config["SCHEDULER_INPROCESS"] and not app.config["TESTING"]:
        from core import scheduler

        scheduler.start_inprocess(app)
    return app


def create_app_or_exit(config: dict[str, Any] | None = None) -> Flask:
    """``create_app`` for an entry point (``wsgi.py``, ``core/worker.py``): a setting whose value
    is not allowed ends the process (exit status 1) with the message naming each such setting
    and what it allows, instead of a traceback."""
    try:
        return create_app(config)
    except SettingsError as error:
        raise SystemExit(f"Envoy cannot start. {error}") from None


def _register_error_handlers(app: Flask) -> None:
    """HTML error pages, and RFC 9457 problem details for every error under ``/api/``."""

    @app.errorhandler(NotFoundError)
    def _not_found(_exc: NotFoundError) -> Any:
        if problems.is_api_request():
            return problems.problem_response(404, "No such resource in this account.")
        return render_template("core/error.html", code=404, message="Not found."), 404

    @app.errorhandler(404)
    def _404(_exc: Exception) -> Any:
        if problems.is_api_request():
            return problems.problem_response(404, "No such resource in this account.")
        return render_template("core/error.html", code=404, message="Not found."), 404

    @app.errorhandler(PermissionDeniedError)
    def _forbidden(exc: PermissionDeniedError) -> Any:
        if problems.is_api_request():
            return problems.problem_response(403, str(exc))
        page = render_template(
            "core/error.html", code=403, title="Not allowed for your role", message=str(exc)
        )
        return page, 403

    @app.errorhandler(ApiAuthError)
    def _api_auth(exc: ApiAuthError) -> Any:
        headers = {"WWW-Authenticate": 'Bearer realm="envoy"'} if exc.status == 401 else {}
        return problems.problem_response(exc.status, exc.detail, headers=headers)

    @app.errorhandler(problems.Problem)
    def _problem(exc: problems.Problem) -> Any:
        return problems.from_problem(exc)

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> Any:
        if not problems.is_api_request():
            raise exc  # views show a service's refusal in their form; anything else is a bug
        return problems.problem_response(
            422,
            exc.message,
            "validation-error",
            [problems.FieldError(exc.field or "", exc.message)],
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if not problems.is_api_request() or exc.code is None:
            return exc
        headers = {}
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return problems.problem_response(
            exc.code, exc.description or problems.title_of(exc.code), headers=headers
        )

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeoutError)
    def _database_down(exc: Exception) -> Any:
        if not database_unavailable(exc):
            raise exc  # a failing statement is a bug: the usual 500
        if problems.is_api_request():
            return problems.problem_response(
                503,
                "The service is briefly unavailable; nothing was changed. Try again.",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
            )
        return database_unavailable_response()

    @app.errorhandler(500)
    def _server_error(exc: Exception) -> Any:
        if problems.is_api_request():
            return problems.problem_response(
                500, "Something went wrong on our side; it is logged. Try again later."
            )
        return exc


def _trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXY_HOPS`` reverse proxies, read the client's address, scheme and host
    from the headers those proxies add, so rate limits and IP reduction see the client.

    Wrapped last, outside the tracking hot path (installed with its blueprint), so the beacon
    and click handlers see the corrected ``REMOTE_ADDR`` too.
    """
    hops = int(app.config["TRUSTED_PROXY_HOPS"])
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )


#: What each public POST did not do when the database was down, said in its answer.
_NOT_RECORDED = {
    "tracking.unsubscribe": "Your unsubscribe was not recorded",
    "tracking.undo_unsubscribe": "Your undo was not recorded",
    "subscribers.preferences": "Your choices were not saved",
}


def database_unavailable_response() -> Response:
    """503 with ``Retry-After``: the database could not be reached, so nothing was recorded and
    the person (or the mail client's RFC 8058 POST) is told to try again. Never touches the
    database: the page renders as signed out, and an RFC 8058 one-click POST gets plain text."""
    app_log.warning("database unavailable during %s %s", request.method, request.endpoint)
    g.member = None  # the layout would otherwise load the member (and the deletion banner)
    done = _NOT_RECORDED.get(request.endpoint or "", "Nothing was changed")
    message = f"{done}: our service is briefly unavailable. Please try again in a minute."
    if request.method == "POST" and request.form.get("List-Unsubscribe") == "One-Click":
        response = Response(message + "\n", status=503, mimetype="text/plain")
    else:
        body = render_template(
            "core/error.html", code=503, title="Please try again", message=message, home=False
        )
        response = Response(body, status=503, mimetype="text/html")
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    return response


def queue_is_inprocess(app: Flask) -> bool:
    """True when jobs run in this process (no Redis configured)."""
    return bool(app.extensions["queue"].is_inprocess)
