"""What a member (and, later, an API key) may do: the permissions, as one enum.

A role is a named set of these (accounts/roles.py holds the built-in owner, admin and member
sets; an account can define its own). Every view declares what it needs with
``core.auth.require_permission`` (or says it is open to any member, to operators only, or to the
public), and tests/test_permissions.py fails for a route that declares nothing.

The values are stable strings (``area:verb``): they are stored in ``role_permissions`` (with a
check constraint) and are the scopes an API key will carry, so a value is never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    """One thing a role may allow. Labels and descriptions are what the role editor shows."""

    MANAGE_CAMPAIGNS = "campaigns:manage"
    SEND_CAMPAIGNS = "campaigns:send"
    MANAGE_TEMPLATES = "templates:manage"
    MANAGE_CONTACTS = "contacts:manage"
    EXPORT_CONTACTS = "contacts:export"
    VIEW_REPORTS = "reports:view"
    HANDLE_DATA_REQUESTS = "privacy:requests"
    MANAGE_PRIVACY = "privacy:settings"
    MANAGE_TEAM = "team:manage"
    MANAGE_SENDING = "sending:manage"
    MANAGE_SETTINGS = "account:settings"
    OWN_ACCOUNT = "account:own"

    @property
    def label(self) -> str:
        return _TEXT[self][0]

    @property
    def description(self) -> str:
        return _TEXT[self][1]


_TEXT: dict[Permission, tuple[str, str]] = {
    Permission.MANAGE_CAMPAIGNS: (
        "Compose campaigns",
        "Create, edit and duplicate campaigns and send test messages.",
    ),
    Permission.SEND_CAMPAIGNS: (
        "Send campaigns",
        "Send, schedule, pause, resume and cancel campaigns.",
    ),
    Permission.MANAGE_TEMPLATES: ("Manage templates", "Create, edit and delete templates."),
    Permission.MANAGE_CONTACTS: (
        "Manage contacts and lists",
        "See and edit contacts, lists, segments and imports.",
    ),
    Permission.EXPORT_CONTACTS: (
        "Export contacts",
        "Download lists and segments with their contacts' addresses (CSV, JSON).",
    ),
    Permission.VIEW_REPORTS: ("View reports", "See campaign reports and download their figures."),
    Permission.HANDLE_DATA_REQUESTS: (
        "Handle data requests",
        "Answer data-subject requests: a contact's data, export, rectification, restriction.",
    ),
    Permission.MANAGE_PRIVACY: (
        "Manage privacy settings",
        "Change tracking, IP and retention settings and consent records; erase a contact.",
    ),
    Permission.MANAGE_TEAM: (
        "Manage the team",
        "Add and remove members, change their roles, define custom roles.",
    ),
    Permission.MANAGE_SENDING: (
        "Manage sending, API keys and webhooks",
        "Sender addresses, SMTP servers, DKIM keys, sending limits, API keys and webhooks.",
    ),
    Permission.MANAGE_SETTINGS: (
        "Manage account settings",
        "The account's name, postal address, time zone and advanced settings.",
    ),
    Permission.OWN_ACCOUNT: (
        "Own the account",
        "Grant or remove ownership, delete or reactivate the account, billing.",
    ),
}

#: Every permission (iterate over Permission for the order the role editor shows).
ALL: frozenset[Permission] = frozenset(Permission)
