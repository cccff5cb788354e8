"""SQLite backend: event store, snapshot and checkpoint stores, durable bus in one file.

Open it by URL (``sqlite:///app.db``, ``sqlite:////var/lib/app.db``,
``sqlite:///:memory:``) through `orchestrix.open_store`,
`orchestrix.open_snapshot_store`, `orchestrix.open_checkpoint_store` and
`orchestrix.open_bus`, or construct the classes with
``await SQLiteEventStore.open(path)``. Needs only the standard library's
``sqlite3``; the ``sqlite`` extra is kept and installs nothing (ADR 0032).

Every write is one ``BEGIN IMMEDIATE`` transaction run as a single call in the
connection's thread; SQLite admits one writer at a time, across processes, so
positions and versions are assigned inside that transaction, gap-free and in
commit order (ADR 0014). The file is in WAL mode and ``synchronous=full`` by
default (ADR 0015).
"""

from __future__ import annotations

from typing import Final, final

from orchestrix.backends._front_bus import BUS_OPTIONS, parse_bus_options
from orchestrix.backends.sqlite._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    STORE_OPTIONS,
    parse_url,
)
from orchestrix.backends.sqlite.bus import SQLiteMessageBus
from orchestrix.backends.sqlite.checkpoints import SQLiteCheckpointStore
from orchestrix.backends.sqlite.snapshots import SQLiteSnapshotStore
from orchestrix.backends.sqlite.store import SQLiteEventStore

__all__ = [
    "SQLiteBackend",
    "SQLiteCheckpointStore",
    "SQLiteEventStore",
    "SQLiteMessageBus",
    "SQLiteSnapshotStore",
    "backend",
]


def _store_options(url: str) -> tuple[str, str, float]:
    # One URL may serve the stores and the bus of an application,
    # so a store accepts the bus options too; they are checked, then unused.
    path, options = parse_url(url, STORE_OPTIONS + BUS_OPTIONS)
    parse_bus_options({k: v for k, v in options.items() if k in BUS_OPTIONS})
    synchronous = options.get("synchronous", DEFAULT_SYNCHRONOUS)
    busy_timeout = options.get("busy_timeout", str(DEFAULT_BUSY_TIMEOUT))
    return path, synchronous, busy_timeout  # type: ignore[return-value]  # Database.open validates the text


@final
class SQLiteBackend:
    """Opens SQLite stores and buses by URL; registered for ``sqlite://``.

    URLs accept ``synchronous`` and ``busy_timeout`` and the bus options
    ``visibility_timeout``, ``max_attempts``, ``poll_interval`` and
    ``concurrency``: ``sqlite:///app.db?synchronous=normal&max_attempts=3``.
    Stores check the bus options but do not use them, so one URL can name the
    store, the snapshot store, the checkpoint store and the bus of an
    application.
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

    async def open_checkpoint_store(self, url: str) -> SQLiteCheckpointStore:
        """Return an open `SQLiteCheckpointStore` for *url*."""
        path, synchronous, busy_timeout = _store_options(url)
        return await SQLiteCheckpointStore.open(
            path, synchronous=synchronous, busy_timeout=busy_timeout
        )

    async def open_bus(self, url: str) -> SQLiteMessageBus:
        """Return a `SQLiteMessageBus` for *url*, not yet started."""
        path, options = parse_url(url, STORE_OPTIONS + BUS_OPTIONS)
        return await SQLiteMessageBus.open(path, **options)  # type: ignore[arg-type]  # text options are validated by open


#: The object registered under the ``sqlite`` URL scheme.
backend: Final = SQLiteBackend()
