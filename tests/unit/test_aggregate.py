"""Unit tests for `orchestrix.aggregate`: recording, dispatch, folding, snapshots."""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar, Literal, Optional

import msgspec
import pytest

from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.backends.memory import InMemoryEventStore, InMemorySnapshotStore
from orchestrix.codec import decode_state, encode_state
from orchestrix.errors import (
    ConfigurationError,
    InvalidArgumentError,
    SerializationError,
)
from orchestrix.messages import Event
from orchestrix.protocols import Snapshot
from orchestrix.repository import Repository

OPENED_AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class Opened(Event, type="test.aggregate.opened"):
    account_id: str
    owner: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposited(Event, type="test.aggregate.deposited"):
    account_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True, slots=True)
class Withdrawn(Event, type="test.aggregate.withdrawn"):
    account_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True, slots=True)
class FeeCharged(Withdrawn, type="test.aggregate.fee-charged"):
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Tagged(Event, type="test.aggregate.tagged"):
    tag: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Closed(Event, type="test.aggregate.closed"):
    account_id: str


@dataclass(frozen=True, slots=True)
class Owner:
    name: str
    since: datetime


class InsufficientFundsError(Exception):
    pass


class Account(AggregateRoot, type="test.aggregate.account"):
    owner: Owner | None
    balance: Decimal
    history: tuple[Decimal, ...]
    tags: frozenset[str]
    by_day: dict[int, Decimal]
    _calls: list[str]

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = None
        self.balance = Decimal(0)
        self.history = ()
        self.tags = frozenset()
        self.by_day = {}
        self._calls = []

    def open(self, owner: str) -> None:
        self._record(Opened(account_id=self.id, owner=owner, time=OPENED_AT))

    def deposit(self, amount: Decimal) -> None:
        self._record(Deposited(account_id=self.id, amount=amount))

    def withdraw(self, amount: Decimal) -> None:
        if amount > self.balance:
            raise InsufficientFundsError(amount)
        self._record(Withdrawn(account_id=self.id, amount=amount))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.owner = Owner(event.owner, event.time)

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount
        self.history = (*self.history, event.amount)
        self.by_day[len(self.history)] = event.amount

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self._calls.append(type(event).__name__)
        self.balance -= event.amount
        self.history = (*self.history, -event.amount)

    @applies(Tagged)
    def _tagged(self, event: Tagged) -> None:
        self.tags = self.tags | {event.tag}


def opened_account(aggregate_id: str = "acc-1") -> Account:
    """Return an account folded from Opened and Deposited(10)."""
    return Account.from_events(
        aggregate_id,
        [
            Opened(account_id=aggregate_id, owner="ada", time=OPENED_AT),
            Deposited(account_id=aggregate_id, amount=Decimal("10.50")),
        ],
    )


# --- construction and recording --------------------------------------------


def test_new_aggregate_has_version_zero_and_nothing_pending():
    """A new aggregate starts at version 0 with its id and no pending events."""
    account = Account("acc-1")
    assert account.id == "acc-1"
    assert account.version == 0
    assert account.pending_events == ()


@pytest.mark.parametrize("bad", ["", "a\x00b", 42])
def test_invalid_id_is_rejected(bad: Any):
    """An id that no store could hold is rejected when the aggregate is created."""
    with pytest.raises(InvalidArgumentError, match="stream id"):
        Account(bad)


def test_record_applies_the_event_and_keeps_it_pending():
    """Recording applies the event at once but leaves the version unchanged."""
    account = Account("acc-1")
    account.open("ada")
    account.deposit(Decimal(5))
    assert account.balance == Decimal(5)
    assert account.owner == Owner("ada", OPENED_AT)
    assert [type(e) for e in account.pending_events] == [Opened, Deposited]
    assert account.version == 0


def test_record_returns_the_event():
    """`_record` returns the event it recorded."""
    account = Account("acc-1")
    event = Deposited(account_id="acc-1", amount=Decimal(1))
    assert account._record(event) is event


def test_record_rejects_a_non_event():
    """Recording something that is not an Event names the aggregate and the type."""
    account = Account("acc-1")
    with pytest.raises(InvalidArgumentError, match=r"Account 'acc-1'.*got str"):
        account._record("deposited")  # type: ignore[type-var]


def test_mark_committed_returns_pending_events_and_advances_version():
    """Committing empties the pending list and counts the events in the version."""
    account = Account("acc-1")
    account.open("ada")
    account.deposit(Decimal(3))
    pending = account.pending_events
    assert account.mark_committed() == pending
    assert account.pending_events == ()
    assert account.version == 2
    assert account.mark_committed() == ()
    assert account.version == 2


def test_mark_committed_with_count_keeps_later_events_pending():
    """Only the oldest *count* pending events are committed."""
    account = Account("acc-1")
    account.open("ada")
    account.deposit(Decimal(3))
    first = account.pending_events[0]
    assert account.mark_committed(1) == (first,)
    assert account.version == 1
    assert [type(e) for e in account.pending_events] == [Deposited]


@pytest.mark.parametrize("count", [-1, 3, True])
def test_mark_committed_rejects_a_bad_count(count: Any):
    """Committing more events than are pending (or a negative count) fails."""
    account = Account("acc-1")
    account.open("ada")
    account.deposit(Decimal(3))
    with pytest.raises(InvalidArgumentError, match="2 are pending"):
        account.mark_committed(count)
    assert account.version == 0


