"""Run every contract suite against the Redis backend on a real server.

Each test gets a fresh key prefix; its keys are deleted afterwards (never
FLUSHDB: the server is shared).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrix.backends.redis import (
    RedisCheckpointStore,
    RedisEventStore,
    RedisMessageBus,
    RedisSnapshotStore,
)
from orchestrix.testing import (
    CheckpointStoreContract,
    DurableMessageBusContract,
    EventStoreContract,
    MessageBusContract,
    ProjectionContract,
    SnapshotStoreContract,
    SubscriptionContract,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

pytestmark = pytest.mark.redis


async def delete_keys(url: str, prefix: str) -> None:
    """Delete every key under the hash-tagged *prefix*."""
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{{{prefix}}}:*", count=500)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis_url: str, unique_name: str) -> AsyncIterator[str]:
    """A fresh key prefix, whose keys are deleted after the test."""
    yield unique_name
    await delete_keys(redis_url, unique_name)


class TestRedisEventStore(EventStoreContract):
    """`RedisEventStore` keeps the `EventStore` contract."""

    @pytest.fixture
    async def store(
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[RedisEventStore]:
        """A store on a fresh prefix, with small pages so paging is exercised."""
        store = await RedisEventStore.open(redis_url, prefix=prefix, page_size=7)
        yield store
        await store.close()


class TestRedisSubscriptions(SubscriptionContract):
    """Catch-up subscriptions on the redis store."""

    @pytest.fixture
    async def store(
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[RedisEventStore]:
        """A store on a fresh prefix, with small pages so paging is exercised."""
        store = await RedisEventStore.open(redis_url, prefix=prefix, page_size=7)
        yield store
        await store.close()


class TestRedisSnapshotStore(SnapshotStoreContract):
    """`RedisSnapshotStore` keeps the `SnapshotStore` contract."""

    @pytest.fixture
    async def snapshot_store(
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[RedisSnapshotStore]:
        """A snapshot store on a fresh prefix."""
        store = await RedisSnapshotStore.open(redis_url, prefix=prefix)
        yield store
        await store.close()


class TestRedisCheckpointStore(CheckpointStoreContract):
    """`RedisCheckpointStore` keeps the `CheckpointStore` contract."""

    @pytest.fixture
    async def checkpoint_store(
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[RedisCheckpointStore]:
        """A checkpoint store on a fresh prefix."""
        store = await RedisCheckpointStore.open(redis_url, prefix=prefix)
        yield store
        await store.close()


class TestRedisMessageBus(MessageBusContract):
    """`RedisMessageBus` keeps the `MessageBus` contract."""

    @pytest.fixture
    async def bus(self, redis_url: str, prefix: str) -> AsyncIterator[RedisMessageBus]:
        """An unstarted bus on a fresh prefix."""
        bus = await RedisMessageBus.open(redis_url, prefix=prefix, poll_interval=0.05)
        yield bus
        await bus.close()


class TestRedisDurableBus(DurableMessageBusContract):
    """`RedisMessageBus` keeps the `DurableMessageBus` contract."""

    @pytest.fixture
    async def bus_factory(
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[Callable[..., Awaitable[RedisMessageBus]]]:
        """Make buses sharing one fresh prefix; close them all afterwards."""
        made: list[RedisMessageBus] = []

        async def make(**options: Any) -> RedisMessageBus:
            bus = await RedisMessageBus.open(redis_url, prefix=prefix, **options)
            made.append(bus)
            return bus

        yield make
        for bus in made:
            await bus.close()


class TestRedisProjections(ProjectionContract):
    """Projection runners on one prefix holding events and checkpoints."""

    @pytest.fixture
    async def store(
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[RedisEventStore]:
        """A store on a fresh prefix, with small pages so paging is exercised."""
        store = await RedisEventStore.open(redis_url, prefix=prefix, page_size=7)
        yield store
        await store.close()

    @pytest.fixture
    async def checkpoint_store(
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[RedisCheckpointStore]:
        """A checkpoint store on the same prefix."""
        store = await RedisCheckpointStore.open(redis_url, prefix=prefix)
        yield store
        await store.close()
