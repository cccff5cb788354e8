"""`MessageBusContract`: the executable copy of the `MessageBus` contract.

Every test subscribes, starts the bus, publishes, then waits (bounded polling)
for handlers to have run, so the same tests hold for a bus that dispatches
before `publish` returns and for a durable bus whose workers run later.
"""

# Contract suites are tests shipped in the package: they assert, and compare
# with literal counts.
# ruff: noqa: S101, PLR2004

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from orchestrix.errors import (
    HandlerRegistrationError,
    InvalidArgumentError,
    NoHandlerError,
    ResourceClosedError,
    SerializationError,
)
from orchestrix.messages import Event, Message
from orchestrix.testing._support import (
    WAIT_TIMEOUT,
    ContractCommand,
    ContractEvent,
    OpaqueEvent,
    OtherContractEvent,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orchestrix.protocols import MessageBus

__all__ = ["MessageBusContract"]


def _recorder(into: list[Message]) -> Callable[[Message], Awaitable[None]]:
    async def record(message: Message) -> None:
        into.append(message)

    return record


@pytest.mark.asyncio
class MessageBusContract:
    """The `MessageBus` contract; subclass it and override the `bus` fixture.

    The fixture must yield an open bus, not started, isolated from other tests,
    and close it afterwards.
    """

    @pytest.fixture
    async def bus(self) -> MessageBus:
        """Yield an open, isolated, unstarted `MessageBus` (override in a subclass)."""
        msg = (
            f"{type(self).__name__} must override the 'bus' fixture to yield an "
            f"open, unstarted MessageBus of the backend under test"
        )
        raise NotImplementedError(msg)

    async def test_event_fans_out(self, bus: MessageBus) -> None:
        """Every handler subscribed to an event's type receives it."""
        first: list[Message] = []
        second: list[Message] = []
        bus.subscribe(ContractEvent, _recorder(first), group="first")
        bus.subscribe(ContractEvent, _recorder(second), group="second")
        await bus.start()
        event = ContractEvent(number=1)
        await bus.publish(event)
        await wait_until(lambda: bool(first and second), "both handlers ran")
        assert first == [event]
        assert second == [event]

    async def test_handler_receives_an_equal_message(self, bus: MessageBus) -> None:
        """The handler's message equals the published one, envelope and data."""
        received: list[Message] = []
        bus.subscribe(ContractEvent, _recorder(received))
        await bus.start()
        event = ContractEvent(
            number=3,
            text="\u00e9\U0001f600 \"'",
            tags=("a",),
            detail={"k": [1, None, {"n": 2.5}]},
            subject="sub",
            correlation_id="corr",
            causation_id="cause",
        )
        await bus.publish(event)
        await wait_until(lambda: bool(received), "the handler ran")
        assert received == [event]
        assert type(received[0]) is ContractEvent

    async def test_base_class_subscription(self, bus: MessageBus) -> None:
        """A handler subscribed to `Event` receives every event subclass."""
        received: list[Message] = []
        bus.subscribe(Event, _recorder(received))
        await bus.start()
        events = [ContractEvent(number=1), OtherContractEvent(number=2)]
        for event in events:
            await bus.publish(event)
        await wait_until(lambda: len(received) >= 2, "both events arrived")
        assert sorted(m.id for m in received) == sorted(e.id for e in events)

    async def test_subscription_filters_by_type(self, bus: MessageBus) -> None:
        """A handler never receives messages of a type it did not subscribe to."""
        contract: list[Message] = []
        other: list[Message] = []
        bus.subscribe(ContractEvent, _recorder(contract))
        bus.subscribe(OtherContractEvent, _recorder(other))
        await bus.start()
        await bus.publish(OtherContractEvent(number=1))
        await bus.publish(ContractEvent(number=2))
        await wait_until(lambda: bool(contract and other), "both handlers ran")
        assert [type(m) for m in contract] == [ContractEvent]
        assert [type(m) for m in other] == [OtherContractEvent]

    async def test_event_without_subscribers(self, bus: MessageBus) -> None:
        """Publishing an event nobody subscribes to is no error."""
        await bus.start()
        await bus.publish(OtherContractEvent(number=1))

    async def test_groups(self, bus: MessageBus) -> None:
        """Handlers of one group and of other groups each get a message once."""
        same_a: list[Message] = []
        same_b: list[Message] = []
        other: list[Message] = []
        default: list[Message] = []
        bus.subscribe(ContractEvent, _recorder(same_a), group="shared")
        bus.subscribe(ContractEvent, _recorder(same_b), group="shared")
        bus.subscribe(ContractEvent, _recorder(other), group="other")
        bus.subscribe(ContractEvent, _recorder(default))
        await bus.start()
        first, second = ContractEvent(number=1), ContractEvent(number=2)
        await bus.publish(first)
        await bus.publish(second)
        handlers = (same_a, same_b, other, default)
        await wait_until(
            lambda: all(len(h) >= 2 for h in handlers), "every handler got both"
        )
        for received in handlers:
            assert sorted(m.id for m in received) == sorted([first.id, second.id])

    async def test_command_has_one_handler(self, bus: MessageBus) -> None:
        """A command goes to its one handler; a second subscription is refused."""
        received: list[Message] = []
        bus.subscribe(ContractCommand, _recorder(received))
        with pytest.raises(HandlerRegistrationError):
            bus.subscribe(ContractCommand, _recorder([]), group="elsewhere")
        await bus.start()
        command = ContractCommand(number=1)
        await bus.publish(command)
        await wait_until(lambda: bool(received), "the command handler ran")
        assert received == [command]

    async def test_unhandled_command(self, bus: MessageBus) -> None:
        """Publishing a command no handler subscribes to raises `NoHandlerError`."""
        bus.subscribe(ContractEvent, _recorder([]))
        await bus.start()
        with pytest.raises(NoHandlerError):
            await bus.publish(ContractCommand(number=1))

    async def test_unencodable_message(self, bus: MessageBus) -> None:
        """A message JSON cannot encode raises `SerializationError` and is not sent."""
        received: list[Message] = []
        bus.subscribe(OpaqueEvent, _recorder(received))
        await bus.start()
        with pytest.raises(SerializationError):
            await bus.publish(OpaqueEvent(value=object()))
        good = OpaqueEvent(value={"fine": True})
        await bus.publish(good)
        await wait_until(lambda: bool(received), "the encodable message arrived")
        assert received == [good]

    async def test_subscribe_after_start(self, bus: MessageBus) -> None:
        """Subscribing once the bus runs raises `HandlerRegistrationError`."""
        await bus.start()
        await bus.start()
        with pytest.raises(HandlerRegistrationError):
            bus.subscribe(ContractEvent, _recorder([]))

    async def test_close_is_idempotent_and_final(self, bus: MessageBus) -> None:
        """``close`` can be repeated; publishing or subscribing then raises."""
        bus.subscribe(ContractEvent, _recorder([]))
        await bus.start()
        await bus.close()
        await bus.close()
        with pytest.raises(ResourceClosedError):
            await bus.publish(ContractEvent(number=1))
        with pytest.raises(ResourceClosedError):
            bus.subscribe(OtherContractEvent, _recorder([]))
        with pytest.raises(ResourceClosedError):
            await bus.start()

    @pytest.mark.parametrize(
        ("message_type", "handler", "group", "problem"),
        [
            ("ContractEvent", None, None, "Message subclass"),
            (dict, None, None, "Message subclass"),
            (ContractEvent(number=1), None, None, "Message subclass"),
            (ContractEvent, "not callable", None, "async handler"),
            (ContractEvent, print, None, "async handler"),
            (ContractEvent, None, "", "group"),
            (ContractEvent, None, "   ", "group"),
            (ContractEvent, None, " padded", "group"),
            (ContractEvent, None, 7, "group"),
            (ContractEvent, None, "nul\x00inside", "group"),
            (ContractEvent, None, "lone \ud800 surrogate", "group"),
        ],
        ids=[
            "type-as-text",
            "type-not-a-message",
            "type-an-instance",
            "handler-not-callable",
            "handler-not-async",
            "group-empty",
            "group-whitespace",
            "group-padded",
            "group-not-a-str",
            "group-nul",
            "group-surrogate",
        ],
    )
    async def test_subscribe_rejects_bad_arguments(
        self, bus: MessageBus, message_type: Any, handler: Any, group: Any, problem: str
    ) -> None:
        """A bad type, handler or group raises `InvalidArgumentError` naming it.

        The refused subscription leaves the bus usable: it still subscribes,
        starts and delivers afterwards.
        """
        with pytest.raises(InvalidArgumentError, match=problem):
            bus.subscribe(message_type, handler or _recorder([]), group=group)
        received: list[Message] = []
        bus.subscribe(ContractCommand, _recorder(received))
        await bus.start()
        command = ContractCommand(number=1)
        await bus.publish(command)
        await wait_until(lambda: bool(received), "the command handler ran")

    async def test_group_names_up_to_255_characters(self, bus: MessageBus) -> None:
        """A group of 255 characters of any Unicode works; 256 raise.

        Every backend stores group names, so the limit is the one every backend
        can keep (the same as for stream ids).
        """
        with pytest.raises(InvalidArgumentError, match="group"):
            bus.subscribe(ContractEvent, _recorder([]), group="g" * 256)
        received: list[Message] = []
        longest = "g\u00e9 \U0001f600:{x}/" * 28 + "\U0001f600" * 3
        assert len(longest) == 255
        bus.subscribe(ContractEvent, _recorder(received), group=longest)
        await bus.start()
        event = ContractEvent(number=1)
        await bus.publish(event)
        await wait_until(lambda: bool(received), "the handler of the long group ran")
        assert received == [event]

    @pytest.mark.parametrize(
        "message",
        [{"type": "x"}, None, ContractEvent],
        ids=["dict", "none", "a-class"],
    )
    async def test_publish_rejects_non_messages(
        self, bus: MessageBus, message: Any
    ) -> None:
        """Publishing anything but a Message instance raises `InvalidArgumentError`."""
        bus.subscribe(ContractEvent, _recorder([]))
        await bus.start()
        with pytest.raises(InvalidArgumentError, match="Message"):
            await bus.publish(message)

    async def test_close_waits_for_running_handlers(self, bus: MessageBus) -> None:
        """``close`` returns only after a handler that is running has finished.

        On the in-memory bus the handler runs inside another task's
        ``publish``; on a durable bus, in the bus's own worker.
        """
        started = asyncio.Event()
        finished: list[str] = []

        async def handler(message: Message) -> None:
            started.set()
            await asyncio.sleep(0.2)
            finished.append(message.id)

        bus.subscribe(ContractEvent, handler, group="graceful")
        await bus.start()
        event = ContractEvent(number=1)
        publishing = asyncio.ensure_future(bus.publish(event))
        try:
            async with asyncio.timeout(WAIT_TIMEOUT):
                await started.wait()
            await bus.close()
            assert finished == [event.id]
        finally:
            await publishing

    async def test_second_close_waits_for_the_first(self, bus: MessageBus) -> None:
        """A ``close`` called while another is in progress returns once it is done.

        So every caller of ``close`` can rely on the handlers having finished
        when it returns, whichever call did the work.
        """
        started = asyncio.Event()
        finished: list[str] = []

        async def handler(message: Message) -> None:
            started.set()
            await asyncio.sleep(0.2)
            finished.append(message.id)

        bus.subscribe(ContractEvent, handler, group="graceful")
        await bus.start()
        event = ContractEvent(number=1)
        publishing = asyncio.ensure_future(bus.publish(event))
        try:
            async with asyncio.timeout(WAIT_TIMEOUT):
                await started.wait()
            first = asyncio.ensure_future(bus.close())
            await asyncio.sleep(0)
            await bus.close()
            assert finished == [event.id]
            await first
        finally:
            await publishing

    async def test_a_handler_can_close_its_own_bus(self, bus: MessageBus) -> None:
        """A handler may close its own bus; ``close`` does not wait for that handler.

        Only the other running handlers are waited for, so the call returns
        instead of waiting on itself; publishing afterwards raises.
        """
        closed = asyncio.Event()

        async def closing(_message: Message) -> None:
            await bus.close()
            closed.set()

        bus.subscribe(ContractEvent, closing, group="closer")
        await bus.start()
        publishing = asyncio.ensure_future(bus.publish(ContractEvent(number=1)))
        try:
            async with asyncio.timeout(WAIT_TIMEOUT):
                await closed.wait()
        finally:
            await publishing
        with pytest.raises(ResourceClosedError):
            await bus.publish(ContractEvent(number=2))
