"""Unit tests for `orchestrix.repository.Repository` on the in-memory backends."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.backends.memory import (
    InMemoryEventStore,
    InMemoryMessageBus,
    InMemorySnapshotStore,
)
from orchestrix.codec import encode_state
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
    from collections.abc import AsyncIterator

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
    """A usable snapshot is the starting point; events after it are folded."""
    repo = Repository(Account, store, snapshots=snapshots)
    await repo.save(new_account("acc-1", 1, 2, 3))
    # A state no fold of this stream produces proves the snapshot was used.
    await snapshots.save(
        Snapshot(
            "acc-1",
            2,
            "test.repository.account",
            1,
            encode_state({"balance": "1000.5", "opened_at": None}),
        )
    )
    loaded = await repo.get("acc-1")
    assert loaded.version == 4
    assert loaded.balance == Decimal("1005.5")


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
    await repo.save(new_account("acc-1", 1, 2))
    await snapshots.save(
        Snapshot(
            "acc-1",
            2,
            aggregate_type,
            schema_version,
            encode_state({"balance": "1000"}),
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
    await repo.save(new_account("acc-1", 4))
    bad = encode_state({"balance": {"oops": 1}})
    await snapshots.save(Snapshot("acc-1", 2, "test.repository.account", 1, bad))
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
