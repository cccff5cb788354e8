"""The contract suites run against the in-memory backends.

The in-memory bus is not durable, so it runs `MessageBusContract` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrix.backends.memory import (
    InMemoryCheckpointStore,
    InMemoryEventStore,
    InMemoryMessageBus,
    InMemorySnapshotStore,
)
from orchestrix.testing import (
    CheckpointStoreContract,
    EventStoreContract,
    MessageBusContract,
    ProjectionContract,
    SnapshotStoreContract,
    SubscriptionContract,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[InMemoryEventStore]:
        """A fresh in-memory store per test."""
        async with InMemoryEventStore() as store:
            yield store


class TestInMemorySubscriptions(SubscriptionContract):
    """Catch-up subscriptions on the memory store."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[InMemoryEventStore]:
        """A fresh in-memory store per test."""
        async with InMemoryEventStore() as store:
            yield store


class TestInMemorySnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    async def snapshot_store(self) -> AsyncIterator[InMemorySnapshotStore]:
        """A fresh in-memory snapshot store per test."""
        async with InMemorySnapshotStore() as snapshot_store:
            yield snapshot_store


class TestInMemoryMessageBus(MessageBusContract):
    @pytest.fixture
    async def bus(self) -> AsyncIterator[InMemoryMessageBus]:
        """A fresh, unstarted in-memory bus per test."""
        async with InMemoryMessageBus() as bus:
            yield bus


class TestInMemoryCheckpointStore(CheckpointStoreContract):
    @pytest.fixture
    async def checkpoint_store(self) -> AsyncIterator[InMemoryCheckpointStore]:
        """A fresh in-memory checkpoint store per test."""
        async with InMemoryCheckpointStore() as checkpoint_store:
            yield checkpoint_store


class TestInMemoryProjections(ProjectionContract):
    """Projection runners on the memory stores."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[InMemoryEventStore]:
        """A fresh in-memory store per test."""
        async with InMemoryEventStore() as store:
            yield store

    @pytest.fixture
    async def checkpoint_store(self) -> AsyncIterator[InMemoryCheckpointStore]:
        """A fresh in-memory checkpoint store per test."""
        async with InMemoryCheckpointStore() as checkpoint_store:
            yield checkpoint_store