def test_pending_events_is_a_snapshot_of_the_list():
    """The returned tuple does not change when more events are recorded."""
    account = Account("acc-1")
    account.open("ada")
    before = account.pending_events
    account.deposit(Decimal(1))
    assert len(before) == 1
    assert len(account.pending_events) == 2


def test_failed_invariant_records_nothing():
    """A command that raises leaves state and pending events untouched."""
    account = opened_account()
    with pytest.raises(InsufficientFundsError):
        account.withdraw(Decimal(100))
    assert account.pending_events == ()
    assert account.balance == Decimal("10.50")


# --- folding -----------------------------------------------------------------


def test_from_events_folds_the_stream_and_counts_the_version():
    """Folding a stream rebuilds the state; the version is the number of events."""
    account = opened_account()
    assert account.version == 2
    assert account.pending_events == ()
    assert account.balance == Decimal("10.50")
    assert account.history == (Decimal("10.50"),)


def test_from_events_with_no_events_gives_a_new_aggregate():
    """Folding an empty stream gives version 0."""
    assert Account.from_events("acc-1", []).version == 0


def test_replay_advances_the_version_by_one():
    """`replay` applies one stored event and counts it."""
    account = opened_account()
    account.replay(Deposited(account_id="acc-1", amount=Decimal(1)))
    assert account.version == 3
    assert account.balance == Decimal("11.50")


def test_replay_refuses_an_aggregate_with_pending_events():
    """Stored events must never be folded after uncommitted ones."""
    account = opened_account()
    account.deposit(Decimal(1))
    with pytest.raises(InvalidArgumentError, match="1 pending event"):
        account.replay(Deposited(account_id="acc-1", amount=Decimal(1)))
    assert account.version == 2


# --- dispatch ----------------------------------------------------------------


def test_unknown_event_type_on_record_names_class_and_type():
    """Recording an event without an apply method is a clear error."""
    account = Account("acc-1")
    with pytest.raises(ConfigurationError) as info:
        account._record(Closed(account_id="acc-1"))
    text = str(info.value)
    assert "Account 'acc-1'" in text
    assert "'test.aggregate.closed' (Closed)" in text
    assert "@applies(Closed)" in text
    assert account.pending_events == ()


def test_unknown_event_type_on_replay_is_an_error():
    """Folding a stream holding an unhandled event type fails and names it."""
    with pytest.raises(ConfigurationError, match="test.aggregate.closed"):
        Account.from_events("acc-1", [Closed(account_id="acc-1")])


def test_event_subclass_dispatches_to_nearest_handled_base():
    """A subclass of a handled event goes to its base class's apply method."""
    account = opened_account()
    account.replay(FeeCharged(account_id="acc-1", amount=Decimal(1), reason="x"))
    account.replay(FeeCharged(account_id="acc-1", amount=Decimal(1), reason="y"))
    assert account.balance == Decimal("8.50")
    assert account._calls == ["FeeCharged", "FeeCharged"]


def test_specific_apply_method_wins_over_base_one():
    """The apply method for the event's own class beats one for its base."""

    class Strict(Account):
        @applies(FeeCharged)
        def _fee(self, event: FeeCharged) -> None:
            self._calls.append("fee")

    account = Strict("s")
    account.replay(FeeCharged(account_id="s", amount=Decimal(1), reason="x"))
    account.replay(Withdrawn(account_id="s", amount=Decimal(1)))
    assert account._calls == ["fee", "Withdrawn"]


def test_base_event_handler_catches_every_subclass():
    """An apply method for `Event` receives every event without its own method."""

    class Log(AggregateRoot):
        def __init__(self, aggregate_id: str) -> None:
            super().__init__(aggregate_id)
            self._seen: list[str] = []

        @applies(Event)
        def _any(self, event: Event) -> None:
            self._seen.append(event.type_name())

    log = Log.from_events("l", [Tagged(tag="a"), Closed(account_id="l")])
    assert log._seen == ["test.aggregate.tagged", "test.aggregate.closed"]


def test_subclass_overriding_apply_method_by_name_is_used():
    """Overriding an apply method without the decorator keeps its event types."""

    class Doubling(Account):
        def _deposited(self, event: Deposited) -> None:
            self.balance += 2 * event.amount

    account = Doubling.from_events("d", [Deposited(account_id="d", amount=Decimal(2))])
    assert account.balance == Decimal(4)


def test_redecorated_name_replaces_base_mapping():
    """A subclass that redecorates a name drops what that name applied before."""

    class Retargeted(Account):
        @applies(Closed)
        def _tagged(self, event: Event) -> None:
            self.tags = frozenset({"closed"})

    account = Retargeted.from_events("r", [Closed(account_id="r")])
    assert account.tags == frozenset({"closed"})
    with pytest.raises(ConfigurationError, match="test.aggregate.tagged"):
        account.replay(Tagged(tag="x"))


