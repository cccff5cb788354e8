"""`DurableMessageBusContract`: at-least-once delivery, dead letters, competition.

The suite builds its buses through the ``bus_factory`` fixture, so that several
bus instances (standing for several processes) share one backing storage. The
options it passes are short (a visibility timeout of half a second), so every
test takes a second or two on a correct backend.
"""

# Contract suites are tests shipped in the package: they assert, and compare
# with literal counts.
# ruff: noqa: S101, PLR2004

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import pytest

from orchestrix.errors import ConfigurationError, InvalidArgumentError
from orchestrix.testing._support import (
    ContractCommand,
    ContractEvent,
    OtherContractEvent,
    poll_until,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orchestrix.messages import Message
    from orchestrix.protocols import DurableMessageBus
    from orchestrix.records import DeadLetter

__all__ = ["BusFactory", "DurableMessageBusContract"]


class _Options(TypedDict, total=False):
    visibility_timeout: float
    max_attempts: int
    poll_interval: float
    concurrency: int


#: Options that make redelivery quick; a test overrides what it needs.
FAST: _Options = {"visibility_timeout": 0.5, "max_attempts": 3, "poll_interval": 0.05}
#: Options for tests that must never see a redelivery.
PATIENT: _Options = {
    "visibility_timeout": 10.0,
    "max_attempts": 3,
    "poll_interval": 0.05,
}


class BusFactory(Protocol):
    """The ``bus_factory`` fixture: makes unstarted buses sharing one storage.

    Each option is a number or its text as a URL query would give it.
    """

    def __call__(
        self,
        *,
        visibility_timeout: float | str = ...,
        max_attempts: int | str = ...,
        poll_interval: float | str = ...,
        concurrency: int | str = ...,
    ) -> Awaitable[DurableMessageBus]:
        """Return a new, unstarted bus on the shared storage with these options."""
        ...


def _recorder(into: list[str]) -> Callable[[Message], Awaitable[None]]:
    async def record(message: Message) -> None:
        into.append(message.id)

    return record


@pytest.mark.asyncio
class DurableMessageBusContract:
    """The `DurableMessageBus` contract; override the `bus_factory` fixture.

    The fixture yields an async callable taking the bus options as keywords
    (``visibility_timeout``, ``max_attempts``, ``poll_interval``,
    ``concurrency``; numbers, or their text as in a URL) and returning a new,
    unstarted bus. Every bus it makes
    shares one storage, isolated from other tests; the fixture closes them all
    afterwards (closing twice is harmless).
    """

    @pytest.fixture
    async def bus_factory(self) -> BusFactory:
        """Yield a factory of buses sharing one isolated storage (override it)."""
        msg = (
            f"{type(self).__name__} must override the 'bus_factory' fixture to yield "
            f"an async callable (**options) -> DurableMessageBus whose buses share "
            f"one isolated storage"
        )
        raise NotImplementedError(msg)

    async def test_failed_delivery_is_redelivered(
        self, bus_factory: BusFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A handler that raises gets the message again, and the failure is logged."""
        caplog.set_level(logging.DEBUG)
        attempts: list[str] = []

        async def flaky(message: Message) -> None:
            attempts.append(message.id)
            if len(attempts) == 1:
                msg = "the first attempt fails"
                raise RuntimeError(msg)

        bus = await bus_factory(**FAST)
        bus.subscribe(ContractEvent, flaky, group="flaky")
        await bus.start()
        event = ContractEvent(number=1)
        await bus.publish(event)
        await wait_until(lambda: len(attempts) >= 2, "the message was redelivered")
        assert attempts[:2] == [event.id, event.id]
        assert await bus.dead_letters(group="flaky") == []
        assert any(
            record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
            for record in caplog.records
        ), "the handler failure was not logged with its exception"

    async def test_stuck_consumer_loses_its_delivery(
        self, bus_factory: BusFactory
    ) -> None:
        """A delivery never acknowledged goes to another consumer after the timeout."""
        release = asyncio.Event()
        taken: list[str] = []
        handled: list[str] = []

        async def stuck(message: Message) -> None:
            taken.append(message.id)
            await release.wait()

        first = await bus_factory(
            visibility_timeout=0.5, max_attempts=5, poll_interval=0.05, concurrency=1
        )
        first.subscribe(ContractEvent, stuck, group="workers")
        await first.start()
        event = ContractEvent(number=1)
        await first.publish(event)
        try:
            await wait_until(lambda: bool(taken), "the first consumer took it")
            second = await bus_factory(
                visibility_timeout=0.5, max_attempts=5, poll_interval=0.05
            )
            second.subscribe(ContractEvent, _recorder(handled), group="workers")
            await second.start()
            await wait_until(lambda: bool(handled), "the second consumer got it")
        finally:
            release.set()
        assert handled[0] == event.id

    async def test_dead_letters_and_replay(self, bus_factory: BusFactory) -> None:
        """After max_attempts failures a message is a dead letter; replay resends it."""
        failing = True
        calls: list[str] = []

        async def handler(message: Message) -> None:
            calls.append(message.id)
            if failing:
                msg = f"boom {message.id}"
                raise ValueError(msg)

        bus = await bus_factory(
            visibility_timeout=0.5, max_attempts=2, poll_interval=0.05
        )
        bus.subscribe(ContractEvent, handler, group="dl")
        await bus.start()
        first, second = ContractEvent(number=1), ContractEvent(number=2)

        def count(n: int) -> Callable[[list[DeadLetter]], bool]:
            return lambda letters: len(letters) >= n

        await bus.publish(first)
        (letter,) = await poll_until(
            lambda: bus.dead_letters(group="dl"), count(1), "a dead letter"
        )
        assert letter.message_id == first.id
        assert letter.group == "dl"
        assert letter.attempts == 2
        assert f"boom {first.id}" in letter.error
        assert letter.failed_at.tzinfo is not None
        assert letter.record.id == first.id
        assert letter.message == first
        assert calls.count(first.id) == 2

        await bus.publish(second)
        letters = await poll_until(
            lambda: bus.dead_letters(group="dl"), count(2), "two dead letters"
        )
        assert [d.message_id for d in letters] == [first.id, second.id]
        limited = await bus.dead_letters(group="dl", limit=1)
        assert [d.message_id for d in limited] == [first.id]
        assert await bus.dead_letters(group="nobody") == []
        assert {d.message_id for d in await bus.dead_letters()} == {
            first.id,
            second.id,
        }

        failing = False
        assert await bus.replay_dead_letter(first.id, group="dl") is True
        await wait_until(lambda: calls.count(first.id) == 3, "the replay arrived")
        remaining = await poll_until(
            lambda: bus.dead_letters(group="dl"),
            lambda letters: len(letters) == 1,
            "the replayed letter left the dead letters",
        )
        assert [d.message_id for d in remaining] == [second.id]
        assert await bus.replay_dead_letter(first.id, group="dl") is False
        assert await bus.replay_dead_letter(second.id, group="nobody") is False
        assert await bus.replay_dead_letter("no-such-id", group="dl") is False

    async def test_competing_consumers(self, bus_factory: BusFactory) -> None:
        """Two instances in one group share the messages: each is handled once."""
        handled: list[str] = []
        buses = [await bus_factory(**PATIENT) for _ in range(2)]
        for bus in buses:
            bus.subscribe(ContractEvent, _recorder(handled), group="competing")
            await bus.start()
        events = [ContractEvent(number=i) for i in range(20)]
        for index, event in enumerate(events):
            await buses[index % 2].publish(event)
        await wait_until(lambda: len(set(handled)) == 20, "every message was handled")
        for bus in buses:
            await bus.close()
        assert sorted(handled) == sorted(e.id for e in events)

    async def test_every_group_gets_every_message(
        self, bus_factory: BusFactory
    ) -> None:
        """Different groups, in different instances, each get all messages once."""
        got_a: list[str] = []
        got_b: list[str] = []
        bus_a = await bus_factory(**PATIENT)
        bus_a.subscribe(ContractEvent, _recorder(got_a), group="a")
        bus_b = await bus_factory(**PATIENT)
        bus_b.subscribe(ContractEvent, _recorder(got_b), group="b")
        await bus_a.start()
        await bus_b.start()
        events = [ContractEvent(number=i) for i in range(5)]
        for event in events:
            await bus_a.publish(event)
        await wait_until(
            lambda: len(set(got_a)) == len(set(got_b)) == 5, "both groups got all"
        )
        await bus_a.close()
        await bus_b.close()
        assert sorted(got_a) == sorted(got_b) == sorted(e.id for e in events)

    async def test_messages_survive_a_restart(self, bus_factory: BusFactory) -> None:
        """Messages published while no consumer runs reach the next instance."""
        earlier = await bus_factory(**PATIENT)
        earlier.subscribe(ContractEvent, _recorder([]), group="survivor")
        earlier.subscribe(ContractCommand, _recorder([]), group="survivor")
        await earlier.start()
        await earlier.close()

        publisher = await bus_factory(**PATIENT)
        await publisher.start()
        messages: list[Message] = [ContractEvent(number=i) for i in range(3)]
        messages.append(ContractCommand(number=4))
        for message in messages:
            await publisher.publish(message)

        received: list[str] = []
        later = await bus_factory(**PATIENT)
        later.subscribe(ContractEvent, _recorder(received), group="survivor")
        later.subscribe(ContractCommand, _recorder(received), group="survivor")
        await later.start()
        await wait_until(lambda: len(set(received)) == 4, "the new instance got all")
        assert sorted(set(received)) == sorted(m.id for m in messages)

    async def test_republished_id_is_delivered_once(
        self, bus_factory: BusFactory
    ) -> None:
        """Publishing a message id again creates no second delivery."""
        received: list[str] = []
        bus = await bus_factory(**PATIENT)
        bus.subscribe(ContractEvent, _recorder(received), group="idempotent")
        await bus.start()
        event = ContractEvent(number=1)
        await bus.publish(event)
        await bus.publish(event)
        await wait_until(lambda: event.id in received, "the message arrived")
        await bus.publish(event)
        marker = ContractEvent(number=2)
        await bus.publish(marker)
        await wait_until(lambda: marker.id in received, "the marker arrived")
        await bus.close()
        assert received.count(event.id) == 1

    async def test_concurrency_runs_handlers_at_once(
        self, bus_factory: BusFactory
    ) -> None:
        """With ``concurrency=3`` three handlers of a group run at the same time."""
        release = asyncio.Event()
        entered: list[str] = []

        async def slow(message: Message) -> None:
            entered.append(message.id)
            await release.wait()

        bus = await bus_factory(
            visibility_timeout=10.0, max_attempts=3, poll_interval=0.05, concurrency=3
        )
        bus.subscribe(ContractEvent, slow, group="parallel")
        await bus.start()
        try:
            for i in range(3):
                await bus.publish(ContractEvent(number=i))
            await wait_until(lambda: len(entered) == 3, "three handlers ran at once")
        finally:
            release.set()

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("visibility_timeout", 0),
            ("visibility_timeout", -1.0),
            ("visibility_timeout", float("inf")),
            ("visibility_timeout", float("nan")),
            ("visibility_timeout", "nan"),
            ("visibility_timeout", 10**9),
            ("max_attempts", 0),
            ("max_attempts", 1.5),
            ("max_attempts", True),
            ("max_attempts", "two"),
            ("max_attempts", "1_0"),
            ("max_attempts", 10**7),
            ("poll_interval", 0),
            ("poll_interval", "0.0001"),
            ("concurrency", 0),
            ("concurrency", "1.5"),
            ("concurrency", 10**6),
        ],
    )
    async def test_invalid_options(
        self, bus_factory: BusFactory, option: str, value: object
    ) -> None:
        """A bad option raises `ConfigurationError` naming it, whatever the backend.

        Numbers and their URL text go through the same checks (same types,
        ranges and message), so the message is pinned too.
        """
        options: dict[str, Any] = {option: value}

        async def open_and_start() -> None:
            bus = await bus_factory(**options)
            await bus.start()

        with pytest.raises(ConfigurationError, match=f"^bus option '{option}' must"):
            await open_and_start()

    async def test_options_given_as_text(self, bus_factory: BusFactory) -> None:
        """Options given as URL text work as the numbers they spell."""
        calls: list[str] = []

        async def failing(message: Message) -> None:
            calls.append(message.id)
            msg = "always fails"
            raise RuntimeError(msg)

        bus = await bus_factory(
            visibility_timeout="0.5",
            max_attempts="1",
            poll_interval="0.05",
            concurrency="2",
        )
        bus.subscribe(ContractEvent, failing, group="text")
        await bus.start()
        event = ContractEvent(number=1)
        await bus.publish(event)
        (letter,) = await poll_until(
            lambda: bus.dead_letters(group="text"), bool, "a dead letter"
        )
        assert (letter.message_id, letter.attempts) == (event.id, 1)
        assert calls == [event.id]

    async def test_delivery_without_a_local_handler_is_not_an_attempt(
        self, bus_factory: BusFactory
    ) -> None:
        """A consumer never fails a delivery that no handler of its group takes.

        In a rolling deploy, a new process adds a handler for a new type to an
        existing group while old processes of the group still run: the old
        ones must leave such a message to a consumer that handles it, without
        counting an attempt, rather than dead-letter it.
        """
        newer: list[str] = []
        older: list[str] = []
        # The new version registers the group for both types, then stops.
        registering = await bus_factory(**FAST)
        registering.subscribe(ContractEvent, _recorder(newer), group="rolling")
        registering.subscribe(OtherContractEvent, _recorder(newer), group="rolling")
        await registering.start()
        await registering.close()
        # An old process of the group, which only knows ContractEvent, runs
        # alone; with max_attempts=1 a single counted attempt would kill it.
        old = await bus_factory(
            visibility_timeout=0.5, max_attempts=1, poll_interval=0.05
        )
        old.subscribe(ContractEvent, _recorder(older), group="rolling")
        await old.start()
        unknown_to_old = OtherContractEvent(number=1)
        await old.publish(unknown_to_old)
        marker = ContractEvent(number=2)
        await old.publish(marker)
        await wait_until(lambda: marker.id in older, "the old process ran")
        assert await old.dead_letters(group="rolling") == []
        # A new process of the group then gets it, as its first attempt.
        new = await bus_factory(
            visibility_timeout=0.5, max_attempts=1, poll_interval=0.05
        )
        new.subscribe(ContractEvent, _recorder(newer), group="rolling")
        new.subscribe(OtherContractEvent, _recorder(newer), group="rolling")
        await new.start()
        await wait_until(
            lambda: unknown_to_old.id in newer, "the new process handled it"
        )
        assert older == [marker.id]
        assert await new.dead_letters(group="rolling") == []

    async def test_concurrent_starts_start_once(self, bus_factory: BusFactory) -> None:
        """Two ``start`` calls at once start one set of consumers.

        With ``concurrency=1`` one handler of the group runs at a time; after a
        short pause the second message is still waiting.
        """
        release = asyncio.Event()
        entered: list[str] = []

        async def slow(message: Message) -> None:
            entered.append(message.id)
            await release.wait()

        bus = await bus_factory(
            visibility_timeout=10.0, max_attempts=3, poll_interval=0.05, concurrency=1
        )
        bus.subscribe(ContractEvent, slow, group="once")
        await asyncio.gather(bus.start(), bus.start())
        try:
            for i in range(2):
                await bus.publish(ContractEvent(number=i))
            await wait_until(lambda: bool(entered), "a handler ran")
            await asyncio.sleep(0.3)
            assert len(entered) == 1
        finally:
            release.set()
        await wait_until(lambda: len(entered) == 2, "the second message ran")

    @pytest.mark.parametrize(
        ("call", "problem"),
        [
            ({"limit": -1}, "limit"),
            ({"limit": True}, "limit"),
            ({"limit": 1.5}, "limit"),
            ({"limit": None}, "limit"),
            ({"group": ""}, "group"),
            ({"group": "x" * 256}, "group"),
            ({"group": 7}, "group"),
            ({"message_id": ""}, "message id"),
            ({"message_id": 7}, "message id"),
            ({"message_id": "a\x00b"}, "message id"),
            ({"message_id": "m", "group": ""}, "group"),
            ({"message_id": "m", "group": None}, "group"),
        ],
    )
    async def test_dead_letter_arguments_are_checked(
        self, bus_factory: BusFactory, call: dict[str, Any], problem: str
    ) -> None:
        """Bad arguments to ``dead_letters`` or ``replay_dead_letter`` raise.

        `InvalidArgumentError` names the argument, before the backend is asked.
        """
        bus = await bus_factory(**PATIENT)
        arguments = {"group": "g", **call}
        if "message_id" in call:
            message_id = arguments.pop("message_id")
            with pytest.raises(InvalidArgumentError, match=problem):
                await bus.replay_dead_letter(message_id, **arguments)
        else:
            with pytest.raises(InvalidArgumentError, match=problem):
                await bus.dead_letters(**call)

    async def test_dead_letter_limits(self, bus_factory: BusFactory) -> None:
        """``limit=0`` lists nothing; a limit beyond 64 bits lists everything."""

        async def failing(message: Message) -> None:
            msg = f"always fails: {message.id}"
            raise RuntimeError(msg)

        bus = await bus_factory(
            visibility_timeout=0.5, max_attempts=1, poll_interval=0.05
        )
        bus.subscribe(ContractEvent, failing, group="limits")
        await bus.start()
        await bus.publish(ContractEvent(number=1))
        await poll_until(bus.dead_letters, bool, "a dead letter")
        assert await bus.dead_letters(limit=0) == []
        assert len(await bus.dead_letters(group="limits", limit=2**70)) == 1
        assert await bus.replay_dead_letter("unknown", group="g" * 255) is False
