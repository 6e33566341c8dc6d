"""accounts: roles as named sets of permissions; an account's own roles

Revision ID: 0315
Revises: 0307
Create Date: 2026-12-02 16:20:00

Owner, admin and member stay built-in (their permissions are defined in code, accounts/roles.py).
An account's own roles are rows of ``roles`` with their permissions in ``role_permissions``; a
membership names one with ``role = 'custom'`` and ``role_id``. The foreign key
(account_id, role_id) -> roles (account_id, id) keeps a role inside its account and refuses to
delete a role still held by a member. ``memberships`` is rebuilt on SQLite (batch) and keeps
AUTOINCREMENT.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0315"
down_revision: str | Sequence[str] | None = "0319"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The permission values of 0315 (core.permissions.Permission); a later migration that adds
#: one rewrites the check constraint.
PERMISSIONS = (
    "campaigns:manage",
    "campaigns:send",
    "templates:manage",
    "contacts:manage",
    "contacts:export",
    "reports:view",
    "privacy:requests",
    "privacy:settings",
    "team:manage",
    "sending:manage",
    "account:settings",
    "account:own",
)


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_roles_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("account_id", "id", name=op.f("uq_roles_account_id_id")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_roles_account_id_name")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_roles_account_id"), "roles", ["account_id"], unique=False)
    op.create_table(
        "role_permissions",
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("permission", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "permission IN (" + ", ".join(f"'{p}'" for p in PERMISSIONS) + ")",
            name=op.f("ck_role_permissions_permission"),
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("fk_role_permissions_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("role_id", "permission", name=op.f("pk_role_permissions")),
    )
    with op.batch_alter_table(
        "memberships", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(sa.Column("role_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_memberships_role_id"), ["role_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_memberships_account_id_roles"),
            "roles",
            ["account_id", "role_id"],
            ["account_id", "id"],
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_memberships_role"),
            "(role = 'custom' AND role_id IS NOT NULL) OR "
            "(role IN ('owner', 'admin', 'member') AND role_id IS NULL)",
        )


def downgrade() -> None:
    # Members of an account's own roles fall back to the built-in member role.
    op.execute("UPDATE memberships SET role = 'member', role_id = NULL WHERE role = 'custom'")
    with op.batch_alter_table(
        "memberships", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_memberships_role"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_memberships_account_id_roles"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_memberships_role_id"))
        batch_op.drop_column("role_id")
    op.drop_table("role_permissions")
    op.drop_index(op.f("ix_roles_account_id"), table_name="roles")
    op.drop_table("roles")
