"""What the in-memory stores add to the contract: helpers, laziness, URLs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from orchestrix import (
    ConfigurationError,
    DuplicateEventError,
    EncodedMessage,
    Event,
    ResourceClosedError,
    SerializationError,
    Snapshot,
)
from orchestrix.backends.memory import (
    PAGE_SIZE,
    InMemoryEventStore,
    InMemorySnapshotStore,
    backend,
)
from orchestrix.config import Backend
from orchestrix.errors import InvalidArgumentError

if TYPE_CHECKING:
    from orchestrix.protocols import EventStore, SnapshotStore


@dataclass(frozen=True, kw_only=True, slots=True)
class Opened(Event, type="tests.memory.Opened"):
    owner: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Renamed(Event, type="tests.memory.Renamed"):
    owner: str


async def test_streams_and_events_helpers() -> None:
    """`streams` lists streams in creation order; `events` decodes one stream."""
    store = InMemoryEventStore()
    first, second = Opened(owner="ada"), Renamed(owner="grace")
    await store.append("b", [first])
    await store.append("a", [Opened(owner="x")])
    await store.append("b", [second])
    assert store.streams() == ["b", "a"]
    assert store.events("b") == [first, second]
    assert store.events("missing") == []


async def test_events_are_stored_encoded() -> None:
    """The store keeps the encoded form and hands out decoded copies."""
    store = InMemoryEventStore()
    event = Opened(owner="ada")
    await store.append("s", [event])
    (record,) = [r async for r in store.read("s")]
    assert isinstance(record.record, EncodedMessage)
    assert record.record.type == "tests.memory.Opened"
    assert b'"owner":"ada"' in record.record.payload
    assert record.event == event
    assert record.event is not event


async def test_naive_time_is_rejected() -> None:
    """An event whose time has no timezone cannot be stored, as on a real store."""
    store = InMemoryEventStore()
    naive = Opened(owner="ada", time=datetime(2026, 1, 1))  # noqa: DTZ001 -- the naive time is the point
    with pytest.raises(SerializationError, match="timezone"):
        await store.append("s", [naive])
    assert store.streams() == []


async def test_retry_is_recognised_by_ids_and_keeps_what_is_stored() -> None:
    """Reusing stored ids in their place is a retry: the first events stand.

    As on every backend (`EventStore.append`), the retried events' contents
    are not compared, so an idempotency key reused with a later timestamp
    returns the original result and changes nothing.
    """
    store = InMemoryEventStore()
    event = Opened(owner="ada")
    first = await store.append("s", [event])
    again = Opened(owner="eve", id=event.id)
    assert await store.append("s", [again]) == first
    assert store.events("s") == [event]


async def test_stored_id_elsewhere_in_the_stream_is_a_duplicate() -> None:
    """An id already stored, reused in another place of the stream, is a duplicate."""
    store = InMemoryEventStore()
    event = Opened(owner="ada")
    await store.append("s", [event, Opened(owner="bob")])
    with pytest.raises(DuplicateEventError, match="at version 1"):
        await store.append("s", [Opened(owner="cy"), Opened(owner="eve", id=event.id)])
    assert len(store.events("s")) == 2


async def test_read_sees_the_store_as_iteration_began() -> None:
    """A read yields what was stored at its first step, not later appends."""
    store = InMemoryEventStore()
    await store.append("s", [Opened(owner="a"), Opened(owner="b")])
    reader = store.read("s")
    all_reader = store.read_all()
    await store.append("s", [Opened(owner="c")])
    assert [r.version async for r in reader] == [1, 2, 3]
    assert (await anext(all_reader)).position == 1
    await store.append("s", [Opened(owner="d")])
    assert [r.position async for r in all_reader] == [2, 3]


async def test_long_read_lets_other_tasks_run() -> None:
    """A read longer than a page suspends between pages, so other tasks progress."""
    store = InMemoryEventStore()
    await store.append("s", [Opened(owner=str(i)) for i in range(PAGE_SIZE * 2 + 1)])
    ran = asyncio.Event()

    async def other_task() -> None:
        ran.set()

    task = asyncio.create_task(other_task())
    seen_before_other_task = 0
    async for _ in store.read_all():
        if ran.is_set():
            break
        seen_before_other_task += 1
    await task
    assert seen_before_other_task == PAGE_SIZE


async def test_invalid_arguments_name_the_problem() -> None:
    """Bad read arguments raise `InvalidArgumentError` naming the argument."""
    store = InMemoryEventStore()
    with pytest.raises(InvalidArgumentError, match="after_version"):
        [r async for r in store.read("s", after_version=-1)]
    with pytest.raises(InvalidArgumentError, match="limit"):
        [r async for r in store.read_all(limit=-5)]


async def test_str_subclass_stream_id_is_stored_as_str() -> None:
    """A stream id given as a str subclass is stored as a plain str."""

    class Name(str):
        __slots__ = ()

    store = InMemoryEventStore()
    await store.append(Name("s"), [Opened(owner="ada")])
    (stream_id,) = store.streams()
    assert type(stream_id) is str
    assert await store.stream_version("s") == 1


async def test_async_with_closes_the_store() -> None:
    """Leaving ``async with`` closes the store."""
    async with InMemoryEventStore() as store:
        await store.append("s", [Opened(owner="ada")])
    with pytest.raises(ResourceClosedError, match="InMemoryEventStore is closed"):
        await store.stream_version("s")


async def test_snapshot_store_rejects_what_it_cannot_keep() -> None:
    """A non-Snapshot, or a snapshot whose state is not bytes, is rejected."""
    snapshots = InMemorySnapshotStore()
    with pytest.raises(InvalidArgumentError, match="takes a Snapshot"):
        await snapshots.save({"stream_id": "s"})  # type: ignore[arg-type]  # the wrong type is the point
    bad_state = Snapshot("s", 1, "Account", 1, {"a": 1})  # type: ignore[arg-type]  # same
    with pytest.raises(InvalidArgumentError, match="state must be bytes"):
        await snapshots.save(bad_state)
    assert await snapshots.load("s") is None


async def test_equal_version_snapshot_replaces() -> None:
    """A snapshot at the stored version replaces it (the latest save wins a tie)."""
    snapshots = InMemorySnapshotStore()
    await snapshots.save(Snapshot("s", 3, "Account", 1, b'{"a":1}'))
    again = Snapshot("s", 3, "Account", 1, b'{"a":2}')
    await snapshots.save(again)
    assert await snapshots.load("s") == again


def test_backend_satisfies_the_backend_protocol() -> None:
    """The module-level ``backend`` is what config expects of a backend."""
    assert isinstance(backend, Backend)


async def test_backend_opens_fresh_instances() -> None:
    """Each ``open_*("memory://")`` returns a new, empty resource."""
    first = await backend.open_store("memory://")
    second = await backend.open_store("MEMORY:///")
    assert first is not second
    await first.append("s", [Opened(owner="ada")])
    assert await second.stream_version("s") == 0
    stores: list[EventStore | SnapshotStore] = [
        first,
        second,
        await backend.open_snapshot_store("memory://"),
    ]
    for store in stores:
        await store.close()
    bus = await backend.open_bus("memory://")
    await bus.close()


@pytest.mark.parametrize(
    "url", ["memory://somewhere", "memory://?option=1", "sqlite:///x.db"]
)
async def test_backend_rejects_other_urls(url: str) -> None:
    """A memory URL with a host, path or query is a configuration error."""
    with pytest.raises(ConfigurationError, match="use 'memory://'"):
        await backend.open_store(url)


async def test_backend_url_error_hides_the_password() -> None:
    """A password in a bad memory URL never appears in the error."""
    with pytest.raises(ConfigurationError) as caught:
        await backend.open_bus("memory://user:hunter2@host")
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)
