"""contacts.restricted_by: who restricted processing (the person or the account)

Revision ID: 0311
Revises: 0307
Create Date: 2026-12-02 16:10:00

A restriction the person asked for (GDPR art. 18) stays until the person lifts it; the account
may lift only the restrictions it set itself. Existing restrictions are attributed from the
request that set them: the account's when only a member's request restricted the contact, the
person's otherwise (the protective choice when nothing says).

The column and its check are added in one ``ALTER TABLE ... ADD COLUMN`` that SQLite and
PostgreSQL both accept, so the contacts table (AUTOINCREMENT on SQLite) is not rebuilt.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0311"
down_revision: str | Sequence[str] | None = "0315"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE contacts ADD COLUMN restricted_by VARCHAR(16) "
        "CONSTRAINT ck_contacts_restricted_by "
        "CHECK (restricted_by IS NULL OR restricted_by IN ('person', 'account'))"
    )
    op.execute(
        """
        UPDATE contacts SET restricted_by = CASE
          WHEN EXISTS (
            SELECT 1 FROM privacy_request_accounts ra
            JOIN privacy_requests r ON r.id = ra.request_id
            WHERE ra.contact_id = contacts.id AND r.kind = 'restrict'
              AND r.actor LIKE 'member:%'
          ) AND NOT EXISTS (
            SELECT 1 FROM privacy_request_accounts ra
            JOIN privacy_requests r ON r.id = ra.request_id
            WHERE ra.contact_id = contacts.id AND r.kind = 'restrict'
              AND r.actor NOT LIKE 'member:%'
          ) THEN 'account'
          ELSE 'person'
        END
        WHERE restricted_at IS NOT NULL
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("contacts", "restricted_by")
    else:
        op.execute("ALTER TABLE contacts DROP COLUMN restricted_by")