def test_stacked_and_multi_type_decorators_all_register():
    """`@applies(A, B)` and stacked decorators register every type."""

    class Multi(AggregateRoot):
        count: int

        def __init__(self, aggregate_id: str) -> None:
            super().__init__(aggregate_id)
            self.count = 0

        @applies(Tagged)
        @applies(Closed, Opened)
        def _counted(self, event: Event) -> None:
            self.count += 1

    events = [
        Tagged(tag="t"),
        Closed(account_id="m"),
        Opened(account_id="m", owner="o"),
    ]
    assert Multi.from_events("m", events).count == 3


def test_two_apply_methods_for_one_type_are_rejected():
    """Declaring two apply methods for one event type in a class fails at once."""
    with pytest.raises(ConfigurationError, match="two apply methods.*_a and _b"):

        class Twice(AggregateRoot):
            @applies(Tagged)
            def _a(self, event: Tagged) -> None:
                del event

            @applies(Tagged)
            def _b(self, event: Tagged) -> None:
                del event


def test_subclass_may_override_base_apply_method_for_a_type():
    """A subclass may apply an event type its base also applies."""

    class Quiet(Account):
        @applies(Tagged)
        def _quiet_tag(self, event: Tagged) -> None:
            self._calls.append(event.tag)

    account = Quiet.from_events("q", [Tagged(tag="x")])
    assert account.tags == frozenset()
    assert account._calls == ["x"]


@pytest.mark.parametrize(
    ("args", "match"),
    [((), "at least one Event"), ((int,), "Event subclasses"), (("x",), "'x'")],
)
def test_applies_rejects_bad_arguments(args: tuple[Any, ...], match: str):
    """`@applies` needs Event classes and says what it got instead."""
    with pytest.raises(ConfigurationError, match=match):
        applies(*args)


def test_applies_rejects_non_functions():
    """`@applies` decorates plain methods only."""
    with pytest.raises(ConfigurationError, match="staticmethod"):
        applies(Tagged)(staticmethod(lambda event: None))


# --- class options -----------------------------------------------------------


def test_aggregate_type_defaults_to_qualified_name():
    """Without type=, the aggregate type is the class's qualified name."""

    class Plain(AggregateRoot):
        pass

    assert Plain.aggregate_type == (
        "test_aggregate_type_defaults_to_qualified_name.<locals>.Plain"
    )
    assert Account.aggregate_type == "test.aggregate.account"


def test_aggregate_type_from_class_attribute_is_kept():
    """A class that sets aggregate_type in its body keeps that name."""

    class Named(AggregateRoot):
        aggregate_type: ClassVar[str] = "named.thing"

    assert Named.aggregate_type == "named.thing"


def test_subclass_gets_its_own_aggregate_type():
    """A subclass does not inherit its base's type name."""

    class Savings(Account):
        pass

    assert Savings.aggregate_type.endswith("Savings")


@pytest.mark.parametrize("bad", ["", 3])
def test_bad_type_keyword_is_rejected(bad: Any):
    """type= must be a non-empty string."""
    with pytest.raises(ConfigurationError, match="type= must be a non-empty str"):

        class Bad(AggregateRoot, type=bad):
            pass


@pytest.mark.parametrize("bad", [0, True, "2", 2**31])
def test_bad_snapshot_version_is_rejected(bad: Any):
    """snapshot_version must be an int from 1 to 2**31 - 1, checked at definition."""
    with pytest.raises(ConfigurationError, match="snapshot_version must be an int"):

        class Bad(AggregateRoot):
            snapshot_version = bad


def test_repr_shows_id_version_and_pending():
    """The repr names the class, the id, the version and the pending count."""
    account = opened_account()
    account.deposit(Decimal(1))
    assert repr(account) == "Account(id='acc-1', version=2, pending=1)"


# --- snapshot state ----------------------------------------------------------


def rich_account() -> Account:
    """Return an account whose state uses every kind of value the tests check."""
    account = Account.from_events(
        "acc-1",
        [
            Opened(account_id="acc-1", owner="ada", time=OPENED_AT),
            Deposited(account_id="acc-1", amount=Decimal("10.50")),
            Withdrawn(account_id="acc-1", amount=Decimal("0.25")),
            Tagged(tag="vip"),
            Tagged(tag="eur"),
        ],
    )
    account.owner = Owner(
        "ada", datetime(2026, 5, 1, tzinfo=timezone(timedelta(hours=2)))
    )
    return account


def test_snapshot_state_holds_every_attribute_as_json():
    """The default state has every attribute, private ones too, and encodes to JSON.

    AggregateRoot's own bookkeeping (id, version, pending events) is not state.
    """
    state = rich_account().snapshot_state()
    assert set(state) == {"owner", "balance", "history", "tags", "by_day", "_calls"}
    assert state["_calls"] == ["Withdrawn"]
    assert json.loads(encode_state(state))["balance"] == "10.25"


def test_restore_state_rebuilds_exact_types():
    """Datetimes, Decimals, tuples, sets, int keys and dataclasses round-trip."""
    original = rich_account()
    restored = Account("acc-1")
    restored.restore_state(decode_state(encode_state(original.snapshot_state())))
    for name in ("owner", "balance", "history", "by_day"):
        assert repr(getattr(restored, name)) == repr(getattr(original, name)), name
    # A set's iteration order depends on string hashing, so compare by value.
    assert type(restored.tags) is type(original.tags)
    assert restored.tags == original.tags
    assert isinstance(restored.history, tuple)
    assert restored.balance.as_tuple() == Decimal("10.25").as_tuple()


