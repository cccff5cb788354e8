"""Static checks of the public API: type-checked by mypy, never run by pytest.

Each backend class is assigned to the Protocol it implements, so the type
checker (not only a runtime check) proves conformance; ``assert_type`` pins
the inference users rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, assert_type

from orchestrix import (
    AggregateRoot,
    Backend,
    CloudEvent,
    DurableMessageBus,
    Event,
    EventStore,
    Handler,
    LiveEventStore,
    MessageBus,
    Recorded,
    Repository,
    SnapshotStore,
    Subscription,
    applies,
    from_cloudevent,
    open_bus,
    open_snapshot_store,
    open_store,
    subscribe,
)
from orchestrix.backends import memory, postgres, redis, sqlite
from orchestrix.testing import Scenario, scenario

if TYPE_CHECKING:
    from orchestrix.backends.memory import (
        InMemoryEventStore,
        InMemoryMessageBus,
        InMemorySnapshotStore,
    )
    from orchestrix.backends.postgres import (
        PostgresEventStore,
        PostgresMessageBus,
        PostgresSnapshotStore,
    )
    from orchestrix.backends.redis import (
        RedisEventStore,
        RedisMessageBus,
        RedisSnapshotStore,
    )
    from orchestrix.backends.sqlite import (
        SQLiteEventStore,
        SQLiteMessageBus,
        SQLiteSnapshotStore,
    )
    from orchestrix.config import Opening


@dataclass(frozen=True, kw_only=True, slots=True)
class Credited(Event, type="typing.credited"):
    amount: int


class Wallet(AggregateRoot):
    total: int

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.total = 0

    @applies(Credited)
    def _credited(self, event: Credited) -> None:
        self.total += event.amount


def backends_satisfy_their_protocols(
    *,
    memory_store: InMemoryEventStore,
    sqlite_store: SQLiteEventStore,
    postgres_store: PostgresEventStore,
    redis_store: RedisEventStore,
    memory_snapshots: InMemorySnapshotStore,
    sqlite_snapshots: SQLiteSnapshotStore,
    postgres_snapshots: PostgresSnapshotStore,
    redis_snapshots: RedisSnapshotStore,
    memory_bus: InMemoryMessageBus,
    sqlite_bus: SQLiteMessageBus,
    postgres_bus: PostgresMessageBus,
    redis_bus: RedisMessageBus,
) -> None:
    stores: list[EventStore] = [memory_store, sqlite_store, postgres_store, redis_store]
    live: list[LiveEventStore] = [memory_store]
    assert_type(subscribe(memory_store, types=Credited), Subscription)
    snapshot_stores: list[SnapshotStore] = [
        memory_snapshots,
        sqlite_snapshots,
        postgres_snapshots,
        redis_snapshots,
    ]
    buses: list[MessageBus] = [memory_bus, sqlite_bus, postgres_bus, redis_bus]
    durable: list[DurableMessageBus] = [sqlite_bus, postgres_bus, redis_bus]
    backends: list[Backend] = [
        memory.backend,
        sqlite.backend,
        postgres.backend,
        redis.backend,
    ]
    assert stores
    assert live
    assert snapshot_stores
    assert buses
    assert durable
    assert backends


async def opening_gives_the_protocol_types() -> None:
    opening: Opening[EventStore] = open_store("memory://")
    assert opening is not None
    store = await open_store()
    assert_type(store, EventStore)
    async with open_bus() as bus, open_snapshot_store() as snapshots:
        assert_type(bus, MessageBus)
        assert_type(snapshots, SnapshotStore)
    async for recorded in store.read("s"):
        assert_type(recorded, Recorded)
        assert_type(recorded.event, Event)


async def repositories_keep_the_aggregate_type(store: EventStore) -> None:
    wallets = Repository(Wallet, store)
    assert_type(wallets, Repository[Wallet])
    assert_type(await wallets.get("w"), Wallet)


def scenarios_keep_the_aggregate_type() -> None:
    assert_type(scenario(Wallet), Scenario[Wallet])
    assert_type(scenario(Wallet).then(), Wallet)


def handlers_are_typed_by_message(bus: MessageBus) -> None:
    async def on_credited(event: Credited) -> None:
        assert event.amount

    handler: Handler[Credited] = on_credited
    bus.subscribe(Credited, handler)
    bus.subscribe(Event, on_any)


async def on_any(event: Event) -> None:
    assert_type(event, Event)


def cloudevents_narrow_to_the_class(event: CloudEvent) -> None:
    assert_type(from_cloudevent(event, Credited), Credited)
