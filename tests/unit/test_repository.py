"""Unit tests for `orchestrix.repository.Repository` on the in-memory backends."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from orchestrix import ANY, ExpectedVersion, Recorded
from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.backends.memory import (
    InMemoryEventStore,
    InMemoryMessageBus,
    InMemorySnapshotStore,
)
from orchestrix.codec import decode_state, encode_state
from orchestrix.errors import (
    AggregateNotFound,
    ConcurrencyError,
    ConfigurationError,
    HandlerError,
    InvalidArgumentError,
    ResourceClosedError,
)
from orchestrix.messages import Event
from orchestrix.protocols import AppendResult, Snapshot
from orchestrix.repository import Repository

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

LOGGER = "orchestrix.repository"


@dataclass(frozen=True, kw_only=True, slots=True)
class Opened(Event, type="test.repository.opened"):
    account_id: str
    at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposited(Event, type="test.repository.deposited"):
    account_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True, slots=True)
class ParcelSent(Event, type="test.repository.parcel-sent"):
    parcel_id: str


class Account(AggregateRoot, type="test.repository.account"):
    opened_at: datetime | None
    balance: Decimal

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.opened_at = None
        self.balance = Decimal(0)

    def open(self) -> None:
        self._record(
            Opened(account_id=self.id, at=datetime(2026, 3, 4, 5, 6, tzinfo=UTC))
        )

    def deposit(self, amount: Decimal | int | str) -> None:
        self._record(Deposited(account_id=self.id, amount=Decimal(amount)))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.opened_at = event.at

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount


class Parcel(AggregateRoot, type="test.repository.parcel"):
    def send(self) -> None:
        self._record(ParcelSent(parcel_id=self.id))

    @applies(ParcelSent)
    def _sent(self, event: ParcelSent) -> None:
        del event


@pytest.fixture
async def store() -> AsyncIterator[InMemoryEventStore]:
    async with InMemoryEventStore() as store:
        yield store


@pytest.fixture
async def snapshots() -> AsyncIterator[InMemorySnapshotStore]:
    async with InMemorySnapshotStore() as snapshots:
        yield snapshots


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryMessageBus]:
    async with InMemoryMessageBus() as bus:
        yield bus


class Reader:
    """An async iterator over *records* that counts what its reader takes.

    A plain iterator, not an async generator: it has no ``aclose``, as a
    third-party backend's reads may not.
    """

    def __init__(self, records: AsyncIterator[Recorded]) -> None:
        self._records = records
        self.taken = 0

    def __aiter__(self) -> Reader:
        return self

    async def __anext__(self) -> Recorded:
        recorded = await anext(self._records)
        self.taken += 1
        return recorded


@dataclass
class CountingStore:
    """An event store that delegates to another and records every read it serves.

    Attributes:
        reads: The *after_version* of each `read`, with its `Reader`.
        versions_asked: How many times `stream_version` was called.
    """

    inner: InMemoryEventStore
    reads: list[tuple[int, Reader]] = field(default_factory=list)
    versions_asked: int = 0

    async def append(
        self,
        stream_id: str,
        events: Sequence[Event],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        return await self.inner.append(
            stream_id, events, expected_version=expected_version
        )

    def read(
        self, stream_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> AsyncIterator[Recorded]:
        reader = Reader(
            self.inner.read(stream_id, after_version=after_version, limit=limit)
        )
        self.reads.append((after_version, reader))
        return reader

    def read_all(
        self, *, after_position: int = 0, limit: int | None = None
    ) -> AsyncIterator[Recorded]:
        return self.inner.read_all(after_position=after_position, limit=limit)

    async def stream_version(self, stream_id: str) -> int:
        self.versions_asked += 1
        return await self.inner.stream_version(stream_id)

    async def close(self) -> None:
        await self.inner.close()

    def read_log(self) -> list[tuple[int, int]]:
        """Return each read as (after_version, records taken)."""
        return [(after, reader.taken) for after, reader in self.reads]


def with_state(snapshot: Snapshot, **changes: object) -> Snapshot:
    """Return *snapshot* with some state values replaced, its checks kept."""
    state = decode_state(snapshot.state)
    state.update(changes)
    return replace(snapshot, state=encode_state(state))


def new_account(aggregate_id: str = "acc-1", *deposits: int) -> Account:
    """Return an unsaved account, opened, with *deposits* recorded."""
    account = Account(aggregate_id)
    account.open()
    for amount in deposits:
        account.deposit(amount)
    return account


# --- construction ------------------------------------------------------------


@pytest.mark.parametrize("every", [0, -3, True, 2.5, "10"])
def test_snapshot_every_must_be_a_positive_int(
    every: Any, store: InMemoryEventStore, snapshots: InMemorySnapshotStore
):
    """snapshot_every below 1 or not an int is rejected, naming the option."""
    with pytest.raises(ConfigurationError, match="snapshot_every must be an int"):
        Repository(Account, store, snapshots=snapshots, snapshot_every=every)


def test_snapshot_every_needs_a_snapshot_store(store: InMemoryEventStore):
    """Asking for snapshots without a snapshot store is a configuration error."""
    with pytest.raises(ConfigurationError, match="needs a snapshot store"):
        Repository(Account, store, snapshot_every=10)


@pytest.mark.parametrize("cls", [dict, "Account", Opened])
def test_aggregate_class_is_checked(cls: Any, store: InMemoryEventStore):
    """Only AggregateRoot subclasses make a repository."""
    with pytest.raises(ConfigurationError, match="AggregateRoot subclass"):
        Repository(cls, store)


def test_repr_names_class_and_components(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    bus: InMemoryMessageBus,
):
    """The repr shows the aggregate class, the component types and the cadence."""
    full = Repository(Account, store, snapshots=snapshots, snapshot_every=50, bus=bus)
    assert repr(full) == (
        "Repository(Account, store=InMemoryEventStore, "
        "snapshots=InMemorySnapshotStore, snapshot_every=50, bus=InMemoryMessageBus)"
    )
    assert repr(Repository(Account, store)) == (
        "Repository(Account, store=InMemoryEventStore, snapshots=None, "
        "snapshot_every=None, bus=None)"
    )


def test_properties_return_the_components(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    bus: InMemoryMessageBus,
):
    """The constructor arguments are readable back."""
    repo = Repository(Account, store, snapshots=snapshots, snapshot_every=5, bus=bus)
    assert repo.aggregate_cls is Account
    assert repo.store is store
    assert repo.snapshots is snapshots
    assert repo.snapshot_every == 5
    assert repo.bus is bus


# --- get and save ------------------------------------------------------------


async def test_get_missing_aggregate_raises_not_found(store: InMemoryEventStore):
    """A stream without events is AggregateNotFound, also a LookupError."""
    repo = Repository(Account, store)
    with pytest.raises(AggregateNotFound) as info:
        await repo.get("nope")
    assert isinstance(info.value, LookupError)
    assert info.value.aggregate_type == "test.repository.account"
    assert info.value.aggregate_id == "nope"
    assert "no test.repository.account with id 'nope'" in str(info.value)


async def test_get_rejects_an_invalid_id(store: InMemoryEventStore):
    """A bad stream id fails before anything is read."""
    with pytest.raises(InvalidArgumentError, match="stream id"):
        await Repository(Account, store).get("")


async def test_save_then_get_round_trips_state_and_version(store: InMemoryEventStore):
    """A saved aggregate loads back with the same state and the stream's version."""
    repo = Repository(Account, store)
    account = new_account("acc-1", 5, 7)
    result = await repo.save(account)
    assert result == AppendResult(version=3, positions=(1, 2, 3))
    assert account.version == 3
    assert account.pending_events == ()
    loaded = await repo.get("acc-1")
    assert loaded.version == 3 == await store.stream_version("acc-1")
    assert loaded.balance == Decimal(12)
    assert loaded.opened_at == datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert loaded.pending_events == ()