def test_unannotated_public_attribute_cannot_be_snapshotted():
    """A public attribute without a class annotation is a clear error."""
    account = opened_account()
    account.nickname = "x"  # type: ignore[attr-defined]
    with pytest.raises(
        ConfigurationError, match=r"Account\.nickname has no annotation"
    ):
        account.snapshot_state()


def test_unencodable_value_is_a_serialization_error():
    """A value JSON cannot represent fails with SerializationError."""

    class Holder(AggregateRoot):
        thing: object

    holder = Holder("h")
    holder.thing = object()
    with pytest.raises(SerializationError, match="cannot snapshot"):
        holder.snapshot_state()


def test_restore_state_rejects_unknown_attribute():
    """State naming an attribute the class does not annotate is never applied."""
    account = Account("acc-1")
    with pytest.raises(SerializationError, match="'nickname'.*bump"):
        account.restore_state({"nickname": "x"})
    with pytest.raises(SerializationError, match="'_version'"):
        account.restore_state({"_version": 9})


def test_restore_state_rejects_value_of_wrong_shape():
    """A value that does not fit its annotated type fails, naming the attribute."""
    account = Account("acc-1")
    with pytest.raises(SerializationError, match="'balance' does not fit"):
        account.restore_state({"balance": {"not": "a number"}})


def test_unresolvable_annotation_is_a_configuration_error():
    """Annotations naming types that cannot be resolved give a clear error."""

    class Local(AggregateRoot):
        value: Missing  # type: ignore[name-defined]  # noqa: F821 -- deliberately unresolvable

    local = Local("l")
    local.value = 1
    with pytest.raises(ConfigurationError, match="cannot resolve the annotations"):
        local.snapshot_state()


def test_custom_snapshot_state_and_restore_are_used():
    """Aggregates may override snapshot_state and restore_state together."""

    class Counter(AggregateRoot, type="test.aggregate.counter"):
        def __init__(self, aggregate_id: str) -> None:
            super().__init__(aggregate_id)
            self._count = 0

        @applies(Tagged)
        def _tagged(self, event: Tagged) -> None:
            self._count += len(event.tag)

        def snapshot_state(self) -> dict[str, Any]:
            return {"n": self._count}

        def restore_state(self, state: Any) -> None:
            self._count = int(state["n"])

    counter = Counter.from_events("c", [Tagged(tag="abc")])
    restored = Counter.from_snapshot(counter.to_snapshot())
    assert restored._count == 3
    assert restored.version == 1


def test_to_snapshot_and_from_snapshot_round_trip():
    """A snapshot carries id, version, type and schema version, and restores."""
    account = rich_account()
    snapshot = account.to_snapshot()
    assert snapshot.stream_id == "acc-1"
    assert snapshot.version == 5
    assert snapshot.aggregate_type == "test.aggregate.account"
    assert snapshot.schema_version == 1
    restored = Account.from_snapshot(snapshot)
    assert restored.version == 5
    assert restored.pending_events == ()
    for name in ("owner", "balance", "history", "tags", "by_day"):
        assert getattr(restored, name) == getattr(account, name), name


def test_to_snapshot_refuses_pending_events():
    """A snapshot reflects stored events only, so pending events forbid one."""
    account = opened_account()
    account.deposit(Decimal(1))
    with pytest.raises(InvalidArgumentError, match="1 pending event.*save it first"):
        account.to_snapshot()


def test_to_snapshot_refuses_a_new_aggregate():
    """A new aggregate (version 0) has nothing to snapshot."""
    with pytest.raises(InvalidArgumentError, match="version 0"):
        Account("acc-1").to_snapshot()


@pytest.mark.parametrize(
    ("aggregate_type", "schema_version"),
    [("test.aggregate.other", 1), ("test.aggregate.account", 2)],
)
def test_snapshot_of_other_type_or_schema_is_not_accepted(
    aggregate_type: str, schema_version: int
):
    """A snapshot of another aggregate type or schema version is never restored."""
    snapshot = replace(
        rich_account().to_snapshot(),
        aggregate_type=aggregate_type,
        schema_version=schema_version,
    )
    assert not Account.accepts_snapshot(snapshot)
    with pytest.raises(InvalidArgumentError, match="replay the stream instead"):
        Account.from_snapshot(snapshot)


def test_bumped_snapshot_version_rejects_old_snapshots():
    """Raising snapshot_version in a subclass makes old snapshots unusable."""

    class AccountV2(Account, type="test.aggregate.account-v2"):
        snapshot_version = 2

    current = AccountV2.from_events("acc-1", [Tagged(tag="vip")]).to_snapshot()
    assert AccountV2.accepts_snapshot(current)
    assert not AccountV2.accepts_snapshot(replace(current, schema_version=1))


def test_mixin_bases_are_allowed():
    """Plain mixin classes beside AggregateRoot do not disturb dispatch."""

    class Describable:
        def describe(self) -> str:
            return "described"

    class Mixed(Describable, Account):
        pass

    account = Mixed.from_events("m", [Deposited(account_id="m", amount=Decimal(2))])
    assert account.balance == Decimal(2)
    assert account.describe() == "described"


