"""Who is signed in: the member of the current request and role checks for views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask.sansio.app import App

F = TypeVar("F", bound=Callable[..., Any])
#: Turns the session cookie's token into the signed-in member, or None (ended, unknown).
MemberLoader = Callable[[str], "CurrentMember | None"]

ROLE_RANK = {"member": 0, "admin": 1, "owner": 2}


@dataclass(frozen=True)
class CurrentMember:
    """The signed-in person and the account they are working in."""

    user_id: int
    account_id: int
    role: str
    name: str
    email: str
    account_name: str
    is_platform_admin: bool
    #: The account is scheduled for deletion: only reactivation (and the member's own
    #: security pages) stay open until an owner reactivates it.
    deletion_pending: bool = False
    #: The ``user_sessions`` row of this request.
    session_id: int = 0
    #: The account's IANA time zone (pages show dates in it).
    time_zone: str = "UTC"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def current_member() -> CurrentMember | None:
    """The member signed in to this request, loaded once per request.

    The cookie names a server-side session only; the user, the account and the role come from
    that session's row and the current membership, so ending a session, a removal or a role
    change counts from the next request on.
    """
    if "member" not in g:
        token = session.get("sid")
        loader: MemberLoader | None = current_app.extensions.get("core.member_loader")
        g.member = loader(token) if isinstance(token, str) and loader is not None else None
        if g.member is None and "sid" in session:
            session.pop("sid")
    return cast(CurrentMember | None, g.member)


def init_app(app: App, loader: MemberLoader) -> None:
    """Set how a session token becomes the signed-in member (the accounts package does, when
    the app factory registers its blueprint: core imports no domain package)."""
    app.extensions["core.member_loader"] = loader


def forget_current_member() -> None:
    """Drop this request's member (after its session ended) and the session cookie."""
    g.pop("member", None)
    session.clear()


def login_required(role: str = "member", during_deletion: bool = False) -> Callable[[F], F]:
    """Send anonymous visitors to the login page; refuse members below ``role`` with 403.

    While the account is scheduled for deletion its pages stay readable (every page carries
    the deletion banner), but a change (any request other than GET or HEAD) is sent to the
    reactivation page unless the view says ``during_deletion=True``: nothing is processed for
    an account that asked to go until an owner reactivates it.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            member = current_member()
            if member is None:
                return redirect(url_for("accounts.login", next=request.full_path))
            if (
                member.deletion_pending
                and not during_deletion
                and request.method not in ("GET", "HEAD")
            ):
                flash("This account is scheduled for deletion: reactivate it to make changes.")
                return redirect(url_for("accounts.reactivate")), 303
            if not member.has_role(role):
                flash(f"That needs the {role} role.", "error")
                return redirect(url_for("campaigns.dashboard")), 303
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def operator_required(view: F) -> F:
    """Only platform operators (users with ``is_platform_admin``); others get 404."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        found = current_member()
        if found is None:
            return redirect(url_for("accounts.login", next=request.full_path))
        if not found.is_platform_admin:
            abort(404)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def member() -> CurrentMember:
    """The signed-in member in a view guarded by :func:`login_required`."""
    found = current_member()
    assert found is not None
    return found