async def test_save_appends_only_new_events(store: InMemoryEventStore):
    """A second save appends only what was recorded since the first."""
    repo = Repository(Account, store)
    account = new_account("acc-1", 5)
    await repo.save(account)
    account.deposit(1)
    result = await repo.save(account)
    assert result.version == 3
    assert [type(e) for e in store.events("acc-1")] == [Opened, Deposited, Deposited]


async def test_concurrent_change_between_two_loads_is_rejected(
    store: InMemoryEventStore,
):
    """Two loads of one aggregate: the second save fails and writes nothing."""
    repo = Repository(Account, store)
    await repo.save(new_account("acc-1", 10))
    first = await repo.get("acc-1")
    second = await repo.get("acc-1")
    first.deposit(1)
    second.deposit(2)
    await repo.save(first)
    with pytest.raises(ConcurrencyError) as info:
        await repo.save(second)
    assert (info.value.stream_id, info.value.expected, info.value.actual) == (
        "acc-1",
        2,
        3,
    )
    assert second.version == 2
    assert len(second.pending_events) == 1
    assert (await repo.get("acc-1")).balance == Decimal(11)


async def test_two_new_aggregates_with_one_id_conflict(store: InMemoryEventStore):
    """A new aggregate expects no stream, so creating an id twice fails."""
    repo = Repository(Account, store)
    await repo.save(new_account("acc-1"))
    with pytest.raises(ConcurrencyError, match="no stream"):
        await repo.save(new_account("acc-1"))


