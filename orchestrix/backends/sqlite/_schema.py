"""The SQLite schema, its version, and forward migrations (ADR 0013).

The schema version lives in the one-row table ``orchestrix_schema`` rather
than ``PRAGMA user_version``, which belongs to whoever owns the file and may
share it with the application's own tables. Migration *N* turns a version
*N - 1* schema into version *N*; `migrate` applies the missing ones in a single
``BEGIN IMMEDIATE`` transaction, so concurrent openers serialise and a failing
step leaves the database as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from orchestrix.errors import SchemaVersionError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "read_schema_version"]

_V1_EVENT_STORE: Final = (
    # position is the rowid: SQLite gives max(rowid) + 1 without AUTOINCREMENT,
    # and orchestrix assigns it explicitly inside the write transaction, so a
    # rolled-back append never consumes a number (ADR 0014).
    """
    CREATE TABLE orchestrix_events (
        position INTEGER PRIMARY KEY,
        stream_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        payload BLOB NOT NULL,
        recorded_at TEXT NOT NULL,
        CONSTRAINT orchestrix_events_stream_version UNIQUE (stream_id, version),
        CONSTRAINT orchestrix_events_event_id UNIQUE (event_id)
    )
    """,
    """
    CREATE TABLE orchestrix_snapshots (
        stream_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        aggregate_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        state BLOB NOT NULL,
        saved_at TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)

_V2_DURABLE_BUS: Final = (
    """
    CREATE TABLE orchestrix_bus_messages (
        seq INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        payload BLOB NOT NULL,
        published_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE orchestrix_bus_subscriptions (
        type_name TEXT NOT NULL,
        group_name TEXT NOT NULL,
        registered_at TEXT NOT NULL,
        PRIMARY KEY (type_name, group_name)
    ) WITHOUT ROWID
    """,
    # One row per (group, message) still to be handled; dead = 1 marks a dead
    # letter. available_at is Unix time: when the delivery may be claimed.
    """
    CREATE TABLE orchestrix_bus_deliveries (
        group_name TEXT NOT NULL,
        message_seq INTEGER NOT NULL,
        available_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease TEXT,
        dead INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        failed_at TEXT,
        PRIMARY KEY (group_name, message_seq)
    ) WITHOUT ROWID
    """,
    """
    CREATE INDEX orchestrix_bus_deliveries_due
        ON orchestrix_bus_deliveries (group_name, available_at) WHERE dead = 0
    """,
    """
    CREATE INDEX orchestrix_bus_deliveries_dead
        ON orchestrix_bus_deliveries (failed_at) WHERE dead = 1
    """,
)

# The type names a bus message is delivered under, as a JSON array, so that a
# consumer claims only what its local handlers take (ADR 0033). Messages
# stored before have NULL and are taken by any consumer of their group.
_V3_BUS_TYPE_NAMES: Final = (
    "ALTER TABLE orchestrix_bus_messages ADD COLUMN type_names TEXT",
)

# The position each subscriber has handled up to, under its name
# (`orchestrix.protocols.CheckpointStore`), beside the events it points into.
_V4_CHECKPOINTS: Final = (
    """
    CREATE TABLE orchestrix_checkpoints (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)

#: Migration N (index N - 1) upgrades a version N - 1 schema to version N.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    _V1_EVENT_STORE,
    _V2_DURABLE_BUS,
    _V3_BUS_TYPE_NAMES,
    _V4_CHECKPOINTS,
)
#: The schema version this code writes and reads.
SCHEMA_VERSION: Final = len(MIGRATIONS)


def read_schema_version(
    raw: sqlite3.Connection, *, strict: bool = False, known: int = SCHEMA_VERSION
) -> int:
    """Return the database's schema version (0 for a database without one).

    Raises:
        SchemaVersionError: With *strict*, if the version is newer than *known*.
    """
    exists = raw.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        ("orchestrix_schema",),
    ).fetchone()
    version = 0
    if exists is not None:
        row = raw.execute("SELECT version FROM orchestrix_schema").fetchone()
        version = 0 if row is None else int(row[0])
    if strict and version > known:
        msg = (
            f"this SQLite database has orchestrix schema version {version}, newer "
            f"than the version {known} this orchestrix knows; upgrade orchestrix "
            f"(the database was not changed)"
        )
        raise SchemaVersionError(msg)
    return version


def migrate(
    raw: sqlite3.Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS
) -> int:
    """Bring the schema up to ``len(migrations)``; return the version before.

    All missing steps run in one write transaction: either every step and
    the new version are committed, or nothing is.

    Raises:
        SchemaVersionError: The schema is newer than *migrations* reach.
    """
    target = len(migrations)
    before = read_schema_version(raw, strict=True, known=target)
    if before == target:
        return before
    raw.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while this one waited for the lock.
        before = read_schema_version(raw, strict=True, known=target)
        raw.execute(
            "CREATE TABLE IF NOT EXISTS orchestrix_schema ("
            "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
        )
        for step in migrations[before:]:
            for statement in step:
                raw.execute(statement)
        raw.execute(
            "INSERT INTO orchestrix_schema (id, version) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            (target,),
        )
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
    return before
