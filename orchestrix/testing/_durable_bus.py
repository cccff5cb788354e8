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
from typing import TYPE_CHECKING, Protocol, TypedDict

import pytest

from orchestrix.errors import ConfigurationError
from orchestrix.testing._support import (
    ContractCommand,
    ContractEvent,
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
    """The ``bus_factory`` fixture: makes unstarted buses sharing one storage."""

    def __call__(
        self,
        *,
        visibility_timeout: float = ...,
        max_attempts: int = ...,
        poll_interval: float = ...,
        concurrency: int = ...,
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
    ``concurrency``) and returning a new, unstarted bus. Every bus it makes
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
            record.exc_info is not None
            and isinstance(record.exc_info[1], RuntimeError)
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

    async def test_close_waits_for_running_handlers(
        self, bus_factory: BusFactory
    ) -> None:
        """``close`` lets a running handler finish before it returns."""
        started = asyncio.Event()
        finished: list[str] = []

        async def handler(message: Message) -> None:
            started.set()
            await asyncio.sleep(0.2)
            finished.append(message.id)

        bus = await bus_factory(**PATIENT)
        bus.subscribe(ContractEvent, handler, group="graceful")
        await bus.start()
        event = ContractEvent(number=1)
        await bus.publish(event)
        async with asyncio.timeout(10):
            await started.wait()
        await bus.close()
        assert finished == [event.id]

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("visibility_timeout", 0),
            ("visibility_timeout", -1.0),
            ("max_attempts", 0),
            ("poll_interval", 0),
            ("concurrency", 0),
        ],
    )
    async def test_invalid_options(
        self, bus_factory: BusFactory, option: str, value: float
    ) -> None:
        """A bad option raises `ConfigurationError` naming it."""
        options: dict[str, float] = {option: value}

        async def open_and_start() -> None:
            bus = await bus_factory(**options)  # type: ignore[arg-type]  # keys vary per case
            await bus.start()

        with pytest.raises(ConfigurationError, match=option):
            await open_and_start()