async def test_save_with_nothing_pending_calls_nothing(
    store: InMemoryEventStore, bus: InMemoryMessageBus
):
    """Saving an aggregate with no pending events touches neither store nor bus."""
    repo = Repository(Account, store, bus=bus)
    account = new_account("acc-1", 1)
    await repo.save(account)
    bus.clear()
    await store.close()
    await bus.close()
    assert await repo.save(account) == AppendResult(version=2, positions=())
    assert account.version == 2


async def test_save_rejects_another_aggregate_class(store: InMemoryEventStore):
    """A repository saves only its own aggregate class."""
    parcel = Parcel("p-1")
    parcel.send()
    with pytest.raises(InvalidArgumentError, match=r"Repository\(Account\).*Parcel"):
        await Repository(Account, store).save(parcel)  # type: ignore[arg-type]


async def test_get_of_another_aggregates_stream_names_class_and_type(
    store: InMemoryEventStore,
):
    """Loading a stream written by another aggregate type is a clear error."""
    parcel = Parcel("shared-id")
    parcel.send()
    await Repository(Parcel, store).save(parcel)
    with pytest.raises(ConfigurationError) as info:
        await Repository(Account, store).get("shared-id")
    assert "Account 'shared-id'" in str(info.value)
    assert "'test.repository.parcel-sent' (ParcelSent)" in str(info.value)


# --- publishing --------------------------------------------------------------


async def test_save_publishes_exactly_the_saved_events_after_storing(
    store: InMemoryEventStore, bus: InMemoryMessageBus
):
    """Handlers get each saved event once, in order, and see it already stored."""
    seen: list[tuple[str, int]] = []

    async def handler(event: Event) -> None:
        seen.append((event.id, await store.stream_version("acc-1")))

    bus.subscribe(Event, handler)
    repo = Repository(Account, store, bus=bus)
    account = new_account("acc-1", 3)
    first_ids = [e.id for e in account.pending_events]
    await repo.save(account)
    account.deposit(4)
    later_id = account.pending_events[0].id
    await repo.save(account)
    assert seen == [(first_ids[0], 2), (first_ids[1], 2), (later_id, 3)]
    assert [m.id for m in bus.published] == [*first_ids, later_id]


async def test_failed_append_publishes_nothing(
    store: InMemoryEventStore, bus: InMemoryMessageBus
):
    """When the append fails, nothing reaches the bus."""
    repo = Repository(Account, store, bus=bus)
    await repo.save(new_account("acc-1"))
    bus.clear()
    with pytest.raises(ConcurrencyError):
        await repo.save(new_account("acc-1", 1))
    assert bus.published == []


async def test_handler_failure_after_append_keeps_events_committed(
    store: InMemoryEventStore, bus: InMemoryMessageBus
):
    """A failing handler raises HandlerError; the events stay stored and committed."""
    received: list[str] = []

    async def flaky(event: Event) -> None:
        received.append(type(event).__name__)
        if isinstance(event, Opened):
            msg = "projection down"
            raise RuntimeError(msg)

    bus.subscribe(Event, flaky)
    repo = Repository(Account, store, bus=bus)
    account = new_account("acc-1", 5)
    with pytest.raises(HandlerError) as info:
        await repo.save(account)
    assert received == ["Opened", "Deposited"]
    assert info.value.dispatched is not None
    assert isinstance(info.value.dispatched, Opened)
    assert any("stored, committed and published" in n for n in info.value.__notes__)
    assert account.version == 2
    assert account.pending_events == ()
    assert await store.stream_version("acc-1") == 2


