"""The contract suites on the SQLite backend, each test on a fresh database file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrix import open_bus, open_checkpoint_store, open_snapshot_store, open_store
from orchestrix.backends.sqlite import SQLiteMessageBus
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
    from pathlib import Path

    from orchestrix.protocols import (
        CheckpointStore,
        DurableMessageBus,
        EventStore,
        MessageBus,
        SnapshotStore,
    )

__all__ = [
    "TestSQLiteCheckpointStore",
    "TestSQLiteDurableBus",
    "TestSQLiteEventStore",
    "TestSQLiteMessageBus",
    "TestSQLiteProjections",
    "TestSQLiteSnapshotStore",
    "TestSQLiteSubscriptions",
]


class TestSQLiteEventStore(EventStoreContract):
    """`SQLiteEventStore` on a file database."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[EventStore]:
        store = await open_store(f"sqlite:///{tmp_path}/events.db")
        yield store
        await store.close()


class TestSQLiteSubscriptions(SubscriptionContract):
    """Catch-up subscriptions on the sqlite store."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[EventStore]:
        store = await open_store(f"sqlite:///{tmp_path}/events.db")
        yield store
        await store.close()


class TestSQLiteSnapshotStore(SnapshotStoreContract):
    """`SQLiteSnapshotStore` on a file database."""

    @pytest.fixture
    async def snapshot_store(self, tmp_path: Path) -> AsyncIterator[SnapshotStore]:
        store = await open_snapshot_store(f"sqlite:///{tmp_path}/snapshots.db")
        yield store
        await store.close()


class TestSQLiteCheckpointStore(CheckpointStoreContract):
    """`SQLiteCheckpointStore` on a file database."""

    @pytest.fixture
    async def checkpoint_store(self, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
        store = await open_checkpoint_store(f"sqlite:///{tmp_path}/checkpoints.db")
        yield store
        await store.close()


class TestSQLiteMessageBus(MessageBusContract):
    """`SQLiteMessageBus` on a file database, through the plain bus contract."""

    @pytest.fixture
    async def bus(self, tmp_path: Path) -> AsyncIterator[MessageBus]:
        bus = await open_bus(f"sqlite:///{tmp_path}/bus.db?poll_interval=0.05")
        yield bus
        await bus.close()


class TestSQLiteDurableBus(DurableMessageBusContract):
    """Several `SQLiteMessageBus` instances sharing one database file."""

    @pytest.fixture
    async def bus_factory(
        self, tmp_path: Path
    ) -> AsyncIterator[Callable[..., Awaitable[DurableMessageBus]]]:
        made: list[SQLiteMessageBus] = []

        async def make(**options: Any) -> DurableMessageBus:
            bus = await SQLiteMessageBus.open(tmp_path / "bus.db", **options)
            made.append(bus)
            return bus

        yield make
        for bus in made:
            await bus.close()


class TestSQLiteProjections(ProjectionContract):
    """Projection runners on one SQLite file holding events and checkpoints."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[EventStore]:
        store = await open_store(f"sqlite:///{tmp_path}/events.db")
        yield store
        await store.close()

    @pytest.fixture
    async def checkpoint_store(self, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
        store = await open_checkpoint_store(f"sqlite:///{tmp_path}/events.db")
        yield store
        await store.close()
