"""Navigation entries, registered by each package's views so the layout needs no edits.

An entry is shown to a member only when its page's declared access (core.auth) lets them in,
so nobody sees a link that answers 403 and no entry repeats a rule its view already states.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from core.auth import CurrentMember, access_of


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    order: int
    role: str  # member (as the page's permission allows) | operator (platform operators only)
    active_prefixes: tuple[str, ...]  # endpoints starting with one of these mark it active


_ITEMS: dict[str, NavItem] = {}


def add(
    label: str, endpoint: str, order: int, role: str = "member", active: tuple[str, ...] = ()
) -> None:
    """Show ``label`` in the top navigation (idempotent): to the members whose role the page's
    view admits, or with ``role="operator"`` in the account menu of platform operators.

    ``active``: endpoint prefixes that highlight the entry (default: its own endpoint).
    """
    if role not in ("member", "operator"):
        raise ValueError("role is member or operator: the view's permission decides the rest")
    _ITEMS[endpoint] = NavItem(label, endpoint, order, role, active or (endpoint,))


def items() -> list[NavItem]:
    """All entries in display order."""
    return sorted(_ITEMS.values(), key=lambda item: item.order)


def may_open(member: CurrentMember | None, endpoint: str) -> bool:
    """True when ``member`` passes the access declared by ``endpoint``'s view (for links and
    buttons: show only what the person may use). False for an unknown endpoint."""
    view = current_app.view_functions.get(endpoint)
    if view is None or member is None:
        return False
    access = access_of(view)
    return access is None or access.allows(member.permissions)


def main_items(member: CurrentMember) -> list[NavItem]:
    """The entries of the main navigation ``member`` may open, in display order."""
    return [item for item in items() if item.role != "operator" and may_open(member, item.endpoint)]