# --- what a snapshot captures, and which snapshots fit -----------------------


class Vault(AggregateRoot, type="test.aggregate.vault"):
    """Keeps its state private, behind read-only properties."""

    _balance: Decimal
    __openings: int  # name-mangled to _Vault__openings

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self._balance = Decimal(0)
        self.__openings = 0

    @property
    def balance(self) -> Decimal:
        return self._balance

    @property
    def openings(self) -> int:
        return self.__openings

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.__openings += 1

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self._balance += event.amount


def test_private_state_is_snapshotted_and_restored():
    """State kept in private and name-mangled attributes survives a snapshot."""
    vault = Vault.from_events(
        "v-1",
        [
            Opened(account_id="v-1", owner="ada"),
            Deposited(account_id="v-1", amount=Decimal("10.50")),
        ],
    )
    restored = Vault.from_snapshot(vault.to_snapshot())
    assert restored.balance == Decimal("10.50")
    assert restored.openings == 1
    assert vars(restored) == vars(vault)


def test_unannotated_private_attribute_cannot_be_snapshotted():
    """A private attribute without a class annotation is refused, never dropped."""
    account = opened_account()
    account._nickname = "x"  # type: ignore[attr-defined]
    with pytest.raises(
        ConfigurationError,
        match=r"Account\._nickname has no annotation.*\(_nickname: <type>\)",
    ):
        account.snapshot_state()


def test_restore_state_requires_every_attribute_the_constructor_sets():
    """A state lacking an attribute the constructor sets is refused.

    Restoring it would leave the constructor's default in place: a misread.
    """
    state = rich_account().snapshot_state()
    del state["by_day"]
    with pytest.raises(SerializationError, match="lacks 'by_day'"):
        Account("acc-1").restore_state(state)


def test_slots_are_refused_unless_the_class_snapshots_its_own_state():
    """State in __slots__ escapes the default snapshot, so such a class is refused.

    The error comes when the class is defined and names the slot and the fix.
    Empty __slots__, and classes with their own snapshot_state and
    restore_state, are accepted.
    """
    with pytest.raises(
        ConfigurationError,
        match=r"Slotted keeps '_balance' in __slots__.*remove __slots__.*"
        r"override snapshot_state\(\) and restore_state\(\)",
    ):

        class Slotted(AggregateRoot):
            __slots__ = ("_balance",)

    class SlottedMixin:
        __slots__ = ("_flag",)

    with pytest.raises(
        ConfigurationError, match=r"keeps '_flag' in __slots__ \(declared by .*Mixin\)"
    ):

        class Mixed(SlottedMixin, AggregateRoot):
            pass

    class Empty(AggregateRoot):
        __slots__ = ()

    class OwnState(AggregateRoot):
        __slots__ = ("_balance",)

        def snapshot_state(self) -> dict[str, Any]:
            return {"balance": str(self._balance)}

        def restore_state(self, state: Any) -> None:
            self._balance = Decimal(state["balance"])

    # Defining Empty and OwnState raised nothing.
    assert OwnState.state_fingerprint() == "custom"


def test_snapshot_state_carries_fingerprint_and_last_event_id():
    """The stored state holds the fingerprint and the last event's id.

    Both sit under one reserved key, which restore_state never sees.
    """
    events = [
        Opened(account_id="acc-1", owner="ada"),
        Deposited(account_id="acc-1", amount=Decimal(3)),
    ]
    account = Account.from_events("acc-1", events)
    stored = decode_state(account.to_snapshot().state)
    assert stored.pop("__orchestrix__") == {
        "fingerprint": Account.state_fingerprint(),
        "event_id": events[-1].id,
    }
    assert stored == decode_state(encode_state(account.snapshot_state()))


def test_snapshot_without_a_fingerprint_is_not_accepted():
    """A snapshot written before fingerprints existed, or by hand, is not used."""
    snapshot = Snapshot(
        stream_id="acc-1",
        version=3,
        aggregate_type="test.aggregate.account",
        schema_version=1,
        state=encode_state({"balance": "1"}),
    )
    assert not Account.accepts_snapshot(snapshot)
    with pytest.raises(InvalidArgumentError, match="no state fingerprint"):
        Account.from_snapshot(snapshot)
    # Nor one that does not name its last event, or whose state is not JSON.
    checks = {"fingerprint": Account.state_fingerprint()}
    unanchored = encode_state({"__orchestrix__": checks, "balance": "1"})
    assert not Account.accepts_snapshot(replace(snapshot, state=unanchored))
    assert not Account.accepts_snapshot(replace(snapshot, state=b"[1, 2"))


class Shape(AggregateRoot, type="test.aggregate.shape"):
    balance: Decimal

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = Decimal(0)

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount


class ShapeWithNote(Shape, type="test.aggregate.shape"):
    """Shape with a field added, and snapshot_version left as it was."""

    note: str

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.note = "n/a"


class ShapeInCents(AggregateRoot, type="test.aggregate.shape"):
    """Shape with its field retyped, and snapshot_version left as it was."""

    balance: int

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = 0

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += int(event.amount * 100)