async def test_several_handler_failures_are_grouped(
    store: InMemoryEventStore, bus: InMemoryMessageBus
):
    """Failures on several events come back as one HandlerError holding each."""

    async def broken(event: Event) -> None:
        raise ValueError(event.id)

    bus.subscribe(Event, broken)
    repo = Repository(Account, store, bus=bus)
    account = new_account("acc-1", 5, 6)
    with pytest.raises(HandlerError, match="3 of the 3 events") as info:
        await repo.save(account)
    assert len(info.value.exceptions) == 3
    assert all(isinstance(e, HandlerError) for e in info.value.exceptions)
    assert account.version == 3


async def test_bus_failure_other_than_handlers_stops_and_says_what_was_stored(
    store: InMemoryEventStore, bus: InMemoryMessageBus
):
    """A bus that cannot publish at all propagates its error with a note."""
    repo = Repository(Account, store, bus=bus)
    await bus.close()
    account = new_account("acc-1", 5)
    with pytest.raises(ResourceClosedError) as info:
        await repo.save(account)
    assert any("2 of them were not published" in n for n in info.value.__notes__)
    assert account.version == 2
    assert await store.stream_version("acc-1") == 2


# --- snapshots ---------------------------------------------------------------


async def test_snapshot_is_saved_when_version_crosses_a_multiple(
    store: InMemoryEventStore, snapshots: InMemorySnapshotStore
):
    """Snapshots are taken at the version a save ends on, after crossing k*N."""
    repo = Repository(Account, store, snapshots=snapshots, snapshot_every=3)
    account = new_account("acc-1", 1)
    await repo.save(account)  # version 2
    assert await snapshots.load("acc-1") is None
    account.deposit(1)
    account.deposit(1)
    await repo.save(account)  # version 4, crossed 3
    snapshot = await snapshots.load("acc-1")
    assert snapshot is not None
    assert snapshot.version == 4
    account.deposit(1)
    await repo.save(account)  # version 5, no crossing
    snapshot = await snapshots.load("acc-1")
    assert snapshot is not None
    assert snapshot.version == 4
    account.deposit(1)
    await repo.save(account)  # version 6, exactly a multiple
    snapshot = await snapshots.load("acc-1")
    assert snapshot is not None
    assert snapshot.version == 6
    assert snapshot.aggregate_type == "test.repository.account"
    assert snapshot.schema_version == 1


async def test_get_restores_the_snapshot_and_folds_only_the_tail(
    store: InMemoryEventStore, snapshots: InMemorySnapshotStore
):
    """A usable snapshot is the starting point; events after it are folded.

    The load is one snapshot read and one stream read, which starts at the
    snapshot's own last event (to check it) and takes the tail after it;
    the stream's version is never asked for.
    """
    counting = CountingStore(store)
    repo = Repository(Account, counting, snapshots=snapshots)
    account = new_account("acc-1", 1)
    await repo.save(account)
    taken = await repo.save_snapshot(account)
    account.deposit(2)
    account.deposit(3)
    await repo.save(account)
    # A state no fold of this stream produces proves the snapshot was used.
    await snapshots.save(with_state(taken, balance="1000.5"))
    counting.reads.clear()
    loaded = await repo.get("acc-1")
    assert loaded.version == 4
    assert loaded.balance == Decimal("1005.5")
    assert counting.read_log() == [(1, 3)]
    assert counting.versions_asked == 0


