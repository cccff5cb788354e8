"""Redis backend: event, snapshot and checkpoint stores, and `RedisMessageBus`.

Open them by URL (``redis://[user:password@]host:port/db?prefix=app``, or
``rediss://`` for TLS) through `orchestrix.open_store`, `orchestrix.open_bus`,
`orchestrix.open_snapshot_store` and `orchestrix.open_checkpoint_store`. Needs
``pip install 'orchestrix[redis]'`` and Redis 7.0 or newer.

Each append runs as one Lua script that checks the expected version and the
event ids, then writes the events into the global log (a hash by position),
their positions onto the stream (a list) and their ids into the event-id index
together (ADRs 0021 and 0028). Keys are described in `RedisKeys`; the server
must run with ``appendonly yes`` and ``maxmemory-policy noeviction`` to keep what it
acknowledged (ADR 0023).
"""

from __future__ import annotations

from typing import Final, final

from orchestrix.backends.redis.bus import RedisMessageBus
from orchestrix.backends.redis.checkpoints import RedisCheckpointStore
from orchestrix.backends.redis.snapshots import RedisSnapshotStore
from orchestrix.backends.redis.store import RedisEventStore
from orchestrix.config import Backend

__all__ = [
    "RedisBackend",
    "RedisCheckpointStore",
    "RedisEventStore",
    "RedisMessageBus",
    "RedisSnapshotStore",
    "backend",
]


@final
class RedisBackend(Backend):
    """What the ``redis`` and ``rediss`` URL schemes open."""

    async def open_store(self, url: str) -> RedisEventStore:
        """Return a ready `RedisEventStore` for *url*."""
        return await RedisEventStore.open(url)

    async def open_snapshot_store(self, url: str) -> RedisSnapshotStore:
        """Return a ready `RedisSnapshotStore` for *url*."""
        return await RedisSnapshotStore.open(url)

    async def open_checkpoint_store(self, url: str) -> RedisCheckpointStore:
        """Return a ready `RedisCheckpointStore` for *url*."""
        return await RedisCheckpointStore.open(url)

    async def open_bus(self, url: str) -> RedisMessageBus:
        """Return a `RedisMessageBus` for *url*, connected but not started."""
        return await RedisMessageBus.open(url)


#: The object registered for the ``redis`` and ``rediss`` schemes.
backend: Final = RedisBackend()
