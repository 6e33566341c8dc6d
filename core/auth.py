"""Who is signed in, and what each view needs: the one place access is declared and checked.

Every view carries exactly one declaration, made by its decorator and read by
tests/test_permissions.py (which fails for a route without one):

- :func:`require_permission` / :func:`require_any_permission`: a signed-in member whose role
  holds the permission(s); others get the 403 page.
- :func:`login_required`: any signed-in member of the account (their own login and sessions).
- :func:`operator_required`: platform operators only (404 for everyone else).
- :func:`public`: no login (token links, public forms, webhooks, the login page itself).
- :func:`require_scope`: an API operation, called with an API key (``Authorization: Bearer``)
  whose scopes hold the permission; never with a session cookie. Answers 401/403 as problem
  details (core/problems.py), never a redirect to the login page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar, cast

from flask import abort, current_app, flash, g, redirect, request, session, url_for
from flask.sansio.app import App

from core.errors import PermissionDeniedError
from core.permissions import Permission

F = TypeVar("F", bound=Callable[..., Any])
#: Turns the session cookie's token into the signed-in member, or None (ended, unknown).
MemberLoader = Callable[[str], "CurrentMember | None"]
#: Turns an API key (the bearer token) into its caller, or None (unknown, revoked).
ApiKeyLoader = Callable[[str], "ApiCaller | None"]


class Audience(StrEnum):
    """Who may reach a view, besides a permission."""

    PUBLIC = "public"
    ANY_MEMBER = "any-member"
    PERMISSION = "permission"
    OPERATOR = "operator"
    API_KEY = "api-key"


@dataclass(frozen=True)
class Access:
    """A view's declaration: its audience and, for ``PERMISSION``, the permissions it needs
    (all of them, or any one when ``any_of``)."""

    audience: Audience
    permissions: frozenset[Permission] = frozenset()
    any_of: bool = False
    reason: str = ""

    def allows(self, granted: frozenset[Permission]) -> bool:
        if self.audience is Audience.API_KEY:
            return False  # not a page for a member: the API takes keys, never a session
        if self.audience is not Audience.PERMISSION:
            return True
        if self.any_of:
            return bool(self.permissions & granted)
        return self.permissions <= granted


#: The attribute a view's declaration is stored under.
ACCESS_ATTRIBUTE = "envoy_access"


def access_of(view: Callable[..., Any]) -> Access | None:
    """The declaration of a view function, or None when it declares nothing."""
    found = getattr(view, ACCESS_ATTRIBUTE, None)
    return found if isinstance(found, Access) else None


def _declare(view: F, access: Access) -> F:
    setattr(view, ACCESS_ATTRIBUTE, access)
    return view


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
    #: The role's name as shown (a built-in's capitalised, or the account's own role's name).
    role_name: str = ""
    #: What the member's role allows (read from the database on every request).
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    #: The account's IANA time zone (pages show dates in it).
    time_zone: str = "UTC"

    def can(self, permission: Permission | str) -> bool:
        """True when the member's role holds ``permission`` (a Permission or its value)."""
        return Permission(permission) in self.permissions

    def can_any(self, *permissions: Permission | str) -> bool:
        """True when the member's role holds at least one of ``permissions``."""
        return any(self.can(permission) for permission in permissions)


@dataclass(frozen=True)
class ApiCaller:
    """Who calls the API: a key of one account, with its scopes (a subset of what its creator
    held when it was made)."""

    key_id: int
    account_id: int
    scopes: frozenset[Permission]
    #: The member who created the key (services that record an actor get this id).
    created_by: int | None
    deletion_pending: bool = False

    def can(self, permission: Permission) -> bool:
        return permission in self.scopes


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


def init_api_keys(app: App, loader: ApiKeyLoader) -> None:
    """Set how a bearer token becomes an API caller (the api package does, when its blueprint
    is registered)."""
    app.extensions["core.api_key_loader"] = loader


def current_api_caller() -> ApiCaller | None:
    """The API key of this request (``Authorization: Bearer <key>``), loaded once; None when
    the header is missing, malformed, or names no live key. Cookies are never read."""
    if "api_caller" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        loader: ApiKeyLoader | None = current_app.extensions.get("core.api_key_loader")
        found = None
        if scheme.lower() == "bearer" and token.strip() and loader is not None:
            found = loader(token.strip())
        g.api_caller = found
    return cast(ApiCaller | None, g.api_caller)


