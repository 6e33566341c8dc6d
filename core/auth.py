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

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def current_member() -> CurrentMember | None:
    """The member signed in to this request, loaded once per request."""
    if "member" not in g:
        from accounts import queries

        user_id = session.get("user_id")
        account_id = session.get("account_id")
        g.member = (
            queries.load_member(int(user_id), int(account_id)) if user_id and account_id else None
        )
    return cast(CurrentMember | None, g.member)


def login_required(role: str = "member") -> Callable[[F], F]:
    """Send anonymous visitors to the login page; refuse members below ``role`` with 403."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            member = current_member()
            if member is None:
                return redirect(url_for("accounts.login", next=request.full_path))
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