@pytest.mark.parametrize(
    ("before", "after"),
    [(Shape, ShapeWithNote), (ShapeWithNote, Shape), (Shape, ShapeInCents)],
    ids=["field-added", "field-removed", "field-retyped"],
)
def test_changed_state_fields_invalidate_old_snapshots(
    before: type[AggregateRoot], after: type[AggregateRoot]
):
    """Adding, removing or retyping a field makes older snapshots unusable.

    Even without a bump of snapshot_version they are never misread.
    """
    old = before.from_events(
        "s-1", [Deposited(account_id="s-1", amount=Decimal(2))]
    ).to_snapshot()
    assert before.accepts_snapshot(old)
    assert not after.accepts_snapshot(old)
    with pytest.raises(InvalidArgumentError, match="fingerprint"):
        after.from_snapshot(old)


@dataclass(frozen=True, slots=True)
class Address:
    street: str


@dataclass(frozen=True, slots=True)
class AddressWithCity:
    """Address as a later release defines it: one more field, with a default."""

    street: str
    city: str = "Paris"


AddressWithCity.__qualname__ = AddressWithCity.__name__ = "Address"


class Tier(enum.Enum):
    GOLD = 1
    SILVER = 2


class TierRenumbered(enum.Enum):
    """Tier as a later release defines it: the values swapped."""

    GOLD = 2
    SILVER = 1


TierRenumbered.__qualname__ = TierRenumbered.__name__ = "Tier"


class Member(AggregateRoot, type="test.aggregate.member"):
    address: Address
    tier: Tier

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.address = Address("1 rue de Rivoli")
        self.tier = Tier.GOLD

    @applies(Tagged)
    def _tagged(self, event: Tagged) -> None:
        del event


class MemberWithCity(Member, type="test.aggregate.member"):
    address: AddressWithCity  # type: ignore[assignment]  # a later release


class MemberRenumbered(Member, type="test.aggregate.member"):
    tier: TierRenumbered  # type: ignore[assignment]  # a later release


@pytest.mark.parametrize("later", [MemberWithCity, MemberRenumbered])
def test_changes_inside_state_types_invalidate_old_snapshots(later: type[Member]):
    """Changes inside the state's types count: dataclass fields, enum values.

    The old snapshot would otherwise load a default city or the wrong tier.
    """
    old = Member.from_events("m-1", [Tagged(tag="x")]).to_snapshot()
    assert Member.accepts_snapshot(old)
    assert not later.accepts_snapshot(old)


def test_custom_state_is_guarded_by_snapshot_version_only():
    """Overridden snapshot_state/restore_state are guarded by snapshot_version.

    The fingerprint is then 'custom': annotations do not count.
    """

    class Counter(AggregateRoot, type="test.aggregate.custom"):
        def __init__(self, aggregate_id: str) -> None:
            super().__init__(aggregate_id)
            self._count = 0

        @applies(Tagged)
        def _tagged(self, event: Tagged) -> None:
            self._count += 1

        def snapshot_state(self) -> dict[str, Any]:
            return {"n": self._count}

        def restore_state(self, state: Any) -> None:
            self._count = int(state["n"])

    class Labelled(Counter, type="test.aggregate.custom"):
        label: str

    class Bumped(Counter, type="test.aggregate.custom"):
        snapshot_version = 2

    snapshot = Counter.from_events("c", [Tagged(tag="a")]).to_snapshot()
    assert Counter.state_fingerprint() == "custom"
    assert Labelled.accepts_snapshot(snapshot)
    assert not Bumped.accepts_snapshot(snapshot)


def test_switching_between_default_and_custom_state_invalidates_snapshots():
    """Default and custom snapshot formats never reach each other's restore.

    This holds with the same snapshot_version.
    """

    class Plain(AggregateRoot, type="test.aggregate.switch"):
        tags: list[str]

        def __init__(self, aggregate_id: str) -> None:
            super().__init__(aggregate_id)
            self.tags = []

        @applies(Tagged)
        def _tagged(self, event: Tagged) -> None:
            self.tags.append(event.tag)

    class Custom(Plain, type="test.aggregate.switch"):
        def snapshot_state(self) -> dict[str, Any]:
            return {"joined": ",".join(self.tags)}

        def restore_state(self, state: Any) -> None:
            self.tags = state["joined"].split(",")

    plain = Plain.from_events("s", [Tagged(tag="a")]).to_snapshot()
    custom = Custom.from_events("s", [Tagged(tag="a")]).to_snapshot()
    assert not Custom.accepts_snapshot(plain)
    assert not Plain.accepts_snapshot(custom)


def test_custom_snapshot_state_cannot_use_the_reserved_key():
    """The key orchestrix keeps its checks under is refused in a custom state."""

    class Sneaky(AggregateRoot, type="test.aggregate.sneaky"):
        @applies(Tagged)
        def _tagged(self, event: Tagged) -> None:
            del event

        def snapshot_state(self) -> dict[str, Any]:
            return {"__orchestrix__": 1}

        def restore_state(self, state: Any) -> None:
            del state

    sneaky = Sneaky.from_events("s", [Tagged(tag="a")])
    with pytest.raises(
        ConfigurationError, match="the key '__orchestrix__', which is reserved"
    ):
        sneaky.to_snapshot()


