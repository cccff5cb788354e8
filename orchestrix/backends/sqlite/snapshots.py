"""SQLite snapshot store: the latest snapshot per stream, in the store's file."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from orchestrix.backends._front import FrontSnapshotStore
from orchestrix.backends.sqlite._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    Database,
)
from orchestrix.backends.sqlite._ops import (
    load_snapshot,
    save_snapshot,
)

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrix.records import Snapshot


__all__ = ["SQLiteSnapshotStore"]


@final
class SQLiteSnapshotStore(FrontSnapshotStore):
    """Latest snapshot per stream, in a SQLite file (or in memory)."""

    def __init__(self, database: Database) -> None:
        """Wrap an open `Database`; use `SQLiteSnapshotStore.open` instead."""
        self._db = database

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> SQLiteSnapshotStore:
        """Open the database at *path* as a snapshot store.

        The options are those of `SQLiteEventStore.open`.

        Raises:
            ConfigurationError: A bad option.
            MissingDependencyError: Python was built without the sqlite3 module.
            BackendUnavailable: The file cannot be opened.
            SchemaVersionError: The file's schema is newer than this code.
        """
        db = await Database.open(
            path, synchronous=synchronous, busy_timeout=busy_timeout
        )
        return cls(db)

    async def _save(self, snapshot: Snapshot) -> None:
        await self._db.run(save_snapshot, snapshot)

    async def _load(self, stream_id: str) -> Snapshot | None:
        return await self._db.run(load_snapshot, stream_id)

    async def close(self) -> None:
        """Close the connection after the call in flight (see `SnapshotStore.close`)."""
        if not self._closed:
            self._closed = True
            await self._db.close()
