"""SQLite checkpoint store: one position per subscriber name, in the store's file."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from orchestrix.backends._front import FrontCheckpointStore
from orchestrix.backends.sqlite._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    Database,
)
from orchestrix.backends.sqlite._ops import (
    delete_checkpoint,
    load_all_checkpoints,
    load_checkpoint,
    save_checkpoint,
)

if TYPE_CHECKING:
    from pathlib import Path


__all__ = ["SQLiteCheckpointStore"]


@final
class SQLiteCheckpointStore(FrontCheckpointStore):
    """Subscriber checkpoints in a SQLite file (or in memory).

    Open it with ``await SQLiteCheckpointStore.open(path)`` or through
    ``open_checkpoint_store("sqlite:///path.db")``; the checkpoints live in
    the table ``orchestrix_checkpoints`` of the file that holds the events.
    Each save and delete is one ``BEGIN IMMEDIATE`` transaction.
    """

    def __init__(self, database: Database) -> None:
        """Wrap an open `Database`; use `SQLiteCheckpointStore.open` instead."""
        self._db = database

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> SQLiteCheckpointStore:
        """Open the database at *path* as a checkpoint store.

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

    async def _load(self, name: str) -> int | None:
        return await self._db.run(load_checkpoint, name)

    async def _save(self, name: str, position: int) -> None:
        await self._db.run(save_checkpoint, name, position)

    async def _delete(self, name: str) -> None:
        await self._db.run(delete_checkpoint, name)

    async def _load_all(self) -> dict[str, int]:
        return await self._db.run(load_all_checkpoints)

    async def close(self) -> None:
        """Close the connection after the call in flight; idempotent."""
        if not self._closed:
            self._closed = True
            await self._db.close()