@dataclass(frozen=True, kw_only=True, slots=True)
class Noted(Event, type="test.aggregate.noted"):
    at: datetime
    amount: Decimal
    plain: bool


NOTED_AT = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Note:
    body: Any


class Label(msgspec.Struct, frozen=True):
    text: Any


class Touchy(enum.Enum):
    """An enum whose members refuse to be compared."""

    A = 1

    def __eq__(self, other: object) -> bool:
        raise TypeError("Touchy members cannot be compared")

    def __hash__(self) -> int:
        return hash(self.name)


class Ledger(AggregateRoot, type="test.aggregate.ledger"):
    """Keeps its state in loosely annotated attributes, as issue reviews found."""

    history: list[Any]
    meta: dict[str, Any]
    last: object
    seen: Any
    names: list[str]
    at: datetime | None
    marks: frozenset[Any]
    codes: tuple[Any, ...]
    note: Note | None
    label: Label | None
    touchy: Touchy | None

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.history = []
        self.meta = {}
        self.last = None
        self.seen = None
        self.names = []
        self.at = None
        self.marks = frozenset()
        self.codes = ()
        self.note = None
        self.label = None
        self.touchy = None

    @applies(Noted)
    def _noted(self, event: Noted) -> None:
        if event.plain:  # values JSON gives back as they are
            self.history.append([event.at.isoformat(), str(event.amount)])
        else:
            self.history.append((event.at, event.amount))
            self.meta["tags"] = ("a", "b")
            self.last = event.amount


def noted(plain: bool) -> Noted:
    """Return a Noted event of 1.10 at NOTED_AT."""
    return Noted(at=NOTED_AT, amount=Decimal("1.10"), plain=plain)


@pytest.mark.parametrize(
    ("name", "value", "where", "fix"),
    [
        (
            "history",
            [(NOTED_AT, Decimal("1.10"))],
            r"Ledger\.history\[0\] is tuple .* would restore as list \['2024",
            r"such as history: list\[tuple\[datetime, Decimal\]\]",
        ),
        (
            "meta",
            {"tags": ("a", "b")},
            r"Ledger\.meta\['tags'\] is tuple .* would restore as list",
            r"such as meta: dict\[str, tuple\[str, \.\.\.\]\]",
        ),
        (
            "last",
            Decimal("1.10"),
            r"Ledger\.last is Decimal Decimal\('1\.10'\), .* as str '1\.10'",
            r"annotated object; .*such as last: Decimal",
        ),
        (
            "seen",
            NOTED_AT,
            r"Ledger\.seen is datetime .* as str '2024-01-01T00:00:00Z'",
            r"annotated Any; .*such as seen: datetime",
        ),
        (
            "names",
            ("x", "y"),
            r"Ledger\.names is tuple \('x', 'y'\), .* as list \['x', 'y'\]",
            r"annotated list\[str\]; .*such as names: tuple\[str, \.\.\.\]",
        ),
        (
            "at",
            datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1), "CET")),
            r"Ledger\.at is datetime .*'CET'\)\), .* as datetime",
            r"keep values JSON holds exactly .*astimezone\(UTC\)",
        ),
    ],
    ids=["list-Any", "dict-Any", "object", "Any", "list-of-tuple", "named-zone"],
)
def test_snapshot_that_would_restore_other_values_is_refused(
    name: str, value: object, where: str, fix: str
):
    """A state whose values would be restored as others is never snapshotted.

    The error names the class, the aggregate, the path of the first such
    value, and the fix: a precise annotation, or a custom format.
    """
    ledger = Ledger.from_events("l-1", [noted(plain=True)])
    setattr(ledger, name, value)
    with pytest.raises(SerializationError) as caught:
        ledger.to_snapshot()
    message = str(caught.value)
    assert message.startswith("cannot snapshot Ledger 'l-1': ")
    assert re.search(where, message), message
    assert re.search(fix, message), message
    assert message.endswith("or override snapshot_state() and restore_state()")


