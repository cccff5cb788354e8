"""SQLite event store: appends in one ``BEGIN IMMEDIATE`` call, keyset-paged reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

from orchestrix.backends._front import FrontEventStore
from orchestrix.backends.sqlite._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    Database,
)
from orchestrix.backends.sqlite._ops import (
    VERSION,
    append,
    fetch_all,
    fetch_stream,
    scalar,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from orchestrix.codec import EncodedMessage
    from orchestrix.records import AppendResult, Recorded


__all__ = ["SQLiteEventStore"]

#: Rows fetched per round trip while reading.
PAGE_SIZE: Final = 1_000


@final
class SQLiteEventStore(FrontEventStore):
    """Event store in a SQLite file (or in memory).

    Open it with ``await SQLiteEventStore.open(path)`` or through
    ``open_store("sqlite:///path.db")``; close it with ``await store.close()``.
    Any number of stores, in any number of processes, may share one file.
    """

    def __init__(self, database: Database) -> None:
        """Wrap an open `Database`; use `SQLiteEventStore.open` instead."""
        self._db = database

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> SQLiteEventStore:
        """Open (creating if needed) the database at *path* as an event store.

        Args:
            path: File path, or ``":memory:"`` for a private in-memory database.
            synchronous: SQLite's ``PRAGMA synchronous``: ``full`` (default:
                a returned append survives power loss), ``normal`` (survives a
                process crash; faster), ``extra`` or ``off``.
            busy_timeout: Seconds to wait for another connection's write lock.

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

    @property
    def path(self) -> str:
        """The database file's absolute path (or ``":memory:"``)."""
        return self._db.path

    async def _append(
        self,
        stream_id: str,
        records: list[EncodedMessage],
        expected_version: int | None,
    ) -> AppendResult:
        return await self._db.run(append, stream_id, records, expected_version)

    def _read(
        self, stream_id: str, after: int, limit: int | None
    ) -> AsyncIterator[Recorded]:
        return self._pages(stream_id, after, limit)

    def _read_all(self, after: int, limit: int | None) -> AsyncIterator[Recorded]:
        return self._pages(None, after, limit)

    async def _pages(
        self, stream_id: str | None, after: int, limit: int | None
    ) -> AsyncIterator[Recorded]:
        # Keyset pagination: each page starts after the last key seen, so a page
        # costs one index seek however deep the reader is.
        run = self._db.run
        remaining = limit
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            self._check_open()
            if stream_id is None:
                page = await run(fetch_all, after, size)
            else:
                page = await run(fetch_stream, stream_id, after, size)
            for recorded in page:
                yield recorded
            if len(page) < size:
                return
            last = page[-1]
            after = last.position if stream_id is None else last.version
            if remaining is not None:
                remaining -= len(page)

    async def _stream_version(self, stream_id: str) -> int:
        return await self._db.run(scalar, VERSION, (stream_id,))

    async def close(self) -> None:
        """Close the connection after the call in flight (see `EventStore.close`)."""
        if not self._closed:
            self._closed = True
            await self._db.close()
