"""The registry of personal data is complete: every store answers every operation, every table
with a column that looks personal is in a store (or declared not personal, with a reason), and
every directory the app writes to belongs to a store."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from sqlalchemy import JSON, LargeBinary

import core.registry
from core.db import Base
from privacy import registry

#: Column names that look like personal data.
PERSONAL = re.compile(
    r"email|address|name|(^|_)ip(_|$)|phone|attributes|payload|proposed|content|detail|error"
    r"|prefix|url|reply_to"
)
ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ("report", "erase", "restrict", "delete_account")


def _tables() -> dict[str, list[str]]:
    core.registry.import_modules("models")
    found = {}
    for table in Base.metadata.sorted_tables:
        personal = [
            column.name
            for column in table.columns
            if PERSONAL.search(column.name) or isinstance(column.type, JSON | LargeBinary)
        ]
        if personal:
            found[table.name] = personal
    return found


def _registered_tables() -> dict[str, str]:
    return {table: store.name for store in registry.STORES for table in store.tables}


def _check_operation(store: registry.Store, what: str, operation: registry.Operation) -> None:
    if isinstance(operation, registry.Because):
        assert operation.reason.strip(), f"{store.name}.{what}: say why nothing is needed"
    else:
        assert callable(registry.resolve(operation)), f"{store.name}.{what}"


def test_every_store_answers_every_operation(app: Flask) -> None:
    names = [store.name for store in registry.STORES]
    assert len(names) == len(set(names))
    for store in registry.STORES:
        assert store.title and store.holds and store.found_by, store.name
        for what in OPERATIONS:
            _check_operation(store, what, getattr(store, what))
        _check_operation(store, "retention sweep", store.retention.sweep)
        with app.app_context():
            assert registry.retention_text(store).strip(), store.name


def test_an_operation_left_out_or_misnamed_fails_the_check(app: Flask) -> None:
    import dataclasses

    import pytest

    store = registry.STORES[0]
    broken = dataclasses.replace(store, erase="subscribers.personal_data:no_such_function")
    with pytest.raises(LookupError):
        _check_operation(broken, "erase", broken.erase)
    with pytest.raises(AssertionError):
        _check_operation(broken, "erase", registry.Because(" "))
    with pytest.raises(TypeError):  # a store cannot be built without an operation
        registry.Store(  # type: ignore[call-arg]
            name="x",
            title="x",
            holds="x",
            found_by="x",
            report="a:b",
            erase="a:b",
            restrict="a:b",
            retention=registry.Retention("x", "a:b"),
        )


def test_every_table_holding_personal_data_is_registered_or_declared_not_personal() -> None:
    registered = _registered_tables()
    unregistered = {
        table: columns
        for table, columns in _tables().items()
        if table not in registered and table not in registry.NOT_PERSONAL
    }
    assert unregistered == {}, "register these tables in privacy/registry.py"
    assert all(reason.strip() for reason in registry.NOT_PERSONAL.values())
    # No stale names: every table named in the registry exists.
    known = {table.name for table in Base.metadata.sorted_tables}
    assert set(registered) <= known and set(registry.NOT_PERSONAL) <= known
    assert not set(registered) & set(registry.NOT_PERSONAL)


def test_the_check_would_catch_a_new_personal_table() -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table

    metadata = MetaData()
    table = Table(
        "newsletter_guests", metadata, Column("id", Integer), Column("guest_email", String)
    )
    personal = [c.name for c in table.columns if PERSONAL.search(c.name)]
    assert personal == ["guest_email"]
    assert "newsletter_guests" not in _registered_tables()


#: Settings that name a place under the data directory, and what they hold if no store does.
NOT_A_STORE = {
    "DATABASE_URL": "the database: its tables are registered one by one",
    "SECRET_KEYS": "signing keys, no personal data",
    "ADDRESS_HASH_KEY": "the key of the address hashes, no personal data",
    "ENGINE_HASH_KEY": "the engine's own hash key, no personal data",
    "ENCRYPTION_KEYS": "the key that encrypts stored secrets, no personal data",
}


def test_every_directory_the_app_writes_to_belongs_to_a_store() -> None:
    """Every setting whose default lies under ``VAR_DIR`` (the data directory, as the settings
    declare it) names either a store's directory or something declared here as no personal
    data."""
    from core.settings import Settings, _extra

    under_var_dir = {
        name
        for name, info in Settings.model_fields.items()
        if "$VAR_DIR" in str(_extra(info).get("shown", ""))
    }
    directories = {d for store in registry.STORES for d in store.directories}
    assert {"MAILDIR_PATH", "IMPORT_DIR", "TRACKING_SPOOL_DIR"} <= under_var_dir
    unknown = under_var_dir - directories - set(NOT_A_STORE)
    assert unknown == set(), "register the store writing there in privacy/registry.py"
