"""Given/when/then tests for aggregates, without a store.

::

    def test_withdraw_records_withdrawn():
        (
            scenario(Account, "a")
            .given(Opened(account_id="a"), Deposited(account_id="a", amount=10))
            .when(lambda account: account.withdraw(5))
            .then(Withdrawn(account_id="a", amount=5))
        )

The given events are folded into a fresh aggregate as if loaded from a store,
the command runs, and the events it recorded are compared with the expected
ones by type and data fields; envelope fields (id, time, source, subject,
correlation and causation ids) are ignored. A mismatch raises `AssertionError`
with a diff of expected and actual events, so the helpers work as plain pytest
assertions.
"""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from orchestrix.aggregate import AggregateRoot
from orchestrix.codec import encode
from orchestrix.errors import InvalidArgumentError
from orchestrix.messages import ENVELOPE_FIELDS, Event

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["DEFAULT_AGGREGATE_ID", "Scenario", "scenario"]

A = TypeVar("A", bound=AggregateRoot)
X = TypeVar("X", bound=BaseException)

#: The id a scenario's aggregate gets unless one is given.
DEFAULT_AGGREGATE_ID = "aggregate-1"


def _data(event: Event) -> dict[str, Any]:
    return {
        f.name: getattr(event, f.name)
        for f in fields(event)
        if f.name not in ENVELOPE_FIELDS
    }


def _describe(event: Event) -> str:
    data = ", ".join(f"{name}={value!r}" for name, value in _data(event).items())
    return f"{type(event).__qualname__}({data})"


def _same(expected: Event, actual: Event) -> bool:
    return type(expected) is type(actual) and _data(expected) == _data(actual)


def _check_events(what: str, events: Sequence[object]) -> tuple[Event, ...]:
    for event in events:
        if not isinstance(event, Event):
            msg = f"{what} takes Event instances, got {type(event).__qualname__}"
            raise InvalidArgumentError(msg)
    return tuple(events)  # type: ignore[arg-type]  # every item was checked above


def _listing(events: Sequence[Event]) -> str:
    if not events:
        return "  (no events)"
    return "\n".join(f"  {_describe(event)}" for event in events)


