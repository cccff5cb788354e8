"""SQLite backend: event store, snapshot store and durable bus in one file.

Open it by URL (``sqlite:///app.db``, ``sqlite:////var/lib/app.db``,
``sqlite:///:memory:``) through `orchestrix.open_store`,
`orchestrix.open_snapshot_store` and `orchestrix.open_bus`, or construct the
classes with ``await SQLiteEventStore.open(path)``. Needs the ``sqlite`` extra
(aiosqlite), which is imported only when a database is opened.

Every write is one ``BEGIN IMMEDIATE`` transaction run as a single call in the
connection's thread; SQLite admits one writer at a time, across processes, so
positions and versions are assigned inside that transaction, gap-free and in
commit order (ADR 0014). The file is in WAL mode and ``synchronous=full`` by
default (ADR 0015).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

from orchestrix._utils import (
    AsyncResource,
    check_append,
    check_limit,
    check_non_negative,
    check_stream_id,
)
from orchestrix.backends._sqlite_bus import (
    BUS_OPTIONS,
    SQLiteMessageBus,
    check_bus_options,
)
from orchestrix.backends._sqlite_conn import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    STORE_OPTIONS,
    Database,
    parse_url,
)
from orchestrix.backends._sqlite_ops import (
    VERSION,
    append,
    fetch_all,
    fetch_stream,
    load_snapshot,
    save_snapshot,
    scalar,
)
from orchestrix.codec import encode
from orchestrix.errors import InvalidArgumentError
from orchestrix.protocols import (
    ANY,
    AppendResult,
    EventStore,
    ExpectedVersion,
    Recorded,
    Snapshot,
    SnapshotStore,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from orchestrix.messages import Event

__all__ = [
    "SQLiteBackend",
    "SQLiteEventStore",
    "SQLiteMessageBus",
    "SQLiteSnapshotStore",
    "backend",
]

#: Rows fetched per round trip while reading.
PAGE_SIZE: Final = 1_000


def _store_options(url: str) -> tuple[str, str, float]:
    # One URL may serve the store, the snapshots and the bus of an application,
    # so a store accepts the bus options too; they are checked, then unused.
    path, options = parse_url(url, STORE_OPTIONS + BUS_OPTIONS)
    check_bus_options(**{k: v for k, v in options.items() if k in BUS_OPTIONS})
    synchronous = options.get("synchronous", DEFAULT_SYNCHRONOUS)
    busy_timeout = options.get("busy_timeout", str(DEFAULT_BUSY_TIMEOUT))
    return path, synchronous, busy_timeout  # type: ignore[return-value]  # Database.open validates the text


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


@final
class SQLiteBackend:
    """Opens SQLite stores and buses by URL; registered for ``sqlite://``.

    URLs accept ``synchronous`` and ``busy_timeout`` and the bus options
    ``visibility_timeout``, ``max_attempts``, ``poll_interval`` and
    ``concurrency``: ``sqlite:///app.db?synchronous=normal&max_attempts=3``.
    Stores check the bus options but do not use them, so one URL can name the
    store, the snapshot store and the bus of an application.
    """

    async def open_store(self, url: str) -> SQLiteEventStore:
        """Return an open `SQLiteEventStore` for *url*."""
        path, synchronous, busy_timeout = _store_options(url)
        return await SQLiteEventStore.open(
            path, synchronous=synchronous, busy_timeout=busy_timeout
        )

    async def open_snapshot_store(self, url: str) -> SQLiteSnapshotStore:
        """Return an open `SQLiteSnapshotStore` for *url*."""
        path, synchronous, busy_timeout = _store_options(url)
        return await SQLiteSnapshotStore.open(
            path, synchronous=synchronous, busy_timeout=busy_timeout
        )

    async def open_bus(self, url: str) -> SQLiteMessageBus:
        """Return a `SQLiteMessageBus` for *url*, not yet started."""
        path, options = parse_url(url, STORE_OPTIONS + BUS_OPTIONS)
        return await SQLiteMessageBus.open(path, **options)  # type: ignore[arg-type]  # text options are validated by open


#: The object registered under the ``sqlite`` URL scheme.
backend: Final = SQLiteBackend()
