"""Property: loading through a snapshot gives exactly the state of a full replay.

Random command sequences run on a small bank account whose state holds
datetimes, Decimals, a tuple and a dict, kept in public attributes or, in a
second class, in private ones behind properties; a third class keeps part of
it in attributes annotated ``Any``, ``object``, ``list[Any]`` and
``dict[str, Any]``, or with values of another type than their annotation,
which a snapshot could not restore as they are. Whatever the snapshot
cadence, and from a snapshot taken at any version, the loaded aggregate must
equal the one folded from the whole stream: same version, same attribute
types and reprs (so ``Decimal("1.10")`` and ``Decimal("1.1")`` count as
different). The same holds for snapshots the stream must not be loaded from:
those taken by an older shape of the class, and those taken from a history the
stream no longer holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.backends.memory import InMemoryEventStore, InMemorySnapshotStore
from orchestrix.errors import AggregateNotFound, SerializationError
from orchestrix.messages import Event
from orchestrix.repository import Repository

if TYPE_CHECKING:
    from collections.abc import Iterator

ACCOUNT_ID = "acc-property"


@dataclass(frozen=True, kw_only=True, slots=True)
class Opened(Event, type="test.snapshots.opened"):
    owner: str
    at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposited(Event, type="test.snapshots.deposited"):
    amount: Decimal
    at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Withdrawn(Event, type="test.snapshots.withdrawn"):
    amount: Decimal
    at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitSet(Event, type="test.snapshots.limit-set"):
    name: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True, slots=True)
class Frozen(Event, type="test.snapshots.frozen"):
    frozen: bool


class DomainError(Exception):
    pass


class Account(AggregateRoot, type="test.snapshots.account"):
    owner: str | None
    balance: Decimal
    last_activity: datetime | None
    frozen: bool
    history: tuple[Decimal, ...]
    limits: dict[str, Decimal]

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = None
        self.balance = Decimal(0)
        self.last_activity = None
        self.frozen = False
        self.history = ()
        self.limits = {}

    def open(self, owner: str, at: datetime) -> None:
        if self.owner is not None:
            raise DomainError
        self._record(Opened(owner=owner, at=at))

    def deposit(self, amount: Decimal, at: datetime) -> None:
        if self.frozen:
            raise DomainError
        self._record(Deposited(amount=amount, at=at))

    def withdraw(self, amount: Decimal, at: datetime) -> None:
        if self.frozen or amount > self.balance + self.limits.get("overdraft", 0):
            raise DomainError
        self._record(Withdrawn(amount=amount, at=at))

    def set_limit(self, name: str, amount: Decimal) -> None:
        self._record(LimitSet(name=name, amount=amount))

    def freeze(self, frozen: bool) -> None:
        if frozen == self.frozen:
            raise DomainError
        self._record(Frozen(frozen=frozen))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.owner = event.owner
        self.last_activity = event.at

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount
        self.history = (*self.history, event.amount)
        self.last_activity = event.at

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount
        self.history = (*self.history, -event.amount)
        self.last_activity = event.at

    @applies(LimitSet)
    def _limit_set(self, event: LimitSet) -> None:
        self.limits[event.name] = event.amount

    @applies(Frozen)
    def _frozen(self, event: Frozen) -> None:
        self.frozen = event.frozen


class SealedAccount(AggregateRoot, type="test.snapshots.sealed-account"):
    """The same account keeping its state private, behind read-only properties."""

    _owner: str | None
    _balance: Decimal
    _last_activity: datetime | None
    __frozen: bool  # name-mangled to _SealedAccount__frozen
    _history: tuple[Decimal, ...]
    _limits: dict[str, Decimal]

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self._owner = None
        self._balance = Decimal(0)
        self._last_activity = None
        self.__frozen = False
        self._history = ()
        self._limits = {}

    @property
    def balance(self) -> Decimal:
        return self._balance

    @property
    def frozen(self) -> bool:
        return self.__frozen

    def open(self, owner: str, at: datetime) -> None:
        if self._owner is not None:
            raise DomainError
        self._record(Opened(owner=owner, at=at))

    def deposit(self, amount: Decimal, at: datetime) -> None:
        if self.__frozen:
            raise DomainError
        self._record(Deposited(amount=amount, at=at))

    def withdraw(self, amount: Decimal, at: datetime) -> None:
        if self.__frozen or amount > self._balance + self._limits.get("overdraft", 0):
            raise DomainError
        self._record(Withdrawn(amount=amount, at=at))

    def set_limit(self, name: str, amount: Decimal) -> None:
        self._record(LimitSet(name=name, amount=amount))

    def freeze(self, frozen: bool) -> None:
        if frozen == self.__frozen:
            raise DomainError
        self._record(Frozen(frozen=frozen))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self._owner = event.owner
        self._last_activity = event.at

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self._balance += event.amount
        self._history = (*self._history, event.amount)
        self._last_activity = event.at

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self._balance -= event.amount
        self._history = (*self._history, -event.amount)
        self._last_activity = event.at

    @applies(LimitSet)
    def _limit_set(self, event: LimitSet) -> None:
        self._limits[event.name] = event.amount

    @applies(Frozen)
    def _frozen(self, event: Frozen) -> None:
        self.__frozen = event.frozen


class LooseAccount(AggregateRoot, type="test.snapshots.loose-account"):
    """The account keeping part of its state in loosely annotated attributes.

    Deposits, an overdraft and freezing put values there that the annotations
    cannot restore (a tuple of an aware datetime and a Decimal in list[Any], a
    Decimal in object and in dict[str, Any], an aware datetime in Any, a tuple
    in list[str]); the other commands put plain JSON values in their place, so
    that some states can be snapshotted and others cannot.
    """

    owner: Any
    balance: Decimal
    last: object
    last_activity: Any
    frozen: bool
    history: list[Any]
    limits: dict[str, Any]
    labels: list[str]

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = None
        self.balance = Decimal(0)
        self.last = None
        self.last_activity = None
        self.frozen = False
        self.history = []
        self.limits = {}
        self.labels = []

    def open(self, owner: str, at: datetime) -> None:
        if self.owner is not None:
            raise DomainError
        self._record(Opened(owner=owner, at=at))

    def deposit(self, amount: Decimal, at: datetime) -> None:
        if self.frozen:
            raise DomainError
        self._record(Deposited(amount=amount, at=at))

    def withdraw(self, amount: Decimal, at: datetime) -> None:
        overdraft = Decimal(self.limits.get("overdraft", 0))
        if self.frozen or amount > self.balance + overdraft:
            raise DomainError
        self._record(Withdrawn(amount=amount, at=at))

    def set_limit(self, name: str, amount: Decimal) -> None:
        self._record(LimitSet(name=name, amount=amount))

    def freeze(self, frozen: bool) -> None:
        if frozen == self.frozen:
            raise DomainError
        self._record(Frozen(frozen=frozen))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.owner = event.owner
        self.last_activity = event.at.isoformat()

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount
        self.history = [*self.history[-2:], (event.at, event.amount)]
        self.last = event.amount
        self.last_activity = event.at

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount
        entry = [event.at.isoformat(), str(-event.amount)]
        self.history = [*self.history[-2:], entry]
        self.last = str(event.amount)
        self.last_activity = event.at.isoformat()

    @applies(LimitSet)
    def _limit_set(self, event: LimitSet) -> None:
        if event.name == "overdraft":
            self.limits[event.name] = event.amount
        else:  # a daily limit replaces the overdraft
            self.limits = {event.name: str(event.amount)}

    @applies(Frozen)
    def _frozen(self, event: Frozen) -> None:
        self.frozen = event.frozen
        if event.frozen:
            self.labels = ("frozen",)  # type: ignore[assignment]  # the misfit under test
        else:
            self.labels = ["thawed"]


class AccountBeforeLimits(AggregateRoot, type="test.snapshots.account"):
    """Account as an older release shipped it, before limits were added.

    The release that added them left snapshot_version at 1.
    """

    owner: str | None
    balance: Decimal
    last_activity: datetime | None
    frozen: bool
    history: tuple[Decimal, ...]

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = None
        self.balance = Decimal(0)
        self.last_activity = None
        self.frozen = False
        self.history = ()

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.owner = event.owner
        self.last_activity = event.at

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount
        self.history = (*self.history, event.amount)
        self.last_activity = event.at

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount
        self.history = (*self.history, -event.amount)
        self.last_activity = event.at

    @applies(LimitSet)
    def _limit_set(self, event: LimitSet) -> None:
        del event

    @applies(Frozen)
    def _frozen(self, event: Frozen) -> None:
        self.frozen = event.frozen


class AccountWithNickname(Account, type="test.snapshots.account"):
    """Account as an older release shipped it, with a field removed since."""

    nickname: str

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.nickname = "ada"


class AccountWithRequiredOwner(Account, type="test.snapshots.account"):
    """Account as an older release shipped it, with a field retyped since."""

    owner: str


# Classes whose snapshots Account must never restore; none bumped the version.
OLDER_SHAPES = [AccountBeforeLimits, AccountWithNickname, AccountWithRequiredOwner]

AnyAccount = Account | SealedAccount | LooseAccount


def state_of(account: AggregateRoot) -> tuple[int, dict[str, tuple[type, str]]]:
    """Return the version and every attribute's exact type and repr."""
    return account.version, {
        name: (type(value), repr(value)) for name, value in vars(account).items()
    }