def nested(value: object, levels: int) -> object:
    """Return *value* inside *levels* lists, one in the other."""
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "meta",
            {1: "x"},
            (
                r"Ledger\.meta is dict \{1: 'x'\}, .* as dict \{'1': 'x'\}, "
                r".*such as meta: dict\[int, str\]"
            ),
        ),
        ("meta", {1: "a", "1": "b"}, r"Ledger\.meta is dict .* as dict \{'1': 'b'\}"),
        (
            "marks",
            frozenset({Decimal("1.5")}),
            (
                r"Ledger\.marks is frozenset .* as frozenset frozenset\(\{'1\.5'\}\), "
                r".*such as marks: frozenset\[Decimal\]"
            ),
        ),
        ("marks", frozenset({("a", 1)}), r"its state would not restore: .*'marks'"),
        (
            "codes",
            (Decimal(1), Decimal(2)),
            (
                r"Ledger\.codes\[0\] is Decimal .* annotated tuple\[Any, \.\.\.\]; "
                r".*such as codes: tuple\[Decimal, \.\.\.\]"
            ),
        ),
        ("note", Note(Decimal(2)), r"Ledger\.note\.body is Decimal .* Note \| None;"),
        ("label", Label(("a",)), r"Ledger\.label\.text is tuple \('a',\), .* as list"),
        (
            "history",
            [None, (1, "a")],
            r"Ledger\.history\[1\] .* history: list\[None \| tuple\[int, str\]\]",
        ),
        ("touchy", Touchy.A, r"Ledger\.touchy is Touchy <Touchy\.A: 1>"),
        (
            "history",
            nested([("a",)], 150),
            (
                r"Ledger\.history(\[0\]){151} is tuple .* such as history: "
                r"list\[list\[list\[list\[list\[\.\.\.\]\]\]\]\]"
            ),
        ),
        ("history", [nested(["a"], 150), ("b",)], r"Ledger\.history\[1\] is tuple"),
    ],
    ids=[
        "dict-key",
        "dict-length",
        "set-item",
        "set-unhashable",
        "tuple-Any",
        "dataclass-field",
        "struct-field",
        "None-in-list",
        "incomparable",
        "deeply-nested",
        "after-a-deep-value",
    ],
)
def test_the_first_value_that_would_be_restored_otherwise_is_named(
    name: str, value: object, message: str
):
    """The comparison goes into dicts, sets, tuples, dataclasses and structs.

    It finds keys of another type, lost keys, items of sets and fields that
    would come back otherwise, at any depth, and counts a value that refuses
    comparison as different; a state that would not restore at all is refused
    too.
    """
    ledger = Ledger.from_events("l-1", [noted(plain=True)])
    setattr(ledger, name, value)
    with pytest.raises(SerializationError, match=message):
        ledger.to_snapshot()


async def test_save_skips_a_snapshot_that_would_restore_other_values(
    caplog: pytest.LogCaptureFixture,
):
    """Such a state costs its snapshot, never the save, and loads replay.

    The save succeeds, no snapshot is stored, a warning on the repository's
    logger carries the error naming the attribute, and a load folds the stream
    to the exact state.
    """
    async with InMemoryEventStore() as store, InMemorySnapshotStore() as snapshots:
        repo = Repository(Ledger, store, snapshots=snapshots, snapshot_every=1)
        ledger = Ledger("l-1")
        ledger._record(noted(plain=False))
        with caplog.at_level(logging.WARNING, logger="orchestrix.repository"):
            result = await repo.save(ledger)
        assert result.version == 1
        assert await snapshots.load("l-1") is None
        [record] = [r for r in caplog.records if r.name == "orchestrix.repository"]
        assert record.levelno == logging.WARNING
        assert "cannot snapshot Ledger 'l-1' at version 1" in (record.getMessage())
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], SerializationError)
        assert "Ledger.history[0] is tuple" in str(record.exc_info[1])
        loaded = await repo.get("l-1")
        assert loaded.history == [(NOTED_AT, Decimal("1.10"))]
        assert type(loaded.history[0]) is tuple
        assert loaded.meta == {"tags": ("a", "b")}
        assert repr(loaded.last) == "Decimal('1.10')"


@dataclass(frozen=True, slots=True)
class Node:
    label: str
    children: tuple[Node, ...]


def test_spelling_that_keeps_the_type_keeps_the_fingerprint():
    """Unions and literals in another order are the same type: same fingerprint.

    A recursive type is spelt out once, without looping.
    """

    class One(AggregateRoot):
        mode: Literal["a", "b"]
        key: int | str
        tree: Node | None

    class Other(AggregateRoot):
        tree: Optional[Node]  # noqa: UP045 -- the older spelling, on purpose
        key: str | int
        mode: Literal["b", "a"]

    class Narrower(AggregateRoot):
        mode: Literal["a"]
        key: int | str
        tree: Node | None

    assert One.state_fingerprint() == Other.state_fingerprint()
    assert One.state_fingerprint() != Narrower.state_fingerprint()


class Probe(AggregateRoot, type="test.aggregate.probe"):
    tags: frozenset[str]
    limits: dict[str, Decimal]
    seen: tuple[int, ...]
    when: datetime | None
    _names: set[str]


PROBE = """
from __future__ import annotations
from datetime import datetime
from decimal import Decimal
from orchestrix import AggregateRoot

class Elsewhere(AggregateRoot):
    _names: set[str]
    when: datetime | None
    seen: tuple[int, ...]
    limits: dict[str, Decimal]
    tags: frozenset[str]

print(Elsewhere.state_fingerprint())
"""


def test_state_fingerprint_is_the_same_in_every_process():
    """The fingerprint depends on the fields' names and types only.

    Interpreters with other hash seeds, and a class of another name and
    module, agree with this one.
    """
    seen = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", PROBE],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seen.add(result.stdout.strip())
    assert seen == {Probe.state_fingerprint()}
    assert len(Probe.state_fingerprint()) == 32


def test_state_nested_beyond_the_recursion_limit_is_a_serialization_error():
    """A state too deep to convert fails its snapshot with SerializationError."""

    class Deep(AggregateRoot):
        tree: list[Any]

        def __init__(self, aggregate_id: str) -> None:
            super().__init__(aggregate_id)
            self.tree = []

    deep = Deep("d-1")
    for _ in range(5_000):
        deep.tree = [deep.tree]
    with pytest.raises(SerializationError, match="recursion limit"):
        deep.snapshot_state()
