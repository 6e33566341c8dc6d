"""Fixtures: app, db, client, a real SMTP sink on loopback, the broker (in-process or Redis).

The database backend is chosen with ``--db=sqlite|postgresql`` (or TEST_DATABASE). Each test
run gets its own database, built by the Alembic migrations (so every run tests them too), and
each test starts from empty tables.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.serving import make_server

from core import db as core_db
from core.app import create_app
from core.db import Base
from core.mail import close_pools
from core.migrate import upgrade
from tests import services_available
from tests.smtp_sink import SMTPSink

TEST_KEYS = ["old-test-key-0123456789abcdef", "current-test-key-0123456789abcdef"]
#: Fernet keys of the secrets at rest (core/secrets.py): the first encrypts, all decrypt.
TEST_ENCRYPTION_KEYS = [
    "DUFBvTH0uOLn-DmPYBAiZGJdW9uUvaf2zszEuVD9uXw=",
    "TrPSP4qExhTIy2oTclacuIh-FOAEPlZMbz1R7OBKW-A=",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("TEST_DATABASE", "sqlite"),
        choices=["sqlite", "postgresql"],
        help="database backend for the app fixture",
    )
    parser.addoption(
        "--backend-dependent-only",
        action="store_true",
        help="run only the tests that use the database backend (database_url or db_backend):"
        " the others behave the same on either, and scripts/test runs them on SQLite",
    )


#: Fixtures through which a test sees the backend --db names.
BACKEND_FIXTURES = frozenset({"database_url", "db_backend"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --backend-dependent-only, deselect the tests no backend fixture reaches."""
    if not config.getoption("--backend-dependent-only"):
        return
    independent = [
        item for item in items if not BACKEND_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if independent:
        config.hook.pytest_deselected(items=independent)
        dropped = set(independent)
        items[:] = [item for item in items if item not in dropped]


def _create_postgres_database() -> tuple[str, str]:
    name = f"envoy_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(services_available.POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = services_available.POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def _drop_postgres_database(name: str) -> None:
    with psycopg.connect(services_available.POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: argon2id at its lightest (one pass over 8 KiB): the same code paths as production's profile
#: at a thousandth of the cost. At production's 0.16 s per hash or check, the two to four a
#: typical test makes (a sign-up, a member, a login) cost minutes of CPU per run.
#: tests/test_password_hashing.py checks the production profile itself.
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashes() -> Iterator[None]:
    """Passwords and recovery codes hashed with QUICK_HASHER for the whole run."""
    from accounts import services, twofactor

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "_hasher", QUICK_HASHER)
        patch.setattr(twofactor, "_code_hasher", QUICK_HASHER)
        yield


class BuilderCachingRule(Rule):
    """A URL rule that reuses the URL builder an identical rule compiled before.

    Every test builds its own app, and werkzeug compiles two builder functions per rule with
    ``ast`` and ``compile`` (about 0.12 s for the app's 200 rules, 60 % of ``create_app``). A
    builder's code depends only on the key below; converters are read from the rule it is
    bound to at call time, so a cached one builds exactly what a new one would.
    """

    _builders: ClassVar[dict[tuple[Any, ...], Any]] = {}

    def _compile_builder(self, append_unknown: bool = True) -> Any:
        defaults = repr(sorted((self.defaults or {}).items()))
        key = (self.rule, tuple(self._trace), defaults, append_unknown)
        builder = self._builders.get(key)
        if builder is None:
            builder = self._builders[key] = super()._compile_builder(append_unknown)
        return builder


@pytest.fixture(scope="session", autouse=True)
def cached_url_builders() -> Iterator[None]:
    """Apps built in tests compile each distinct URL rule's builders once per process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Flask, "url_rule_class", BuilderCachingRule)
        yield


@pytest.fixture(scope="session")
def db_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.config.getoption("--db")
    return backend


@pytest.fixture(scope="session")
def database_url(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this test run."""
    if db_backend == "postgresql":
        services_available.require("postgres")
        name, url = _create_postgres_database()
        try:
            upgrade(url)
            yield url
        finally:
            _drop_postgres_database(name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def redis_namespace() -> Iterator[str]:
    namespace = f"envoy-test-{os.getpid()}-{secrets.token_hex(3)}"
    yield namespace
    try:
        import redis

        client = redis.Redis.from_url(services_available.REDIS_URL)
        keys = list(client.scan_iter(f"{namespace}*"))
        if keys:
            client.delete(*keys)
    except Exception:  # noqa: S110 - cleanup of a service that may be absent
        pass


def make_app(database_url: str, smtp_sink: SMTPSink, tmp_path: Any, **overrides: Any) -> Flask:
    """An app for tests: the run's database, the SMTP sink, fixed keys, no CSRF unless asked."""
    config: dict[str, Any] = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SMTP_URL": smtp_sink.url,
        "SECRET_KEYS": list(TEST_KEYS),
        "ENCRYPTION_KEYS": list(TEST_ENCRYPTION_KEYS),
        "ADDRESS_HASH_KEY": "test-address-hash-key",
        "BASE_URL": "http://localhost",
        "WTF_CSRF_ENABLED": False,
        "MAILDIR_PATH": str(tmp_path / "outbox"),
        # Each test's own spool: hits one run spooled at exit never reach another run's store.
        "TRACKING_SPOOL_DIR": str(tmp_path / "spool"),
        "MEDIA_DIR": str(tmp_path / "media"),
        "REDIS_URL": "",
        "SEND_BATCH_SIZE": 50,
        # Sender verification is tested in tests/campaigns; other flows send from any address.
        "REQUIRE_VERIFIED_SENDER": False,
        # The public forms' bot check is tested in tests/test_botcheck.py with its real costs;
        # elsewhere it is solved at once (SolvingClient, or the page's script in a browser).
        "BOT_CHALLENGE_DIFFICULTY": 0,
        "BOT_CHALLENGE_MIN_SECONDS": 0,
        "PUBLIC_FORM_LIMITS": "1000/minute",
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = SolvingClient
    return app


def solve_challenge(token: str, difficulty: int) -> str:
    """What core/static/botcheck-worker.js finds: the first n whose sha256("<token>:<n>") has
    ``difficulty`` leading zero bits."""
    from core.botcheck import leading_zero_bits

    n = 0
    while leading_zero_bits(token, str(n)) < difficulty:
        n += 1
    return str(n)


def bot_checked_form(path: str) -> str | None:
    """The bot-check name of the public form at ``path``, if it is one."""
    if path in ("/signup", "/privacy/request"):
        return "signup" if path == "/signup" else "data-request"
    parts = path.split("?")[0].strip("/").split("/")
    if len(parts) == 2 and parts[0] == "subscribe" and parts[1] != "confirm":
        return "list-signup"
    return None


class SolvingClient(FlaskClient):
    """The test client, sending with each POST of a public form a solved bot challenge (as a
    browser running core/static/botcheck.js does), unless the data carries its own
    ``bot_challenge`` field (the bot-check tests)."""

    def post(self, *args: Any, **kwargs: Any) -> Any:
        form = bot_checked_form(str(args[0])) if args and isinstance(args[0], str) else None
        data = kwargs.get("data")
        if form is not None and isinstance(data, dict) and "bot_challenge" not in data:
            from core.botcheck import challenge

            with self.application.app_context():
                token = challenge(form)
                difficulty = int(self.application.config["BOT_CHALLENGE_DIFFICULTY"])
            kwargs["data"] = {
                **data,
                "bot_challenge": token,
                "bot_solution": solve_challenge(token, difficulty),
            }
        return super().post(*args, **kwargs)


#: Restarts every sequence a test moved, as TRUNCATE ... RESTART IDENTITY would.
_RESTART_USED_SEQUENCES = (
    "SELECT setval((quote_ident(schemaname) || '.' || quote_ident(sequencename))::regclass,"
    " 1, false) FROM pg_sequences WHERE last_value IS NOT NULL"
)


def _empty_tables(app: Flask) -> None:
    """Delete every row (children first) and restart the ids, so the next test starts afresh.

    DELETE, not TRUNCATE, on PostgreSQL too: a test leaves a few rows, and TRUNCATE of every
    table gives each a new file (about 0.25 s a test, a minute a run); DELETE of an empty table
    costs next to nothing. On PostgreSQL all statements go in one round trip.
    """
    engine = app.extensions["db_engine"]
    # Table names from the metadata, not from input.
    deletes = [f"DELETE FROM {t.name}" for t in reversed(Base.metadata.sorted_tables)]  # noqa: S608
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("; ".join([*deletes, _RESTART_USED_SEQUENCES]))
        else:
            for delete in deletes:
                conn.exec_driver_sql(delete)


@pytest.fixture
def app_factory(
    database_url: str, smtp_sink: SMTPSink, tmp_path: Any, redis_namespace: str
) -> Iterator[Any]:
    """Build apps with overrides; ``broker="redis"`` gives one on the real Redis."""
    built: list[Flask] = []

    def build(broker: str = "inprocess", **overrides: Any) -> Flask:
        if broker == "redis":
            services_available.require("redis")
            overrides.setdefault("REDIS_URL", services_available.REDIS_URL)
            overrides.setdefault("REDIS_NAMESPACE", redis_namespace)
        app = make_app(database_url, smtp_sink, tmp_path, **overrides)
        built.append(app)
        return app

    smtp_sink.clear()
    close_pools()  # a pooled session keeps the extensions the sink offered when it opened
    yield build
    close_pools()
    for app in built:
        app.extensions["queue"].stop()
        with app.app_context():
            core_db.session.remove()
    if built:
        _empty_tables(built[0])
    for app in built:
        app.extensions["db_engine"].dispose()
    smtp_sink.clear()


@pytest.fixture
def app(app_factory: Any) -> Flask:
    built: Flask = app_factory()
    return built


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    """The session of an app context, for tests that call services directly."""
    with app.app_context():
        yield core_db.session
        core_db.session.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def drain(app: Flask) -> None:
    """Run every queued job (and the jobs they enqueue) to completion."""
    app.extensions["queue"].drain()


class LiveServer:
    """The app served on a free loopback port in a thread (browser tests, the API fuzzer)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(app_factory: Any) -> Iterator[LiveServer]:
    """The real app (CSRF on) with its in-process worker, served on loopback."""
    app = app_factory(WTF_CSRF_ENABLED=True, BASE_URL="http://127.0.0.1:0")
    server = LiveServer(app)
    app.config["BASE_URL"] = server.url
    app.extensions["queue"].start_worker()
    server.start()
    yield server
    server.stop()