def plain_json(value: object) -> bool:
    """Tell whether *value* is plain JSON, which Any and object restore as it is."""
    if value is None or type(value) in (str, int, bool):
        return True
    if type(value) is list:
        return all(map(plain_json, value))
    if type(value) is dict:
        return all(type(key) is str and plain_json(v) for key, v in value.items())
    return False


def restores_exactly(account: AnyAccount) -> bool:
    """Tell, without orchestrix, whether a snapshot would restore *account* as is."""
    if not isinstance(account, LooseAccount):
        return True
    loose = [
        account.owner,
        account.last,
        account.last_activity,
        account.history,
        account.limits,
    ]
    return all(map(plain_json, loose)) and type(account.labels) is list


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 -- hypothesis bounds are naive
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001 -- hypothesis bounds are naive
    timezones=st.just(UTC) | offsets,
)
amounts = st.decimals(
    min_value=Decimal("0.01"),
    max_value=Decimal(10_000),
    allow_nan=False,
    allow_infinity=False,
)
commands = st.one_of(
    st.tuples(st.just("deposit"), amounts, moments),
    st.tuples(st.just("withdraw"), amounts, moments),
    st.tuples(st.just("set_limit"), st.sampled_from(["overdraft", "daily"]), amounts),
    st.tuples(st.just("freeze"), st.booleans()),
)
# Each step: a command, then whether to save (and reload) afterwards.
steps = st.lists(st.tuples(commands, st.booleans()), max_size=25)


