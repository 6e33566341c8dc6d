"""Navigation entries, registered by each package's views so the layout needs no edits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    order: int
    role: str  # member | admin | owner | operator (platform operators only)
    active_prefixes: tuple[str, ...]  # endpoints starting with one of these mark it active


_ITEMS: dict[str, NavItem] = {}


def add(
    label: str, endpoint: str, order: int, role: str = "member", active: tuple[str, ...] = ()
) -> None:
    """Show ``label`` in the top navigation for members with ``role`` (idempotent).

    ``active``: endpoint prefixes that highlight the entry (default: its own endpoint).
    """
    _ITEMS[endpoint] = NavItem(label, endpoint, order, role, active or (endpoint,))


def items() -> list[NavItem]:
    """All entries in display order."""
    return sorted(_ITEMS.values(), key=lambda item: item.order)
