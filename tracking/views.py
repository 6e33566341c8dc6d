"""Public tracking endpoints (beacon, click, honeypot, unsubscribe) and the report pages.

The beacon, click and honeypot are answered by :mod:`tracking.hotpath` in front of Flask; the
routes below answer the same requests when they reach Flask (odd token shapes) with the same
code. Public endpoints set no cookie, take no CSRF token (the signed token is the authority)
and never change state on GET or HEAD: link scanners fetch every URL of a message.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response as BaseResponse

from campaigns import ab_tests
from core import nav
from core.auth import member, public, require_permission
from core.permissions import Permission
from core.signing import BadTokenError
from tracking import analytics, charts, hotpath, queries, services, urls
from tracking.hotpath import PIXEL

__all__ = ["PIXEL", "bp"]

bp = Blueprint("tracking", __name__, template_folder="templates")
PUBLIC_NO_CSRF = True
nav.add("Reports", "tracking.reports", 25, active=("tracking.report", "tracking.reports"))


@bp.record_once
def _install_hot_path(state: BlueprintSetupState) -> None:
    hotpath.install(state.app)  # type: ignore[arg-type]


def _no_store(response: BaseResponse) -> BaseResponse:
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _environ() -> dict[str, Any]:
    return request.environ


@bp.route("/o/<token>", methods=["GET", "HEAD"])
@public("the open pixel of an email")
def beacon(token: str) -> BaseResponse:
    """Always answer the GIF; record an open only for a valid token."""
    hotpath.recorder(current_app._get_current_object()).beacon(token, _environ())  # type: ignore[attr-defined]
    return _no_store(Response(PIXEL, mimetype="image/gif"))


@bp.route("/c/<token>", methods=["GET", "HEAD"])
@public("a signed link in an email")
def click(token: str) -> BaseResponse:
    """Redirect to the destination bound in the token; 404 for anything else."""
    url = hotpath.recorder(current_app._get_current_object()).click(token, _environ())  # type: ignore[attr-defined]
    if url is None:
        abort(404)
    response = Response(status=302)
    for name, value in hotpath.redirect_headers(url):
        response.headers[name] = value
    return response


@bp.route("/h/<token>", methods=["GET", "HEAD"])
@public("the link-scanner trap of an email")
def honeypot(token: str) -> BaseResponse:
    """The hidden link only machines follow: a plain answer, and the hit as evidence."""
    if not hotpath.recorder(current_app._get_current_object()).honeypot(token, _environ()):  # type: ignore[attr-defined]
        abort(404)
    return _no_store(Response(hotpath.HONEYPOT_BODY, mimetype="text/plain"))


def _parsed(token: str) -> urls.UnsubscribeToken:
    try:
        return urls.parse_unsubscribe(token)
    except BadTokenError:
        abort(404)


def _page(token: str, parsed: urls.UnsubscribeToken, state: str, **extra: Any) -> BaseResponse:
    """The unsubscribe page in one of its states (ask, done, undone, too-late, gone)."""
    if parsed.test:
        assert parsed.campaign_id is not None
        found = queries.test_unsubscribe_page(parsed.campaign_id)
    else:
        assert parsed.message_id is not None
        found = queries.unsubscribe_page(parsed.message_id)
    if found is None:
        state = "gone"
    return _no_store(
        Response(
            render_template(
                "tracking/unsubscribe.html",
                token=token,
                page=found,
                state=state,
                undo_minutes=max(1, services.undo_seconds() // 60),
                **extra,
            )
        )
    )


@bp.get("/u/<token>")
@public("a signed unsubscribe link")
def unsubscribe_page(token: str) -> BaseResponse:
    """Say who is asking and what the person would leave, with a confirmation button.
    GET changes nothing (link scanners fetch every URL)."""
    return _page(token, _parsed(token), "ask")


@bp.post("/u/<token>")
@public("RFC 8058 one-click unsubscribe")
def unsubscribe(token: str) -> BaseResponse:
    """Unsubscribe: the RFC 8058 one-click POST (answered 200, no redirect) or the page's button.
    A test message's link changes nothing and says so."""
    parsed = _parsed(token)
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    if parsed.test:
        if one_click:
            return _no_store(Response("Test message: nothing changed.\n", mimetype="text/plain"))
        return _page(token, parsed, "test-done")
    assert parsed.message_id is not None
    outcome = services.unsubscribe_message_recipient(
        parsed.message_id, "one-click" if one_click else "link"
    )
    if outcome is None:
        abort(404)
    if one_click:
        return _no_store(Response("Unsubscribed.\n", mimetype="text/plain"))
    return _page(token, parsed, "done", undo_token=outcome.undo_token)


@bp.post("/u/<token>/undo")
@public("a signed unsubscribe link")
def undo_unsubscribe(token: str) -> BaseResponse:
    """Undo the unsubscribe just made, by the signed token of the page's form (a POST)."""
    parsed = _parsed(token)
    if parsed.message_id is None:
        abort(404)
    try:
        result = services.undo_unsubscribe(parsed.message_id, request.form.get("undo", ""))
    except BadTokenError:
        result = services.UndoResult.TOO_LATE
    return _page(token, parsed, "undone" if result is services.UndoResult.UNDONE else "too-late")


@bp.get("/reports")
@require_permission(Permission.VIEW_REPORTS)
def reports() -> Any:
    """The account dashboard: recent campaigns side by side."""
    rows = analytics.account_overview(member().account_id)
    return render_template("tracking/reports.html", rows=rows)


@bp.get("/campaigns/<int:campaign_id>/report")
@require_permission(Permission.VIEW_REPORTS)
def report(campaign_id: int) -> Any:
    """One campaign's report: chart, human and machine figures, links, domains."""
    found = analytics.campaign_report(member().account_id, campaign_id)
    chart = charts.line_chart(found.series, found.granularity)
    ab_test = ab_tests.get_ab_test(found.campaign.id)  # the variants side by side, if any
    started = ab_test is not None and ab_test.status != "draft"
    return render_template(
        "tracking/report.html",
        report=found,
        chart=chart,
        ab_test=ab_test,
        ab_results=ab_tests.results(ab_test) if started and ab_test is not None else [],
    )


@bp.get("/campaigns/<int:campaign_id>/report.csv")
@require_permission(Permission.VIEW_REPORTS)
def report_csv(campaign_id: int) -> Any:
    """The report as a CSV download."""
    found = analytics.campaign_report(member().account_id, campaign_id)
    response = Response(analytics.report_csv(found), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="campaign-{found.campaign.id}-report.csv"'
    )
    return response
