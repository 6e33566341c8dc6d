"""SMTP server URLs (with their passwords) and DKIM private keys are stored encrypted with
ENCRYPTION_KEYS, rotate to a new key, fail at start with a clear message when the key is lost,
and are shown masked; migration 0318 encrypts what older versions stored in clear text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from campaigns import senders, services
from core import db as core_db
from core.app import create_app
from core.mail import generate_dkim_key
from core.migrate import upgrade
from core.secrets import SecretsKeyError
from tests.campaigns.helpers import campaign_with
from tests.conftest import (
    TEST_ENCRYPTION_KEYS,
    _create_postgres_database,
    _drop_postgres_database,
    drain,
)
from tests.factories import login
from tests.smtp_sink import SMTPSink

# The authenticating sink listens on loopback only; aiosmtpd warns of AUTH without TLS.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

PASSWORD = "s3cret-Passw0rd"
NEW_KEY = "6Ok0a6Hq3q4b2rXIyfG6b0nC2QnE0q3d8cHcS5Qx3Kk="


def _raw(db: Any, sql: str) -> list[str]:
    return [row[0] for row in db.execute(text(sql)).all()]


@pytest.fixture
def auth_sink() -> Iterator[SMTPSink]:
    sink = SMTPSink(credentials=("mailer", PASSWORD)).start()
    yield sink
    sink.stop()


def _campaign_through(sink: SMTPSink) -> Any:
    """A campaign to zoe@example.org, sent through ``sink`` (user and password) and signed
    with a DKIM key of shop.example."""
    setup = campaign_with(["zoe@example.org"])
    senders.save_smtp_server(
        setup.tenant.account_id,
        name="Auth",
        url=f"smtp://mailer:{PASSWORD}@127.0.0.1:{sink.port}?starttls=0",
        max_per_second=0,
        max_connections=1,
    )
    senders.create_dkim_key(setup.tenant.account_id, "shop.example")
    return setup


def test_the_database_holds_no_password_and_no_private_key(app: Any, db: Any) -> None:
    setup = campaign_with([])
    url = "smtp://mailer:hunter2-clear@smtp.shop.example:587"
    senders.save_smtp_server(
        setup.tenant.account_id, name="Main", url=url, max_per_second=0, max_connections=1
    )
    key = senders.create_dkim_key(setup.tenant.account_id, "shop.example")
    pem = key.private_key_pem

    [raw_url] = _raw(db, "SELECT url FROM smtp_servers")
    [raw_key] = _raw(db, "SELECT private_key_pem FROM dkim_keys")
    for raw in (raw_url, raw_key):
        assert raw.startswith("gAAAAA")
        assert "hunter2" not in raw and "mailer" not in raw and "PRIVATE KEY" not in raw
    # The first key encrypted them; callers see the clear values.
    assert Fernet(TEST_ENCRYPTION_KEYS[0]).decrypt(raw_url.encode()).decode() == url
    db.expire_all()
    from campaigns import queries

    assert [s.url for s in queries.smtp_servers(setup.tenant.account_id)] == [url]
    assert [k.private_key_pem for k in queries.dkim_keys(setup.tenant.account_id)] == [pem]


def test_the_sending_page_shows_the_url_masked_and_only_the_public_dkim_record(
    app: Any, client: Any
) -> None:
    with app.app_context():
        setup = campaign_with([])
        senders.save_smtp_server(
            setup.tenant.account_id,
            name="Main",
            url="smtp://mailer:hunter2-clear@smtp.shop.example:587?timeout=5",
            max_per_second=0,
            max_connections=1,
        )
        key = senders.create_dkim_key(setup.tenant.account_id, "shop.example")
        record = senders.dkim_record(key)
        pem_line = key.private_key_pem.splitlines()[1]
    login(client, setup.tenant.email)
    page = client.get("/sending").get_data(as_text=True)
    assert "smtp://mailer:••••@smtp.shop.example:587" in page
    assert "hunter2" not in page and "timeout=5" not in page
    assert record in page and pem_line not in page and "PRIVATE KEY" not in page


def test_a_campaign_goes_out_through_an_encrypted_server_with_its_password(
    app: Any, db: Any, auth_sink: SMTPSink, smtp_sink: SMTPSink
) -> None:
    setup = _campaign_through(auth_sink)
    assert PASSWORD not in "".join(_raw(db, "SELECT url FROM smtp_servers"))
    services.start(setup.tenant.account_id, setup.campaign_id)
    drain(app)
    [received] = auth_sink.wait_for(1)
    assert received.recipients == ["zoe@example.org"]
    assert b"DKIM-Signature:" in received.data  # signed with the decrypted private key
    assert smtp_sink.messages == []  # not through the platform's own server


def test_rotation_re_encrypts_every_secret_with_the_new_key(
    app_factory: Any, auth_sink: SMTPSink
) -> None:
    old_key = TEST_ENCRYPTION_KEYS[0]
    before = app_factory(ENCRYPTION_KEYS=[old_key])
    with before.app_context():
        setup = _campaign_through(auth_sink)
        raw_before = _raw(core_db.session, "SELECT url FROM smtp_servers")

    rotating = app_factory(ENCRYPTION_KEYS=[NEW_KEY, old_key])
    result = rotating.test_cli_runner().invoke(args=["rotate-secrets"])
    assert result.exit_code == 0, result.output
    assert "smtp_servers.url: 1 re-encrypted" in result.output
    assert "dkim_keys.private_key_pem: 1 re-encrypted" in result.output

    # The old key is retired: the new one alone reads everything and sends.
    after = app_factory(ENCRYPTION_KEYS=[NEW_KEY])
    with after.app_context():
        raw_after = _raw(core_db.session, "SELECT url FROM smtp_servers")
        assert raw_after != raw_before
        Fernet(NEW_KEY).decrypt(raw_after[0].encode())
        services.start(setup.tenant.account_id, setup.campaign_id)
    drain(after)
    [received] = auth_sink.wait_for(1)
    assert b"DKIM-Signature:" in received.data
    # ...and the old key alone no longer starts the app.
    with pytest.raises(SecretsKeyError, match="ENCRYPTION_KEYS cannot decrypt"):
        app_factory(ENCRYPTION_KEYS=[old_key])


def test_a_wrong_or_malformed_key_stops_the_app_at_start_with_what_to_do(
    app_factory: Any,
) -> None:
    with app_factory().app_context():
        setup = campaign_with([])
        senders.create_dkim_key(setup.tenant.account_id, "shop.example")
    with pytest.raises(SecretsKeyError) as wrong:
        app_factory(ENCRYPTION_KEYS=[Fernet.generate_key().decode()])
    message = str(wrong.value)
    assert "ENCRYPTION_KEYS cannot decrypt dkim_keys.private_key_pem" in message
    assert "Put that key back in ENCRYPTION_KEYS" in message
    with pytest.raises(SecretsKeyError, match="key 2 of 2 is not a Fernet key"):
        app_factory(ENCRYPTION_KEYS=[TEST_ENCRYPTION_KEYS[0], "not-a-key"])


@pytest.fixture
def scratch_database(db_backend: str, tmp_path: Any) -> Iterator[str]:
    """An empty database of the run's backend, for migrating step by step."""
    if db_backend == "postgresql":
        name, url = _create_postgres_database()
        yield url
        _drop_postgres_database(name)
    else:
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"


