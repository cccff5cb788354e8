"""SQLite event store: appends in one ``BEGIN IMMEDIATE`` call, keyset-paged reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

from orchestrix._utils import (
    AsyncResource,
    check_append,
    check_limit,
    check_non_negative,
    check_stream_id,
)
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
from orchestrix.codec import encode
from orchestrix.protocols import ANY, EventStore, ExpectedVersion

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from orchestrix.messages import Event
    from orchestrix.records import AppendResult, Recorded


__all__ = ["SQLiteEventStore"]

#: Rows fetched per round trip while reading.
PAGE_SIZE: Final = 1_000


@final
class SQLiteEventStore(AsyncResource, EventStore):
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
            MissingDependencyError: aiosqlite is not installed.
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

    async def append(
        self,
        stream_id: str,
        events: Sequence[Event],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append *events* to a stream in one transaction (see `EventStore.append`)."""
        self._check_open()
        stream_id = check_append(stream_id, events, expected_version)
        records = [encode(event) for event in events]
        return await self._db.run(append, stream_id, records, expected_version)

    def read(
        self, stream_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> AsyncIterator[Recorded]:
        """Yield a stream's events in pages of `PAGE_SIZE` (see `EventStore.read`)."""
        self._check_open()
        stream_id = check_stream_id(stream_id)
        after = check_non_negative("after_version", after_version)
        return self._pages(stream_id, after, check_limit(limit))

    def read_all(
        self, *, after_position: int = 0, limit: int | None = None
    ) -> AsyncIterator[Recorded]:
        """Yield every event by position, in pages (see `EventStore.read_all`)."""
        self._check_open()
        after = check_non_negative("after_position", after_position)
        return self._pages(None, after, check_limit(limit))

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

    async def stream_version(self, stream_id: str) -> int:
        """Return the stream's number of events, 0 when it is missing."""
        self._check_open()
        stream_id = check_stream_id(stream_id)
        return await self._db.run(scalar, VERSION, (stream_id,))

    async def close(self) -> None:
        """Close the connection. Idempotent."""
        if not self._closed:
            self._closed = True
            await self._db.close()