@pytest.mark.parametrize(
    ("aggregate_type", "schema_version"),
    [("test.repository.parcel", 1), ("test.repository.account", 7)],
)
async def test_snapshot_of_other_type_or_schema_is_ignored(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    aggregate_type: str,
    schema_version: int,
):
    """A snapshot whose type or schema version differs leads to a full replay."""
    repo = Repository(Account, store, snapshots=snapshots)
    account = new_account("acc-1", 1, 2)
    await repo.save(account)
    taken = await repo.save_snapshot(account)
    await snapshots.save(
        replace(
            with_state(taken, balance="1000"),
            aggregate_type=aggregate_type,
            schema_version=schema_version,
        )
    )
    loaded = await repo.get("acc-1")
    assert loaded.balance == Decimal(3)
    assert loaded.version == 3


async def test_unreadable_snapshot_state_falls_back_to_replay(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    caplog: pytest.LogCaptureFixture,
):
    """A snapshot whose state does not fit the class is logged and not used."""
    repo = Repository(Account, store, snapshots=snapshots)
    account = new_account("acc-1", 4)
    await repo.save(account)
    taken = await repo.save_snapshot(account)
    await snapshots.save(with_state(taken, balance={"oops": 1}))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        loaded = await repo.get("acc-1")
    assert loaded.balance == Decimal(4)
    assert "could not restore the snapshot of Account 'acc-1'" in caplog.text


async def test_snapshot_store_failure_on_load_falls_back_to_replay(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    caplog: pytest.LogCaptureFixture,
):
    """A snapshot store that fails on load costs a full replay, not the load."""
    repo = Repository(Account, store, snapshots=snapshots)
    await repo.save(new_account("acc-1", 4))
    await snapshots.close()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        loaded = await repo.get("acc-1")
    assert loaded.version == 2
    assert "could not load the snapshot" in caplog.text


async def test_failed_snapshot_write_is_logged_and_never_fails_the_save(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    bus: InMemoryMessageBus,
    caplog: pytest.LogCaptureFixture,
):
    """A snapshot store that fails on save leaves the save successful."""
    repo = Repository(Account, store, snapshots=snapshots, snapshot_every=1, bus=bus)
    await snapshots.close()
    account = new_account("acc-1", 4)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = await repo.save(account)
    assert result.version == 2
    assert len(bus.published) == 2
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING
    assert "could not save a snapshot of Account 'acc-1' at version 2" in (
        record.getMessage()
    )
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ResourceClosedError)


async def test_unsnapshottable_state_is_logged_and_never_fails_the_save(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    caplog: pytest.LogCaptureFixture,
):
    """An aggregate whose state cannot be snapshotted still saves."""
    repo = Repository(Account, store, snapshots=snapshots, snapshot_every=1)
    account = new_account("acc-1")
    account.nickname = "x"  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await repo.save(account)
    assert account.version == 1
    assert await snapshots.load("acc-1") is None
    assert "nickname has no annotation" in caplog.text


async def test_snapshot_is_taken_even_when_a_handler_fails(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    bus: InMemoryMessageBus,
):
    """Publishing errors do not skip the snapshot the save was due."""

    async def broken(event: Event) -> None:
        raise RuntimeError(event.id)

    bus.subscribe(Deposited, broken)
    repo = Repository(Account, store, snapshots=snapshots, snapshot_every=2, bus=bus)
    with pytest.raises(HandlerError):
        await repo.save(new_account("acc-1", 1))
    snapshot = await snapshots.load("acc-1")
    assert snapshot is not None
    assert snapshot.version == 2


async def test_snapshots_without_cadence_are_read_but_not_written(
    store: InMemoryEventStore, snapshots: InMemorySnapshotStore
):
    """Without snapshot_every, save writes no snapshot; save_snapshot does."""
    repo = Repository(Account, store, snapshots=snapshots)
    account = new_account("acc-1", 1, 2, 3)
    await repo.save(account)
    assert await snapshots.load("acc-1") is None
    taken = await repo.save_snapshot(account)
    assert await snapshots.load("acc-1") == taken
    assert taken.version == 4


async def test_save_snapshot_without_snapshot_store_is_an_error(
    store: InMemoryEventStore,
):
    """`save_snapshot` needs a snapshot store."""
    repo = Repository(Account, store)
    account = new_account("acc-1")
    await repo.save(account)
    with pytest.raises(ConfigurationError, match="has no snapshot store"):
        await repo.save_snapshot(account)


