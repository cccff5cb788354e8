"""The SQLite schema: created on first use, versioned, migrated forward safely."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from orchestrix import (
    BackendError,
    Event,
    SchemaVersionError,
    Snapshot,
    open_bus,
    open_checkpoint_store,
    open_snapshot_store,
    open_store,
)
from orchestrix.backends.sqlite import _connection as _sqlite_conn
from orchestrix.backends.sqlite._schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    migrate,
    read_schema_version,
)
from orchestrix.codec import encode

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, kw_only=True, slots=True)
class Noted(Event, type="tests.sqlite.schema.noted"):
    text: str


def _version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as raw:
        return read_schema_version(raw)


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as raw:
        rows = raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def _dump(path: Path) -> tuple[str, list[str]]:
    with closing(sqlite3.connect(path)) as raw:
        mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
        return mode, list(raw.iterdump())


def _version_1_database(path: Path) -> Noted:
    """Write a database as the first schema version left it, holding one event."""
    event = Noted(text="written by schema version 1")
    record = encode(event)
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        migrate(raw, MIGRATIONS[:1])
        raw.execute(
            "INSERT INTO orchestrix_events (position, stream_id, version, event_id, "
            "type, schema_version, payload, recorded_at) VALUES (1, 'old', 1, ?, ?, ?, "
            "?, '2026-01-01T00:00:00.000000+00:00')",
            tuple(record),
        )
    return event


async def test_schema_is_created_on_first_use(tmp_path: Path) -> None:
    """Opening a new file creates every table and records the current version."""
    path = tmp_path / "new.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    assert _version(path) == SCHEMA_VERSION
    assert {
        "orchestrix_schema",
        "orchestrix_events",
        "orchestrix_snapshots",
        "orchestrix_bus_messages",
        "orchestrix_bus_deliveries",
        "orchestrix_bus_subscriptions",
        "orchestrix_checkpoints",
    } <= _tables(path)
    assert _dump(path)[0] == "wal"


async def test_old_schema_is_migrated_forward_keeping_data(tmp_path: Path) -> None:
    """A version 1 database is upgraded on open; its events stay readable."""
    path = tmp_path / "old.db"
    event = _version_1_database(path)
    assert _version(path) == 1
    async with open_store(f"sqlite:///{path}") as store:
        recorded = [r async for r in store.read("old")]
    assert _version(path) == SCHEMA_VERSION
    assert [r.event for r in recorded] == [event]
    assert "orchestrix_bus_deliveries" in _tables(path)


async def test_version_3_gains_the_checkpoint_table_keeping_data(
    tmp_path: Path,
) -> None:
    """A version 3 file opened for checkpoints gains the table; old rows stay."""
    path = tmp_path / "v3.db"
    event = _version_1_database(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        migrate(raw, MIGRATIONS[:3])
        raw.execute(
            "INSERT INTO orchestrix_snapshots (stream_id, version, aggregate_type, "
            "schema_version, state, saved_at) VALUES ('old', 1, 'Account', 1, ?, "
            "'2026-01-01T00:00:00.000000+00:00')",
            (b"state",),
        )
    assert _version(path) == 3
    assert "orchestrix_checkpoints" not in _tables(path)
    url = f"sqlite:///{path}"
    async with open_checkpoint_store(url) as checkpoints:
        assert await checkpoints.load_all() == {}
        await checkpoints.save("projection", 1)
    assert _version(path) == SCHEMA_VERSION
    assert "orchestrix_checkpoints" in _tables(path)
    async with open_store(url) as store, open_snapshot_store(url) as snapshots:
        assert [r.event async for r in store.read("old")] == [event]
        assert await snapshots.load("old") == Snapshot("old", 1, "Account", 1, b"state")
    async with open_checkpoint_store(url) as checkpoints:
        assert await checkpoints.load("projection") == 1


async def test_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration step that fails rolls back every step before it, too."""
    path = tmp_path / "old.db"
    _version_1_database(path)
    broken = (*MIGRATIONS, ("CREATE TABLE orchestrix_extra (x)", "NOT SQL AT ALL"))
    monkeypatch.setattr(
        _sqlite_conn, "migrate", functools.partial(migrate, migrations=broken)
    )
    with pytest.raises(BackendError, match="syntax error"):
        await open_store(f"sqlite:///{path}")
    assert _version(path) == 1
    tables = _tables(path)
    assert "orchestrix_bus_deliveries" not in tables
    assert "orchestrix_extra" not in tables


async def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    """A schema newer than the code raises SchemaVersionError and changes nothing."""
    path = tmp_path / "future.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        migrate(raw)
        raw.execute("UPDATE orchestrix_schema SET version = ?", (SCHEMA_VERSION + 1,))
    before = _dump(path)
    assert before[0] == "delete"  # opening must not even switch it to WAL
    for opener in (open_store, open_snapshot_store, open_checkpoint_store, open_bus):
        with pytest.raises(SchemaVersionError, match="upgrade orchestrix"):
            await opener(f"sqlite:///{path}")
    assert _dump(path) == before


async def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    """Many connections opening a new file at once all succeed on one schema."""
    url = f"sqlite:///{tmp_path}/race.db"
    stores = await asyncio.gather(*(open_store(url) for _ in range(8)))
    try:
        for index, store in enumerate(stores):
            await store.append(f"s{index}", [Noted(text="hi")])
    finally:
        for store in stores:
            await store.close()
    assert _version(tmp_path / "race.db") == SCHEMA_VERSION
