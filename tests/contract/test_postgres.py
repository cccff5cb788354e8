"""The contract suites on the PostgreSQL backend, each test in a fresh schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from orchestrix import (
    open_bus,
    open_checkpoint_store,
    open_snapshot_store,
    open_store,
)
from orchestrix.backends.postgres import PostgresMessageBus
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

    from orchestrix.protocols import (
        CheckpointStore,
        DurableMessageBus,
        EventStore,
        MessageBus,
        SnapshotStore,
    )

__all__ = [
    "TestPostgresCheckpointStore",
    "TestPostgresDurableBus",
    "TestPostgresEventStore",
    "TestPostgresMessageBus",
    "TestPostgresProjections",
    "TestPostgresSnapshotStore",
    "TestPostgresSubscriptions",
]

pytestmark = pytest.mark.postgres


@pytest.fixture
async def schema_url(postgres_url: str, unique_name: str) -> AsyncIterator[str]:
    """A URL to a schema of its own, dropped after the test."""
    yield f"{postgres_url}?schema={unique_name}"
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')
    finally:
        await connection.close()


class TestPostgresEventStore(EventStoreContract):
    """`PostgresEventStore` in a fresh schema, with small pages to cross them."""

    @pytest.fixture
    async def store(self, schema_url: str) -> AsyncIterator[EventStore]:
        store = await open_store(f"{schema_url}&page_size=7&max_size=4")
        yield store
        await store.close()


class TestPostgresSubscriptions(SubscriptionContract):
    """Catch-up subscriptions on the postgres store."""

    @pytest.fixture
    async def store(self, schema_url: str) -> AsyncIterator[EventStore]:
        store = await open_store(f"{schema_url}&page_size=7&max_size=4")
        yield store
        await store.close()


class TestPostgresSnapshotStore(SnapshotStoreContract):
    """`PostgresSnapshotStore` in a fresh schema."""

    @pytest.fixture
    async def snapshot_store(self, schema_url: str) -> AsyncIterator[SnapshotStore]:
        store = await open_snapshot_store(f"{schema_url}&max_size=2")
        yield store
        await store.close()


class TestPostgresCheckpointStore(CheckpointStoreContract):
    """`PostgresCheckpointStore` in a fresh schema."""

    @pytest.fixture
    async def checkpoint_store(self, schema_url: str) -> AsyncIterator[CheckpointStore]:
        """An empty checkpoint store opened by URL, through the backend opener."""
        store = await open_checkpoint_store(f"{schema_url}&max_size=2")
        yield store
        await store.close()


class TestPostgresMessageBus(MessageBusContract):
    """`PostgresMessageBus` in a fresh schema, through the plain bus contract."""

    @pytest.fixture
    async def bus(self, schema_url: str) -> AsyncIterator[MessageBus]:
        bus = await open_bus(f"{schema_url}&poll_interval=0.05&max_size=4")
        yield bus
        await bus.close()


class TestPostgresDurableBus(DurableMessageBusContract):
    """Several `PostgresMessageBus` instances sharing one schema."""

    @pytest.fixture
    async def bus_factory(
        self, schema_url: str
    ) -> AsyncIterator[Callable[..., Awaitable[DurableMessageBus]]]:
        made: list[PostgresMessageBus] = []

        async def make(**options: Any) -> DurableMessageBus:
            bus = await PostgresMessageBus.open(schema_url, max_size=4, **options)
            made.append(bus)
            return bus

        yield make
        for bus in made:
            await bus.close()


class TestPostgresProjections(ProjectionContract):
    """Projection runners on one schema holding events and checkpoints."""

    @pytest.fixture
    async def store(self, schema_url: str) -> AsyncIterator[EventStore]:
        store = await open_store(f"{schema_url}&page_size=7&max_size=4")
        yield store
        await store.close()

    @pytest.fixture
    async def checkpoint_store(self, schema_url: str) -> AsyncIterator[CheckpointStore]:
        store = await open_checkpoint_store(f"{schema_url}&max_size=2")
        yield store
        await store.close()
