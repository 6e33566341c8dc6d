"""encrypt secrets at rest: SMTP server URLs and DKIM private keys

Revision ID: 0318
Revises: 0307
Create Date: 2026-12-02 16:50:00

SMTP server URLs (with their passwords) and DKIM private keys were stored in clear text. The
columns keep their type (text) and now hold Fernet tokens made with ENCRYPTION_KEYS, read the
way the app reads them (core.settings.load_config: the environment, or on the embedded default
the key file of the data directory). The keys are only loaded when a row is there to encrypt.
Downgrading writes the clear text back.
"""

from collections.abc import Sequence

from alembic import op
from cryptography.fernet import MultiFernet

revision: str = "0318"
down_revision: str | Sequence[str] | None = "0311"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("smtp_servers", "url"),
    ("dkim_keys", "private_key_pem"),
    ("totp_credentials", "secret_base32"),
    ("sso_providers", "client_secret"),
)


def _has_rows() -> bool:
    bind = op.get_bind()
    return any(
        bind.exec_driver_sql(f"SELECT 1 FROM {t} WHERE {c} IS NOT NULL LIMIT 1").first()  # noqa: S608
        for t, c in COLUMNS
    )


def _keys() -> MultiFernet:
    from core.secrets import make_fernet
    from core.settings import load_config

    return make_fernet(load_config()["ENCRYPTION_KEYS"])


def upgrade() -> None:
    if not _has_rows():
        return
    from core.secrets import reencrypt_column

    keys = _keys()
    for table, column in COLUMNS:
        reencrypt_column(op.get_bind(), table, column, keys)


def downgrade() -> None:
    if not _has_rows():
        return
    from sqlalchemy import bindparam, column, select, table

    from core.secrets import is_token

    keys = _keys()
    bind = op.get_bind()
    for table_name, column_name in COLUMNS:
        tbl = table(table_name, column("id"), column(column_name))
        rows = bind.execute(select(tbl.c.id, tbl.c[column_name])).all()
        clear = [
            {"row_id": row_id, "v": keys.decrypt(raw.encode()).decode()}
            for row_id, raw in rows
            if raw is not None and is_token(raw)
        ]
        if clear:
            bind.execute(
                tbl.update()
                .where(tbl.c.id == bindparam("row_id"))
                .values({column_name: bindparam("v")}),
                clear,
            )