async def test_save_snapshot_propagates_errors(
    store: InMemoryEventStore, snapshots: InMemorySnapshotStore
):
    """Called directly, `save_snapshot` raises what went wrong."""
    repo = Repository(Account, store, snapshots=snapshots)
    with pytest.raises(InvalidArgumentError, match="save it first"):
        await repo.save_snapshot(new_account("acc-1"))


# --- snapshots that do not fit their stream ----------------------------------


async def snapshot_a_lost_history(
    snapshots: InMemorySnapshotStore, *deposits: int
) -> list[Event]:
    """Save and snapshot an account in an event store that is then lost.

    Returns:
        The events that store held, ids included, as a backup keeps them.
    """
    async with InMemoryEventStore() as lost:
        repo = Repository(Account, lost, snapshots=snapshots)
        account = new_account("acc-1", *deposits)
        await repo.save(account)
        await repo.save_snapshot(account)
        return lost.events("acc-1")


def fit_warning(caplog: pytest.LogCaptureFixture) -> str:
    """Return the one warning the repository logged."""
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING
    return record.getMessage()


async def test_snapshot_newer_than_its_stream_is_not_used(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    caplog: pytest.LogCaptureFixture,
):
    """A snapshot ahead of its stream (events restored from a backup) is not used.

    The load folds the whole stream, logs a warning naming the stream, the
    snapshot's version and the stream's, and a later save succeeds. Finding
    out takes the one stream read a load always makes, then the full replay,
    and never asks for the stream's version.
    """
    history = await snapshot_a_lost_history(snapshots, 1, 2, 3, 4)  # version 5
    await store.append("acc-1", history[:2])  # the backup held two events
    counting = CountingStore(store)
    repo = Repository(Account, counting, snapshots=snapshots)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        loaded = await repo.get("acc-1")
    assert loaded.version == 2
    assert loaded.balance == Decimal(1)
    assert counting.read_log() == [(4, 0), (0, 2)]
    assert counting.versions_asked == 0
    message = fit_warning(caplog)
    assert "snapshot of Account 'acc-1' at version 5" in message
    assert "stream, at version 2" in message
    loaded.deposit(7)
    assert (await repo.save(loaded)).version == 3
    assert (await repo.get("acc-1")).balance == Decimal(8)


async def test_snapshot_of_a_stream_without_events_is_not_found(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    caplog: pytest.LogCaptureFixture,
):
    """A snapshot whose stream has no events never yields an aggregate.

    `get` raises AggregateNotFound, as without the snapshot, and logs why.
    """
    await snapshot_a_lost_history(snapshots, 1)
    repo = Repository(Account, store, snapshots=snapshots)
    with (
        caplog.at_level(logging.WARNING, logger=LOGGER),
        pytest.raises(AggregateNotFound),
    ):
        await repo.get("acc-1")
    message = fit_warning(caplog)
    assert "snapshot of Account 'acc-1' at version 2" in message
    assert "stream, at version 0" in message


async def test_snapshot_of_a_rewritten_stream_is_not_used(
    store: InMemoryEventStore,
    snapshots: InMemorySnapshotStore,
    caplog: pytest.LogCaptureFixture,
):
    """A snapshot is not used once its stream was restored and grew past it.

    The stream reaches beyond the snapshot's version again, but its event at
    that version is another one than the snapshot was taken after, so a
    version check alone would restore a state this stream never had.
    """
    history = await snapshot_a_lost_history(snapshots, 1, 2, 3, 4)  # version 5
    await store.append("acc-1", history[:2])
    plain = Repository(Account, store)
    account = await plain.get("acc-1")
    for amount in (10, 20, 30, 40):
        account.deposit(amount)
    await plain.save(account)  # version 6, events 3 to 6 new
    counting = CountingStore(store)
    repo = Repository(Account, counting, snapshots=snapshots)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        loaded = await repo.get("acc-1")
    assert loaded.version == 6
    assert loaded.balance == Decimal(101)
    # The read that found the other event took no more, then the full replay.
    assert counting.read_log() == [(4, 1), (0, 6)]
    message = fit_warning(caplog)
    assert "snapshot of Account 'acc-1' at version 5" in message
    assert "stream, at version 6" in message
    assert f"not {history[4].id!r}" in message