@final
class Scenario(Generic[A]):
    """A given/when/then test of one aggregate class; build it with `scenario`.

    Each step returns a new scenario, so a common ``given`` can be shared.
    """

    __slots__ = ("_aggregate_cls", "_aggregate_id", "_command", "_given")

    def __init__(
        self,
        aggregate_cls: type[A],
        aggregate_id: str = DEFAULT_AGGREGATE_ID,
        *,
        given: Sequence[Event] = (),
        command: Callable[[A], object] | None = None,
    ) -> None:
        """Create a scenario; prefer `scenario`, `given` and `when`.

        Raises:
            InvalidArgumentError: *aggregate_cls* is not an `AggregateRoot`
                subclass, or *given* holds something other than events.
        """
        checked: object = aggregate_cls
        if not (isinstance(checked, type) and issubclass(checked, AggregateRoot)):
            msg = f"scenario() takes an AggregateRoot subclass, got {checked!r}"
            raise InvalidArgumentError(msg)
        self._aggregate_cls = aggregate_cls
        self._aggregate_id = aggregate_id
        self._given = _check_events("given()", given)
        self._command = command

    def given(self, *events: Event) -> Scenario[A]:
        """Return a scenario whose aggregate has also stored *events*, in order.

        Raises:
            InvalidArgumentError: An argument is not an `Event`.
        """
        added = _check_events("given()", events)
        return Scenario(
            self._aggregate_cls,
            self._aggregate_id,
            given=self._given + added,
            command=self._command,
        )

    def when(self, command: Callable[[A], object]) -> Scenario[A]:
        """Return a scenario that runs *command* on the aggregate.

        *command* receives the aggregate folded from the given events and
        calls one of its command methods. If it returns an instance of the
        aggregate class (a factory creating the aggregate), that instance is
        the one checked.

        Raises:
            InvalidArgumentError: The scenario already has a command.
        """
        if self._command is not None:
            msg = (
                "this scenario already has a when(); run several commands inside "
                "one function, or start a new scenario"
            )
            raise InvalidArgumentError(msg)
        return Scenario(
            self._aggregate_cls,
            self._aggregate_id,
            given=self._given,
            command=command,
        )

    def then(self, *expected: Event) -> A:
        """Assert that the command recorded exactly *expected*, in order.

        Events match when they have the same class and equal data fields;
        envelope fields are ignored. No arguments asserts that nothing was
        recorded. Recorded events must also be encodable, as a store needs.

        Returns:
            The aggregate after the command, for further assertions on state.

        Raises:
            AssertionError: The events differ; the message holds a diff.
            InvalidArgumentError: No `when` was given, or an argument is not
                an `Event`.
            SerializationError: A recorded event cannot be encoded.
        """
        __tracebackhide__ = True
        wanted = _check_events("then()", expected)
        aggregate = self._call(*self._fold())
        actual = aggregate.pending_events
        for event in actual:
            encode(event)
        if len(wanted) != len(actual) or not all(
            _same(e, a) for e, a in zip(wanted, actual, strict=True)
        ):
            raise AssertionError(self._diff(wanted, actual))
        return aggregate

    def then_raises(
        self,
        expected_exception: type[X] | tuple[type[X], ...],
        *,
        match: str | re.Pattern[str] | None = None,
    ) -> X:
        """Assert that the command raises *expected_exception*.

        Args:
            expected_exception: The exception class (or a tuple of classes).
            match: If given, a regular expression that must be found
                (`re.search`) in the exception's text.

        Returns:
            The exception raised, for further assertions.

        Raises:
            AssertionError: The command returned normally, or the text does
                not match. Other exceptions propagate unchanged.
            InvalidArgumentError: No `when` was given.
        """
        __tracebackhide__ = True
        aggregate, command = self._fold()
        try:
            aggregate = self._call(aggregate, command)
        except expected_exception as exc:
            if match is not None and not re.search(match, str(exc)):
                pattern = match.pattern if isinstance(match, re.Pattern) else match
                msg = (
                    f"{type(exc).__qualname__} was raised, but its text {str(exc)!r} "
                    f"does not match {pattern!r}"
                )
                raise AssertionError(msg) from exc
            return exc
        names = (
            " or ".join(t.__qualname__ for t in expected_exception)
            if isinstance(expected_exception, tuple)
            else expected_exception.__qualname__
        )
        msg = (
            f"expected {names} to be raised, but the command returned normally "
            f"and recorded:\n{_listing(aggregate.pending_events)}"
        )
        raise AssertionError(msg)

    def _fold(self) -> tuple[A, Callable[[A], object]]:
        command = self._command
        if command is None:
            msg = "call .when(command) before .then() or .then_raises()"
            raise InvalidArgumentError(msg)
        try:
            aggregate = self._aggregate_cls.from_events(self._aggregate_id, self._given)
        except Exception as exc:
            exc.add_note(f"while folding the given events into {self._name}")
            raise
        return aggregate, command

    def _call(self, aggregate: A, command: Callable[[A], object]) -> A:
        result = command(aggregate)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            msg = (
                "when() takes a plain function; aggregate commands are synchronous, "
                "so call the command without await"
            )
            raise InvalidArgumentError(msg)
        if isinstance(result, self._aggregate_cls):
            return result
        return aggregate

    @property
    def _name(self) -> str:
        return f"{self._aggregate_cls.__qualname__} {self._aggregate_id!r}"

    def _diff(self, expected: Sequence[Event], actual: Sequence[Event]) -> str:
        lines = difflib.ndiff(
            [_describe(event) for event in expected],
            [_describe(event) for event in actual],
        )
        return (
            f"{self._name} recorded other events than expected: "
            f"{len(expected)} expected, {len(actual)} recorded "
            f"(envelope fields ignored; - expected, + actual):\n"
            + "\n".join(f"  {line.rstrip()}" for line in lines)
        )

    def __repr__(self) -> str:
        command = "none" if self._command is None else "set"
        return (
            f"Scenario({self._name}, given={len(self._given)} event(s), when={command})"
        )


def scenario(
    aggregate_cls: type[A], aggregate_id: str = DEFAULT_AGGREGATE_ID
) -> Scenario[A]:
    """Start a given/when/then test of *aggregate_cls*.

    Args:
        aggregate_cls: The aggregate class under test.
        aggregate_id: The id of the aggregate the scenario builds.

    Returns:
        A scenario without events or command; continue with `Scenario.given`
        and `Scenario.when`.

    Raises:
        InvalidArgumentError: *aggregate_cls* is not an `AggregateRoot` subclass.
    """
    return Scenario(aggregate_cls, aggregate_id)
