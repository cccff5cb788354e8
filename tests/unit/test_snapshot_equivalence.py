"""Property: loading through a snapshot gives exactly the state of a full replay.

Random command sequences run on a small bank account whose state holds
datetimes, Decimals, a tuple and a dict. Whatever the snapshot cadence, and
from a snapshot taken at any version, the loaded aggregate must equal the one
folded from the whole stream: same version, same attribute types and reprs
(so ``Decimal("1.10")`` and ``Decimal("1.1")`` count as different).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.backends.memory import InMemoryEventStore, InMemorySnapshotStore
from orchestrix.messages import Event
from orchestrix.repository import Repository

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


def state_of(account: Account) -> tuple[int, dict[str, tuple[type, str]]]:
    """Return the version and every attribute's exact type and repr."""
    return account.version, {
        name: (type(value), repr(value)) for name, value in vars(account).items()
    }


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


def run(account: Account, command: tuple[Any, ...]) -> None:
    """Run one command; a rejected command records nothing."""
    name, *args = command
    with contextlib.suppress(DomainError):
        getattr(account, name)(*args)


async def check(script: list[tuple[tuple[Any, ...], bool]], every: int) -> None:
    """Run *script* through a snapshotting repository and compare every load."""
    async with InMemoryEventStore() as store, InMemorySnapshotStore() as snapshots:
        cached = Repository(Account, store, snapshots=snapshots, snapshot_every=every)
        full = Repository(Account, store)
        account = Account(ACCOUNT_ID)
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
        final = state_of(Account.from_events(ACCOUNT_ID, stored))
        for version in range(1, len(stored) + 1):
            folded = Account.from_events(ACCOUNT_ID, stored[:version])
            restored = Account.from_snapshot(folded.to_snapshot())
            assert state_of(restored) == state_of(folded)
            async with InMemorySnapshotStore() as at_version:
                await at_version.save(folded.to_snapshot())
                repo = Repository(Account, store, snapshots=at_version)
                assert state_of(await repo.get(ACCOUNT_ID)) == final


@settings(max_examples=200, deadline=None)
@given(script=steps, every=st.integers(min_value=1, max_value=6))
def test_snapshot_load_equals_full_replay(
    script: list[tuple[tuple[Any, ...], bool]], every: int
) -> None:
    """Through any snapshot, at any cadence, a load equals a full replay."""
    asyncio.run(check(script, every))


def test_state_comparison_tells_decimal_exponents_apart() -> None:
    """The property compares exact reprs, so 1.10 and 1.1 differ."""
    one = Account(ACCOUNT_ID)
    other = Account(ACCOUNT_ID)
    one.balance = Decimal("1.10")
    other.balance = Decimal("1.1")
    assert state_of(one) != state_of(other)
