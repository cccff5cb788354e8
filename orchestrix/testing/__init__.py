"""Test helpers for applications and backends.

The contract suites are plain pytest classes; a backend's test module
subclasses them and supplies fixtures only::

    class TestMyEventStore(EventStoreContract):
        @pytest.fixture
        async def store(self):
            store = await open_my_store()
            yield store
            await store.close()

They need pytest and pytest-asyncio. The pytest plugin
(`orchestrix.testing.pytest_plugin`) provides the ``event_store``,
``snapshot_store`` and ``message_bus`` fixtures for application tests.
"""

from __future__ import annotations

from orchestrix.testing._bus import MessageBusContract as MessageBusContract
from orchestrix.testing._checkpoints import (
    CheckpointStoreContract as CheckpointStoreContract,
)
from orchestrix.testing._durable_bus import BusFactory as BusFactory
from orchestrix.testing._durable_bus import (
    DurableMessageBusContract as DurableMessageBusContract,
)
from orchestrix.testing._event_store import EventStoreContract as EventStoreContract
from orchestrix.testing._projections import ProjectionContract as ProjectionContract
from orchestrix.testing._scenario import Scenario as Scenario
from orchestrix.testing._scenario import scenario as scenario
from orchestrix.testing._snapshot_store import (
    SnapshotStoreContract as SnapshotStoreContract,
)
from orchestrix.testing._subscriptions import (
    SubscriptionContract as SubscriptionContract,
)

__all__ = [
    "BusFactory",
    "CheckpointStoreContract",
    "DurableMessageBusContract",
    "EventStoreContract",
    "MessageBusContract",
    "ProjectionContract",
    "Scenario",
    "SnapshotStoreContract",
    "SubscriptionContract",
    "scenario",
]
