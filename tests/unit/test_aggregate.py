"""Unit tests for `orchestrix.aggregate`: recording, dispatch, folding, snapshots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.codec import decode_state, encode_state
from orchestrix.errors import (
    ConfigurationError,
    InvalidArgumentError,
    SerializationError,
)
from orchestrix.messages import Event
from orchestrix.protocols import Snapshot

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

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = None
        self.balance = Decimal(0)
        self.history = ()
        self.tags = frozenset()
        self.by_day = {}
        self._calls: list[str] = []

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


@pytest.mark.parametrize("bad", [0, True, "2"])
def test_bad_snapshot_version_is_rejected(bad: Any):
    """snapshot_version must be an int >= 1, checked when the class is defined."""
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


def test_snapshot_state_holds_public_attributes_as_json():
    """The default state has the public attributes only and encodes to JSON."""
    state = rich_account().snapshot_state()
    assert set(state) == {"owner", "balance", "history", "tags", "by_day"}
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
    with pytest.raises(SerializationError, match="'_calls'"):
        account.restore_state({"_calls": []})


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
    snapshot = Snapshot(
        stream_id="acc-1",
        version=3,
        aggregate_type=aggregate_type,
        schema_version=schema_version,
        state=encode_state({"balance": "1"}),
    )
    assert not Account.accepts_snapshot(snapshot)
    with pytest.raises(InvalidArgumentError, match="replay the stream instead"):
        Account.from_snapshot(snapshot)


def test_bumped_snapshot_version_rejects_old_snapshots():
    """Raising snapshot_version in a subclass makes old snapshots unusable."""

    class AccountV2(Account, type="test.aggregate.account-v2"):
        snapshot_version = 2

    old = Snapshot("acc-1", 2, "test.aggregate.account-v2", 1, b"{}")
    assert not AccountV2.accepts_snapshot(old)
    assert AccountV2.accepts_snapshot(
        Snapshot("acc-1", 2, "test.aggregate.account-v2", 2, b"{}")
    )


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