def api_caller() -> ApiCaller:
    """The API key of a request to a view guarded by :func:`require_scope`."""
    found = current_api_caller()
    assert found is not None
    return found


class ApiAuthError(Exception):
    """An API request without a usable key (401) or whose key lacks the scope (403)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def require_scope(permission: Permission) -> Callable[[F], F]:
    """An API operation: the request's API key (never a cookie) must hold ``permission`` among
    its scopes. Missing, unknown or revoked key: :class:`ApiAuthError` 401; a key without the
    scope: 403; a change (not GET/HEAD) while the account is scheduled for deletion: 403. The
    declaration is what tests/test_permissions.py and the API's spec read."""

    access = Access(Audience.API_KEY, frozenset({permission}))

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            caller = current_api_caller()
            if caller is None:
                raise ApiAuthError(
                    401,
                    "Send a live API key as “Authorization: Bearer <key>” "
                    "(Settings > API keys); cookies are not accepted.",
                )
            if permission not in caller.scopes:
                raise ApiAuthError(
                    403, f"This API key lacks the scope “{permission.value}” ({permission.label})."
                )
            if caller.deletion_pending and request.method not in ("GET", "HEAD"):
                raise ApiAuthError(
                    403, "This account is scheduled for deletion: an owner must reactivate it."
                )
            return view(*args, **kwargs)

        return _declare(cast(F, wrapped), access)

    return decorate


def forget_current_member() -> None:
    """Drop this request's member (after its session ended) and the session cookie."""
    g.pop("member", None)
    session.clear()


def _guard(access: Access, during_deletion: bool) -> Callable[[F], F]:
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
            if not access.allows(member.permissions):
                needed = sorted(permission.label for permission in access.permissions)
                raise PermissionDeniedError(
                    "Your role does not allow this page or action. It needs the "
                    + (" or " if access.any_of else " and ").join(f"“{n}”" for n in needed)
                    + " permission. Ask someone who manages the team."
                )
            return view(*args, **kwargs)

        return _declare(cast(F, wrapped), access)

    return decorate


def login_required(during_deletion: bool = False) -> Callable[[F], F]:
    """Any signed-in member of the account, whatever their role; anonymous visitors are sent
    to the login page. For a member's own login, sessions and password: every other view
    declares a permission with :func:`require_permission`.

    While the account is scheduled for deletion its pages stay readable (every page carries
    the deletion banner), but a change (any request other than GET or HEAD) is sent to the
    reactivation page unless the view says ``during_deletion=True``: nothing is processed for
    an account that asked to go until an owner reactivates it.
    """
    return _guard(Access(Audience.ANY_MEMBER), during_deletion)


def require_permission(*permissions: Permission, during_deletion: bool = False) -> Callable[[F], F]:
    """A signed-in member whose role holds every one of ``permissions``; anonymous visitors go
    to the login page, members without them get the 403 page (in the layout). The deletion
    rule of :func:`login_required` applies."""
    if not permissions:
        raise ValueError("name at least one permission")
    return _guard(Access(Audience.PERMISSION, frozenset(permissions)), during_deletion)


def require_any_permission(
    *permissions: Permission, during_deletion: bool = False
) -> Callable[[F], F]:
    """Like :func:`require_permission`, but one of ``permissions`` is enough (a page that
    serves several roles, such as Settings, whose tabs check their own)."""
    if not permissions:
        raise ValueError("name at least one permission")
    return _guard(Access(Audience.PERMISSION, frozenset(permissions), any_of=True), during_deletion)


def check_permission(permission: Permission) -> None:
    """Inside a view already guarded: raise PermissionDeniedError (the 403 page) unless the
    signed-in member holds ``permission`` (for a part of a page, such as a settings tab)."""
    if not member().can(permission):
        raise PermissionDeniedError(
            f"Your role does not allow this: it needs the “{permission.label}” permission."
        )


def public(reason: str) -> Callable[[F], F]:
    """Declare a view open to anyone (no login), with the reason: a signed token, a public
    form, a webhook, the login page. Checks nothing; the declaration is what the route test
    reads."""

    def decorate(view: F) -> F:
        return _declare(view, Access(Audience.PUBLIC, reason=reason))

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

    return _declare(cast(F, wrapped), Access(Audience.OPERATOR))


def member() -> CurrentMember:
    """The signed-in member in a view guarded by one of the decorators above."""
    found = current_member()
    assert found is not None
    return found