def test_the_migration_encrypts_clear_text_secrets_with_the_apps_key(
    scratch_database: str, monkeypatch: pytest.MonkeyPatch, smtp_sink: SMTPSink, tmp_path: Any
) -> None:
    upgrade(scratch_database, "0307")
    pem, _record = generate_dkim_key(1024)
    url = "smtp://mailer:hunter2-clear@smtp.shop.example:587"
    engine = create_engine(scratch_database.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, postal_address, created_at, "
                "individual_tracking, ip_handling, event_retention_days, engine_participation, "
                "last_activity_at) VALUES (1, 'Shop', '1 Rd', '2026-01-01', true, 'reduce', 90, "
                "true, '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO smtp_servers (account_id, name, url, max_per_second, "
                "max_connections, enabled, created_at) VALUES (1, 'Main', :u, 0, 1, true, "
                "'2026-01-01')"
            ),
            {"u": url},
        )
        conn.execute(
            text(
                "INSERT INTO dkim_keys (account_id, domain, selector, private_key_pem, "
                "created_at) VALUES (1, 'shop.example', 'envoy', :p, '2026-01-01')"
            ),
            {"p": pem},
        )
    # The migration reads the key as the app does: from the environment here.
    monkeypatch.setenv("ENCRYPTION_KEYS", ",".join(TEST_ENCRYPTION_KEYS))
    upgrade(scratch_database)
    with engine.connect() as conn:
        raw_url = conn.scalar(text("SELECT url FROM smtp_servers"))
        raw_pem = conn.scalar(text("SELECT private_key_pem FROM dkim_keys"))
    engine.dispose()
    assert raw_url.startswith("gAAAAA") and "hunter2" not in raw_url
    assert raw_pem.startswith("gAAAAA") and "PRIVATE KEY" not in raw_pem

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": scratch_database,
            "SECRET_KEYS": ["k" * 32],
            "ADDRESS_HASH_KEY": "test-address-hash-key",
            "MAILDIR_PATH": str(tmp_path / "outbox"),
        }
    )
    try:
        with app.app_context():
            from campaigns import queries

            assert [s.url for s in queries.smtp_servers(1)] == [url]
            assert [k.private_key_pem for k in queries.dkim_keys(1)] == [pem]
            core_db.session.remove()
    finally:
        app.extensions["db_engine"].dispose()
