"""Who is signed in: the member of the current request and role checks for views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import abort, flash, g, redirect, request, session, url_for

F = TypeVar("F", bound=Callable[..., Any])

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
    #: The account requires a second factor and this person has none yet: every page but the
    #: enrolment (views marked :func:`allowed_before_two_factor`) leads to the enrolment.
    must_enrol_two_factor: bool = False

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def current_member() -> CurrentMember | None:
    """The member signed in to this request, loaded once per request.

    The cookie names a server-side session only; the user, the account and the role come from
    that session's row and the current membership, so ending a session, a removal or a role
    change counts from the next request on.
    """
    if "member" not in g:
        from accounts import queries, sessions

        token = session.get("sid")
        found = sessions.resolve(token) if isinstance(token, str) else None
        g.member = (
            queries.load_member(found.user_id, found.account_id, session_id=found.id)
            if found is not None
            else None
        )
        if g.member is None and "sid" in session:
            session.pop("sid")
    return cast(CurrentMember | None, g.member)


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
            if member.must_enrol_two_factor and not getattr(
                view, "allowed_before_two_factor", False
            ):
                return redirect(url_for("accounts.two_factor_setup")), 303
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


def allowed_before_two_factor(view: F) -> F:
    """Mark a view as open to a member whose account requires a second factor they have not
    set up yet (the enrolment pages). Put it below :func:`login_required` (closer to the view)."""
    view.allowed_before_two_factor = True  # type: ignore[attr-defined]
    return view


def operator_required(view: F) -> F:
    """Only platform operators (users with ``is_platform_admin``); others get 404."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        found = current_member()
        if found is None:
            return redirect(url_for("accounts.login", next=request.full_path))
        if not found.is_platform_admin:
            abort(404)
        if found.must_enrol_two_factor:
            return redirect(url_for("accounts.two_factor_setup")), 303
        return view(*args, **kwargs)

    return cast(F, wrapped)


def member() -> CurrentMember:
    """The signed-in member in a view guarded by :func:`login_required`."""
    found = current_member()
    assert found is not None
    return found
