"""PostgreSQL backend on asyncpg: event, snapshot and checkpoint stores, durable bus.

Open it by URL (``postgresql://user:password@host:5432/db?schema=app``) through
`orchestrix.open_store`, `orchestrix.open_snapshot_store`,
`orchestrix.open_checkpoint_store` or `orchestrix.open_bus`. Tables live in
one schema (default ``orchestrix``), created and migrated on open. Global
positions come from a counter row updated at the end of each append
transaction, so they are gap-free and become visible strictly in order
(ADR 0017).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

from orchestrix.backends.postgres.bus import PostgresMessageBus
from orchestrix.backends.postgres.checkpoints import PostgresCheckpointStore
from orchestrix.backends.postgres.snapshots import PostgresSnapshotStore
from orchestrix.backends.postgres.store import PostgresEventStore

if TYPE_CHECKING:
    from orchestrix.protocols import CheckpointStore, EventStore, SnapshotStore

__all__ = [
    "PostgresCheckpointStore",
    "PostgresEventStore",
    "PostgresMessageBus",
    "PostgresSnapshotStore",
    "backend",
]


@final
class _PostgresBackend:
    """The object registered for ``postgresql://`` and ``postgres://`` URLs."""

    async def open_store(self, url: str) -> EventStore:
        """Return a migrated `PostgresEventStore` for *url*."""
        return await PostgresEventStore.open(url)

    async def open_snapshot_store(self, url: str) -> SnapshotStore:
        """Return a migrated `PostgresSnapshotStore` for *url*."""
        return await PostgresSnapshotStore.open(url)

    async def open_checkpoint_store(self, url: str) -> CheckpointStore:
        """Return a migrated `PostgresCheckpointStore` for *url*."""
        return await PostgresCheckpointStore.open(url)

    async def open_bus(self, url: str) -> PostgresMessageBus:
        """Return a `PostgresMessageBus` for *url*, not yet started."""
        return await PostgresMessageBus.open(url)


#: Entry point for the ``postgresql`` and ``postgres`` URL schemes.
backend: Final = _PostgresBackend()
