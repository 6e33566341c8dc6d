"""Public tracking endpoints: beacon, click redirect, unsubscribe (page and RFC 8058 POST).

They set no cookie, take no CSRF token (the signed token is the authority) and never change
state on GET or HEAD: link scanners fetch every URL of a message.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from accounts import queries as account_queries
from core.signing import BadTokenError
from privacy import policy
from tracking import services, urls
from tracking.services import Hit

bp = Blueprint("tracking", __name__, template_folder="templates")
PUBLIC_NO_CSRF = True

#: A 1x1 transparent GIF, 43 bytes.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _reduced(campaign_id: int | None = None) -> policy.ReducedRequest:
    """Reduce the request (IP, user agent) as the account chooses; raw values end here."""
    ip_mode = account_queries.ip_handling_for_campaign(campaign_id) if campaign_id else "truncate"
    return policy.minimise(request.remote_addr, request.headers.get("User-Agent"), ip_mode)


def _no_store(response: BaseResponse) -> BaseResponse:
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/o/<token>")
def beacon(token: str) -> BaseResponse:
    """Always answer the GIF; record an open only for a valid token."""
    try:
        parsed = urls.parse_open(token)
    except BadTokenError:
        parsed = None
    if parsed is not None:
        reduced = _reduced(parsed.campaign_id)
        services.record_hit(
            Hit(
                kind="open",
                campaign_id=parsed.campaign_id,
                message_id=parsed.message_id,
                link_id=None,
                ip_prefix=reduced.ip_prefix,
                ua_class=reduced.ua_class,
            )
        )
    return _no_store(Response(PIXEL, mimetype="image/gif"))


@bp.route("/c/<token>", methods=["GET", "HEAD"])
def click(token: str) -> BaseResponse:
    """Redirect to the destination bound in the token; 404 for anything else."""
    try:
        parsed = urls.parse_click(token)
    except BadTokenError:
        abort(404)
    reduced = _reduced(parsed.campaign_id)
    services.record_hit(
        Hit(
            kind="click",
            campaign_id=parsed.campaign_id,
            message_id=parsed.message_id,
            link_id=parsed.link_id,
            ip_prefix=reduced.ip_prefix,
            ua_class=reduced.ua_class,
        )
    )
    response = redirect(parsed.url, code=302)
    return _no_store(response)


@bp.get("/u/<token>")
def unsubscribe_page(token: str) -> BaseResponse:
    """Show a confirmation button. GET changes nothing."""
    try:
        urls.parse_unsubscribe(token)
    except BadTokenError:
        abort(404)
    return _no_store(
        Response(render_template("tracking/unsubscribe.html", token=token, done=False))
    )


@bp.post("/u/<token>")
def unsubscribe(token: str) -> BaseResponse:
    """Unsubscribe: the RFC 8058 one-click POST (answered 200, no redirect) or the page's button."""
    try:
        message_id = urls.parse_unsubscribe(token)
    except BadTokenError:
        abort(404)
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    found = services.unsubscribe_message_recipient(
        message_id, _reduced(), "one-click" if one_click else "link"
    )
    if not found:
        abort(404)
    if one_click:
        return _no_store(Response("Unsubscribed.\n", mimetype="text/plain"))
    return _no_store(Response(render_template("tracking/unsubscribe.html", token=token, done=True)))
