"""Database plumbing: the declarative base, the engine, and one session per app context.

A web request and a worker message each run inside an app context; each context gets its own
session, removed when the context ends. The same code therefore works in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from flask import Flask, current_app
from flask.globals import app_ctx
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every table, with a constraint naming convention for Alembic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def dialect_only_indexes() -> set[str]:
    """Names of the indexes a model declares for one database only (``Index(...).ddl_if(
    dialect="postgresql")``, e.g. trigram indexes SQLite has no kind of). Their migrations
    create them where the database supports them; :func:`compare_with_models` leaves them out
    of the models-versus-migrations comparison, which cannot read ``ddl_if``."""
    return {
        str(index.name)
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index._ddl_if is not None and index._ddl_if.dialect is not None
    }


def compare_with_models(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object``: every object but the :func:`dialect_only_indexes`."""
    return not (type_ == "index" and name in dialect_only_indexes())


def status_type(enum_type: type[StrEnum], name: str = "status") -> SqlEnum:
    """A column type for one of ``enum_type``'s values: stored as its text value (VARCHAR(16),
    no native enum, so a new value needs no ALTER TYPE) and checked by the database with a CHECK
    constraint named ``ck_<table>_<name>`` (``ck_<table>_status`` by default).
    Rows read back as enum members; binding a value that is not a member raises
    ``LookupError`` before anything reaches the database."""
    return SqlEnum(
        enum_type,
        native_enum=False,
        length=16,
        create_constraint=True,
        name=name,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def utcnow() -> datetime:
    """The current time as a naive UTC datetime (the form stored in every table)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(value: datetime | None) -> str | None:
    """A stored time as an ISO string to the second (reports and exports), or None."""
    return value.isoformat(timespec="seconds") if value else None


def _app_context_id() -> int:
    return id(app_ctx._get_current_object())  # type: ignore[attr-defined]


def _new_session() -> Session:
    return Session(bind=current_app.extensions["db_engine"], expire_on_commit=False)


#: The session of the current app context (request or worker message).
session: scoped_session[Session] = scoped_session(_new_session, scopefunc=_app_context_id)  # type: ignore[arg-type]


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys so it behaves like the server.

    Statement parameters (addresses, names) never appear in an error's text or in the engine's
    log: ``hide_parameters`` is always on.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # SQLite's lower() folds ASCII only; searches use this one (core.sqltext.folded).
            dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def init_app(app: Flask) -> None:
    """Attach the engine to ``app`` and remove each context's session when it ends."""
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    app.extensions["db_engine"] = make_engine(url)

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        session.remove()


@contextmanager
def transaction() -> Iterator[Session]:
    """Commit the current session on success, roll back on error."""
    try:
        yield session()
        session.commit()
    except BaseException:
        session.rollback()
        raise


#: PostgreSQL settings for one large aggregate (a count over a million rows): JIT compiling
#: costs more than it saves on it, and its hash join of a million ids fits in 64 MB instead of
#: spilling in batches with the 4 MB default.
LARGE_AGGREGATE_SETTINGS = {"jit": "off", "work_mem": "64MB"}


@contextmanager
def postgres_settings(settings: dict[str, str]) -> Iterator[None]:
    """Within the block, these PostgreSQL settings for the current transaction only; the
    session's own values again afterwards. Nothing on other databases."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    set_local = text("SELECT set_config(:name, :value, true)")
    before = {
        name: session.scalar(text("SELECT current_setting(:name)"), {"name": name})
        for name in settings
    }
    for name, value in settings.items():
        session.execute(set_local, {"name": name, "value": value})
    # On an error they stay until the transaction ends: the request or job is over then.
    yield
    for name, value in before.items():
        session.execute(set_local, {"name": name, "value": value})


def rowcount(result: Any) -> int:
    """How many rows an UPDATE or DELETE touched (``Session.execute`` is typed as a plain
    ``Result``, which does not declare ``rowcount``)."""
    return int(result.rowcount)
