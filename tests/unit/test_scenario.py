"""Unit tests for the given/when/then helpers in `orchestrix.testing._scenario`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.errors import (
    ConfigurationError,
    InvalidArgumentError,
    SerializationError,
)
from orchestrix.messages import Event
from orchestrix.testing._scenario import DEFAULT_AGGREGATE_ID, Scenario, scenario


@dataclass(frozen=True, kw_only=True, slots=True)
class Opened(Event, type="test.scenario.opened"):
    account_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposited(Event, type="test.scenario.deposited"):
    account_id: str
    amount: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Withdrawn(Event, type="test.scenario.withdrawn"):
    account_id: str
    amount: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Noted(Event, type="test.scenario.noted"):
    note: Any


class InsufficientFundsError(Exception):
    pass


class Account(AggregateRoot, type="test.scenario.account"):
    balance: int

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = 0

    @classmethod
    def open(cls, aggregate_id: str) -> Account:
        account = cls(aggregate_id)
        account._record(Opened(account_id=aggregate_id))
        return account

    def deposit(self, amount: int) -> None:
        self._record(Deposited(account_id=self.id, amount=amount))

    def withdraw(self, amount: int) -> None:
        if amount > self.balance:
            msg = f"balance {self.balance} is below {amount}"
            raise InsufficientFundsError(msg)
        self._record(Withdrawn(account_id=self.id, amount=amount))

    def note(self, note: object) -> None:
        self._record(Noted(note=note))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        del event

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount

    @applies(Noted)
    def _noted(self, event: Noted) -> None:
        del event


FUNDED = scenario(Account, "a").given(
    Opened(account_id="a"), Deposited(account_id="a", amount=10)
)


def test_then_passes_when_events_match_ignoring_envelope():
    """Matching type and data passes even though ids and times differ."""
    expected = Withdrawn(
        account_id="a",
        amount=5,
        id="other-id",
        time=datetime(2000, 1, 1, tzinfo=UTC),
        source="/elsewhere",
        correlation_id="c",
        causation_id="d",
        subject="s",
    )
    account = FUNDED.when(lambda acc: acc.withdraw(5)).then(expected)
    assert account.balance == 5
    assert account.version == 2


def test_then_without_events_asserts_nothing_was_recorded():
    """`then()` with no arguments passes only if the command recorded nothing."""
    FUNDED.when(lambda acc: acc.balance).then()
    with pytest.raises(AssertionError, match="0 expected, 1 recorded"):
        FUNDED.when(lambda acc: acc.deposit(1)).then()


def test_then_fails_with_a_diff_on_a_different_value():
    """A wrong data value fails with a diff naming both events."""
    with pytest.raises(AssertionError) as info:
        FUNDED.when(lambda acc: acc.withdraw(6)).then(
            Withdrawn(account_id="a", amount=5)
        )
    text = str(info.value)
    assert "Account 'a' recorded other events than expected" in text
    assert "- Withdrawn(account_id='a', amount=5)" in text
    assert "+ Withdrawn(account_id='a', amount=6)" in text


def test_then_fails_on_a_different_event_type():
    """An event of another class with equal data does not match."""
    with pytest.raises(AssertionError, match=r"\+ Deposited\(account_id='a'"):
        FUNDED.when(lambda acc: acc.deposit(5)).then(
            Withdrawn(account_id="a", amount=5)
        )


def test_then_fails_on_missing_and_extra_events():
    """Fewer or more events than expected fail and list them."""

    def twice(acc: Account) -> None:
        acc.deposit(1)
        acc.deposit(2)

    with pytest.raises(AssertionError, match="1 expected, 2 recorded") as info:
        FUNDED.when(twice).then(Deposited(account_id="a", amount=1))
    assert "+ Deposited(account_id='a', amount=2)" in str(info.value)
    with pytest.raises(AssertionError, match="3 expected, 2 recorded"):
        FUNDED.when(twice).then(
            Deposited(account_id="a", amount=1),
            Deposited(account_id="a", amount=2),
            Deposited(account_id="a", amount=3),
        )


def test_then_fails_on_events_in_another_order():
    """Order matters."""

    def twice(acc: Account) -> None:
        acc.deposit(1)
        acc.deposit(2)

    with pytest.raises(AssertionError):
        FUNDED.when(twice).then(
            Deposited(account_id="a", amount=2), Deposited(account_id="a", amount=1)
        )


def test_then_rejects_an_unencodable_recorded_event():
    """A recorded event that no store could keep fails the scenario."""
    with pytest.raises(SerializationError, match="cannot encode"):
        FUNDED.when(lambda acc: acc.note(object())).then(Noted(note=None))


def test_factory_result_is_the_checked_aggregate():
    """A command returning a new aggregate of the class is the one checked."""
    account = (
        scenario(Account, "n")
        .when(lambda _: Account.open("n"))
        .then(Opened(account_id="n"))
    )
    assert account.id == "n"


def test_then_raises_returns_the_matching_exception():
    """`then_raises` passes on the expected exception and returns it."""
    exc = FUNDED.when(lambda acc: acc.withdraw(50)).then_raises(
        InsufficientFundsError, match=r"below 50"
    )
    assert isinstance(exc, InsufficientFundsError)


def test_then_raises_accepts_a_compiled_pattern_and_a_tuple():
    """Exception tuples and compiled patterns work like in pytest.raises."""
    FUNDED.when(lambda acc: acc.withdraw(50)).then_raises(
        (KeyError, InsufficientFundsError), match=re.compile("BALANCE", re.IGNORECASE)
    )


def test_then_raises_fails_when_nothing_is_raised():
    """A command that succeeds fails `then_raises`, listing what it recorded."""
    with pytest.raises(AssertionError) as info:
        FUNDED.when(lambda acc: acc.withdraw(1)).then_raises(InsufficientFundsError)
    text = str(info.value)
    assert "expected InsufficientFundsError to be raised" in text
    assert "Withdrawn(account_id='a', amount=1)" in text


def test_then_raises_names_each_class_of_a_tuple():
    """With a tuple, the failure names every expected class."""
    with pytest.raises(AssertionError, match="KeyError or ValueError"):
        FUNDED.when(lambda acc: acc.balance).then_raises((KeyError, ValueError))


def test_then_raises_reports_no_events_when_none_recorded():
    """The failure says so when the command recorded nothing."""
    with pytest.raises(AssertionError, match=r"\(no events\)"):
        FUNDED.when(lambda acc: acc.balance).then_raises(InsufficientFundsError)


def test_then_raises_fails_when_text_does_not_match():
    """The expected class with the wrong text fails, quoting both."""
    with pytest.raises(AssertionError, match="does not match 'overdrawn'"):
        FUNDED.when(lambda acc: acc.withdraw(50)).then_raises(
            InsufficientFundsError, match="overdrawn"
        )


def test_then_raises_lets_other_exceptions_through():
    """An exception of another class propagates unchanged."""
    with pytest.raises(InsufficientFundsError):
        FUNDED.when(lambda acc: acc.withdraw(50)).then_raises(KeyError)


def test_given_is_folded_as_stored_events():
    """Given events advance the version as if loaded from a store."""
    account = FUNDED.when(lambda acc: None).then()
    assert account.version == 2
    assert account.balance == 10


def test_given_is_cumulative_and_scenarios_are_reusable():
    """Each step returns a new scenario; the base one is unchanged."""
    richer = FUNDED.given(Deposited(account_id="a", amount=90))
    assert richer.when(lambda acc: None).then().balance == 100
    assert FUNDED.when(lambda acc: None).then().balance == 10


def test_given_event_without_apply_method_names_the_scenario():
    """A given event the aggregate cannot apply fails with a note saying where."""

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Closed(Event, type="test.scenario.closed"):
        pass

    with pytest.raises(ConfigurationError) as info:
        FUNDED.given(Closed()).when(lambda acc: None).then()
    assert "while folding the given events into Account 'a'" in info.value.__notes__


def test_then_without_when_is_an_error():
    """`then` needs a command first."""
    with pytest.raises(InvalidArgumentError, match=r"call \.when"):
        FUNDED.then()
    with pytest.raises(InvalidArgumentError, match=r"call \.when"):
        FUNDED.then_raises(ValueError)


def test_second_when_is_an_error():
    """A scenario has exactly one command."""
    with pytest.raises(InvalidArgumentError, match="already has a when"):
        FUNDED.when(lambda acc: None).when(lambda acc: None)


def test_async_command_is_rejected():
    """Commands are synchronous; an awaitable result is a clear error."""

    async def command(acc: Account) -> None:
        acc.deposit(1)

    with pytest.raises(InvalidArgumentError, match="without await"):
        FUNDED.when(command).then()


@pytest.mark.parametrize("bad", ["event", 3])
def test_non_events_are_rejected(bad: Any):
    """`given` and `then` take Event instances only."""
    with pytest.raises(InvalidArgumentError, match="given\\(\\) takes Event"):
        FUNDED.given(bad)
    with pytest.raises(InvalidArgumentError, match="then\\(\\) takes Event"):
        FUNDED.when(lambda acc: None).then(bad)


def test_non_aggregate_class_is_rejected():
    """`scenario` takes an AggregateRoot subclass."""
    with pytest.raises(InvalidArgumentError, match="AggregateRoot subclass"):
        scenario(dict)  # type: ignore[type-var]


def test_default_aggregate_id_and_repr():
    """Without an id the aggregate gets the default one; the repr shows the steps."""
    base = scenario(Account)
    assert base.when(lambda acc: None).then().id == DEFAULT_AGGREGATE_ID
    assert repr(FUNDED) == "Scenario(Account 'a', given=2 event(s), when=none)"
    assert isinstance(FUNDED, Scenario)


def test_awaitable_object_command_result_is_rejected():
    """Any awaitable result, not only a coroutine, is rejected."""

    class Pending:
        def __await__(self) -> Any:
            yield None

    with pytest.raises(InvalidArgumentError, match="without await"):
        FUNDED.when(lambda acc: Pending()).then()
