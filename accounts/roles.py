"""Roles as named sets of permissions: the built-in ones, an account's own, and their rules.

Owner, admin and member are defined here, in code, so a permission added later reaches them
without a data migration. An account's own roles are rows (accounts.models.Role). Every check
of what a member may do goes through :func:`core.auth.require_permission` (views) or
:func:`require` (services) against the set this module computes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from accounts.audit import record_security_event
from accounts.models import CUSTOM_ROLE, BuiltinRole, Role, RolePermission, SecurityEventKind
from accounts.queries import get_role, list_roles, role_usage
from core import db
from core.db import utcnow
from core.errors import NotFoundError, PermissionDeniedError, ValidationError
from core.permissions import ALL, Permission

#: What each built-in role allows. Members may do everything they did before permissions
#: existed except exporting contacts; admins everything but ownership and account deletion.
BUILTIN: dict[str, frozenset[Permission]] = {
    BuiltinRole.OWNER: ALL,
    BuiltinRole.ADMIN: ALL - {Permission.OWN_ACCOUNT},
    BuiltinRole.MEMBER: frozenset(
        {
            Permission.MANAGE_CAMPAIGNS,
            Permission.SEND_CAMPAIGNS,
            Permission.MANAGE_TEMPLATES,
            Permission.MANAGE_CONTACTS,
            Permission.VIEW_REPORTS,
            Permission.HANDLE_DATA_REQUESTS,
        }
    ),
}
MAX_ROLES_PER_ACCOUNT = 50


@dataclass(frozen=True)
class RoleChoice:
    """A role a member can be given: ``key`` is ``owner``/``admin``/``member`` or
    ``role:<id>`` for one of the account's own roles."""

    key: str
    name: str
    permissions: frozenset[Permission]
    builtin: bool


def require(actor: frozenset[Permission], permission: Permission, what: str) -> None:
    """Raise PermissionDeniedError (answered 403) unless ``actor`` holds ``permission``."""
    if permission not in actor:
        raise PermissionDeniedError(f"You need the “{permission.label}” permission to {what}.")


def permissions_of(role: str, custom: Iterable[str] = ()) -> frozenset[Permission]:
    """The permissions of a membership: a built-in role's set, or the custom role's grants."""
    if role == CUSTOM_ROLE:
        known = {permission.value for permission in Permission}
        return frozenset(Permission(value) for value in custom if value in known)
    return BUILTIN.get(role, frozenset())


def choices(account_id: int) -> list[RoleChoice]:
    """The roles a member of the account can hold: built-in first, then its own by name."""
    found = [
        RoleChoice(str(role.value), role.value.capitalize(), BUILTIN[role], True)
        for role in (BuiltinRole.MEMBER, BuiltinRole.ADMIN, BuiltinRole.OWNER)
    ]
    for role in list_roles(account_id):
        found.append(RoleChoice(f"role:{role.id}", role.name, role.permissions, False))
    return found


def _clean(
    account_id: int, name: str, permissions: Iterable[str], role_id: int | None
) -> tuple[str, frozenset[Permission]]:
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Give the role a name.", field="name")
    if len(name) > 60:
        raise ValidationError("Use at most 60 characters for the name.", field="name")
    if name.lower() in {role.value for role in BuiltinRole} | {CUSTOM_ROLE}:
        raise ValidationError("That name belongs to a built-in role.", field="name")
    clash = db.session.scalar(
        select(Role.id).where(
            Role.account_id == account_id,
            func.lower(Role.name) == name.lower(),
            Role.id != (role_id or 0),
        )
    )
    if clash is not None:
        raise ValidationError("Another role has that name.", field="name")
    try:
        chosen = frozenset(Permission(value) for value in permissions)
    except ValueError:
        raise ValidationError("Unknown permission.", field="permissions") from None
    if not chosen:
        raise ValidationError("Choose at least one permission.", field="permissions")
    if Permission.OWN_ACCOUNT in chosen:
        raise ValidationError(
            "Ownership is only held by owners: give the person the Owner role.",
            field="permissions",
        )
    return name, chosen


