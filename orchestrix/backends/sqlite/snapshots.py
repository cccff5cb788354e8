"""SQLite snapshot store: the latest snapshot per stream, in the store's file."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from orchestrix._utils import (
    AsyncResource,
    check_stream_id,
)
from orchestrix.backends.sqlite._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    Database,
)
from orchestrix.backends.sqlite._ops import (
    load_snapshot,
    save_snapshot,
)
from orchestrix.errors import InvalidArgumentError
from orchestrix.protocols import SnapshotStore

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrix.records import Snapshot


__all__ = ["SQLiteSnapshotStore"]


@final
class SQLiteSnapshotStore(AsyncResource, SnapshotStore):
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
            MissingDependencyError: aiosqlite is not installed.
            BackendUnavailable: The file cannot be opened.
            SchemaVersionError: The file's schema is newer than this code.
        """
        db = await Database.open(
            path, synchronous=synchronous, busy_timeout=busy_timeout
        )
        return cls(db)

    async def save(self, snapshot: Snapshot) -> None:
        """Keep *snapshot* unless a newer one is stored (see `SnapshotStore.save`)."""
        self._check_open()
        check_stream_id(snapshot.stream_id)
        version = snapshot.version
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            msg = f"snapshot version must be an int >= 1, got {version!r}"
            raise InvalidArgumentError(msg)
        await self._db.run(save_snapshot, snapshot)

    async def load(self, stream_id: str) -> Snapshot | None:
        """Return the stream's latest snapshot, or None."""
        self._check_open()
        return await self._db.run(load_snapshot, check_stream_id(stream_id))

    async def close(self) -> None:
        """Close the connection. Idempotent."""
        if not self._closed:
            self._closed = True
            await self._db.close()