class Collector(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def repository_log() -> Iterator[list[logging.LogRecord]]:
    """Collect what the repository logs, at every level, while the block runs."""
    logger = logging.getLogger("orchestrix.repository")
    collector = Collector()
    level = logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    try:
        yield collector.records
    finally:
        logger.removeHandler(collector)
        logger.setLevel(level)


def run(account: AnyAccount, command: tuple[Any, ...]) -> None:
    """Run one command; a rejected command records nothing."""
    name, *args = command
    with contextlib.suppress(DomainError):
        getattr(account, name)(*args)


async def check(
    cls: type[AnyAccount], script: list[tuple[tuple[Any, ...], bool]], every: int
) -> None:
    """Run *script* through a snapshotting repository and compare every load."""
    async with InMemoryEventStore() as store, InMemorySnapshotStore() as snapshots:
        cached = Repository(cls, store, snapshots=snapshots, snapshot_every=every)
        full = Repository(cls, store)
        account = cls(ACCOUNT_ID)
        account.open("ada", datetime(2026, 1, 1, tzinfo=UTC))
        for command, save in [*script, (("freeze", True), True)]:
            run(account, command)
            if save:
                await cached.save(account)
                through_snapshot = await cached.get(ACCOUNT_ID)
                replayed = await full.get(ACCOUNT_ID)
                assert state_of(through_snapshot) == state_of(replayed)
                # Carry on with the aggregate loaded through the snapshot.
                account = through_snapshot
        stored = store.events(ACCOUNT_ID)
        final = state_of(cls.from_events(ACCOUNT_ID, stored))
        for version in range(1, len(stored) + 1):
            folded = cls.from_events(ACCOUNT_ID, stored[:version])
            try:
                snapshot = folded.to_snapshot()
            except SerializationError:
                # Refused exactly when a value would come back as another.
                assert not restores_exactly(folded)
                continue
            assert restores_exactly(folded)
            restored = cls.from_snapshot(snapshot)
            assert state_of(restored) == state_of(folded)
            async with InMemorySnapshotStore() as at_version:
                await at_version.save(snapshot)
                repo = Repository(cls, store, snapshots=at_version)
                with repository_log() as logged:
                    assert state_of(await repo.get(ACCOUNT_ID)) == final
                # Nothing logged: the snapshot was used, not set aside.
                assert logged == []


@pytest.mark.parametrize(
    "cls", [Account, SealedAccount, LooseAccount], ids=["public", "private", "loose"]
)
@settings(max_examples=200, deadline=None)
@given(script=steps, every=st.integers(min_value=1, max_value=6))
def test_snapshot_load_equals_full_replay(
    cls: type[AnyAccount], script: list[tuple[tuple[Any, ...], bool]], every: int
) -> None:
    """Through any snapshot, at any cadence, a load equals a full replay.

    This holds whether the state is in public or private attributes, or in
    loosely annotated ones: a state that a snapshot would not restore as it is
    is never snapshotted (exactly those), and loads replay instead.
    """
    asyncio.run(check(cls, script, every))


async def load(repo: Repository[Account]) -> object:
    """Return the loaded account's state, or the error the load raised."""
    try:
        return state_of(await repo.get(ACCOUNT_ID))
    except AggregateNotFound as exc:
        return type(exc)


async def check_older_shape(
    script: list[tuple[tuple[Any, ...], bool]],
    shape: type[Account | AccountBeforeLimits],
    data: st.DataObject,
) -> None:
    """Snapshot the stream of *script* with *shape*, then load it with Account."""
    async with InMemoryEventStore() as store, InMemorySnapshotStore() as snapshots:
        account = Account(ACCOUNT_ID)
        account.open("ada", datetime(2026, 1, 1, tzinfo=UTC))
        for command, _ in script:
            run(account, command)
        await Repository(Account, store).save(account)
        stored = store.events(ACCOUNT_ID)
        version = data.draw(st.integers(min_value=1, max_value=len(stored)))
        old = shape.from_events(ACCOUNT_ID, stored[:version]).to_snapshot()
        assert not Account.accepts_snapshot(old)
        await snapshots.save(old)
        cached = Repository(Account, store, snapshots=snapshots)
        assert await load(cached) == await load(Repository(Account, store))


@settings(max_examples=100, deadline=None)
@given(script=steps, shape=st.sampled_from(OLDER_SHAPES), data=st.data())
def test_snapshot_of_an_older_shape_is_never_used(
    script: list[tuple[tuple[Any, ...], bool]],
    shape: type[Account | AccountBeforeLimits],
    data: st.DataObject,
) -> None:
    """A snapshot taken by an older shape of the class is never restored.

    Fields added, removed or retyped without a bump of snapshot_version change
    the state fingerprint, so the load equals a full replay.
    """
    asyncio.run(check_older_shape(script, shape, data))


async def check_other_history(
    lost_script: list[tuple[tuple[Any, ...], bool]],
    kept: int,
    regrown_script: list[tuple[tuple[Any, ...], bool]],
    data: st.DataObject,
) -> None:
    """Snapshot a history, keep *kept* of its events, append *regrown_script*."""
    async with (
        InMemoryEventStore() as lost,
        InMemoryEventStore() as store,
        InMemorySnapshotStore() as snapshots,
    ):
        account = Account(ACCOUNT_ID)
        account.open("ada", datetime(2026, 1, 1, tzinfo=UTC))
        for command, _ in lost_script:
            run(account, command)
        await Repository(Account, lost).save(account)
        history = lost.events(ACCOUNT_ID)
        version = data.draw(st.integers(min_value=1, max_value=len(history)))
        await snapshots.save(
            Account.from_events(ACCOUNT_ID, history[:version]).to_snapshot()
        )
        # The event store restored from a backup holding the first *kept*
        # events, then used again.
        kept = min(kept, len(history))
        full = Repository(Account, store)
        if kept:
            await store.append(ACCOUNT_ID, history[:kept])
            account = await full.get(ACCOUNT_ID)
        elif regrown_script:
            account = Account(ACCOUNT_ID)
            account.open("bob", datetime(2026, 2, 1, tzinfo=UTC))
        for command, _ in regrown_script:
            run(account, command)
        if kept or regrown_script:
            await full.save(account)
        cached = Repository(Account, store, snapshots=snapshots)
        with repository_log() as logged:
            assert await load(cached) == await load(full)
        # Set aside, with a warning, exactly when the stream lacks its history.
        warned = [r for r in logged if r.levelno == logging.WARNING]
        assert len(warned) == (version > kept)


@settings(max_examples=150, deadline=None)
@given(
    lost_script=steps,
    kept=st.integers(min_value=0, max_value=30),
    regrown_script=steps,
    data=st.data(),
)
def test_snapshot_from_another_history_is_never_used(
    lost_script: list[tuple[tuple[Any, ...], bool]],
    kept: int,
    regrown_script: list[tuple[tuple[Any, ...], bool]],
    data: st.DataObject,
) -> None:
    """A snapshot of a history the stream no longer holds never changes a load.

    The stream may be shorter than the snapshot, empty, or grown past it again
    with other events: the load equals a full replay of the stream as it is.
    """
    asyncio.run(check_other_history(lost_script, kept, regrown_script, data))


def test_state_comparison_tells_decimal_exponents_apart() -> None:
    """The property compares exact reprs, so 1.10 and 1.1 differ."""
    one = Account(ACCOUNT_ID)
    other = Account(ACCOUNT_ID)
    one.balance = Decimal("1.10")
    other.balance = Decimal("1.1")
    assert state_of(one) != state_of(other)