def check_grant(actor: frozenset[Permission], chosen: frozenset[Permission]) -> None:
    """Raise PermissionDeniedError when ``chosen`` holds a permission ``actor`` lacks: nobody
    defines, gives or takes away a role that can do more than they can themselves."""
    beyond = chosen - actor
    if beyond:
        labels = ", ".join(sorted(permission.label for permission in beyond))
        raise PermissionDeniedError(f"You cannot grant permissions you do not hold: {labels}.")


def save_role(
    account_id: int,
    actor: frozenset[Permission],
    role_id: int | None,
    name: str,
    permissions: Iterable[str],
    description: str = "",
    *,
    actor_user_id: int | None = None,
) -> Role:
    """Create (``role_id`` None) or replace one of the account's own roles. Needs
    ``team:manage`` and every permission granted or taken away; the name is unique in the
    account (case-insensitive) and not a built-in's. Members of an edited role have the new
    set from their next request (permissions are read on every request). Recorded in the
    security log with the permissions added and removed. Commits."""
    require(actor, Permission.MANAGE_TEAM, "define roles")
    role = get_role(account_id, role_id) if role_id is not None else None
    name, chosen = _clean(account_id, name, permissions, role_id)
    check_grant(actor, chosen ^ role.permissions if role is not None else chosen)
    if role is None:
        count = db.session.scalar(select(func.count()).where(Role.account_id == account_id))
        if (count or 0) >= MAX_ROLES_PER_ACCOUNT:
            raise ValidationError(f"An account has at most {MAX_ROLES_PER_ACCOUNT} roles.")
        role = Role(account_id=account_id)
        db.session.add(role)
    role.name = name
    role.description = description.strip()[:300]
    kept = {grant.permission: grant for grant in role.grants}
    before = frozenset(Permission(p) for p in kept)
    role.grants = [kept.get(p.value) or RolePermission(permission=p.value) for p in sorted(chosen)]
    role.updated_at = utcnow()
    record_security_event(
        account_id,
        actor_user_id,
        SecurityEventKind.ROLE_DEFINED,
        {
            "role": name,
            "added": sorted(p.value for p in chosen - before),
            "removed": sorted(p.value for p in before - chosen),
        },
    )
    db.session.commit()
    return role


def delete_role(
    account_id: int,
    actor: frozenset[Permission],
    role_id: int,
    *,
    actor_user_id: int | None = None,
) -> None:
    """Delete one of the account's own roles; refused (ValidationError) while a member holds
    it: reassign them first. Recorded in the security log. Commits."""
    require(actor, Permission.MANAGE_TEAM, "delete roles")
    role = get_role(account_id, role_id)
    holders = role_usage(account_id).get(role.id, 0)
    if holders:
        raise ValidationError(
            f"{holders} member{'s hold' if holders != 1 else ' holds'} this role. "
            "Give them another role first."
        )
    record_security_event(
        account_id, actor_user_id, SecurityEventKind.ROLE_DELETED, {"role": role.name}
    )
    db.session.delete(role)
    db.session.commit()


def resolve(account_id: int, key: str) -> tuple[str, Role | None]:
    """The membership columns for a role choice (``owner``/``admin``/``member``/``role:<id>``);
    ValidationError for anything else, NotFoundError for another account's role."""
    if key in {role.value for role in BuiltinRole}:
        return key, None
    prefix, _, raw_id = key.partition(":")
    if prefix != "role" or not raw_id.isdigit():
        raise ValidationError("Unknown role.", field="role")
    try:
        return CUSTOM_ROLE, get_role(account_id, int(raw_id))
    except NotFoundError:
        raise ValidationError("Unknown role.", field="role") from None


def permissions_of_choice(account_id: int, key: str) -> frozenset[Permission]:
    """What a member with the role choice ``key`` may do."""
    role, custom = resolve(account_id, key)
    return custom.permissions if custom is not None else BUILTIN[role]
