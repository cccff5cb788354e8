"""The in-memory bus: awaited dispatch, error aggregation and inspection helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from orchestrix import (
    Command,
    Event,
    HandlerError,
    InvalidArgumentError,
    Message,
    NoHandlerError,
    OrchestrixError,
    SerializationError,
)
from orchestrix.backends.memory import Handled, InMemoryMessageBus


@dataclass(frozen=True, kw_only=True, slots=True)
class Shipped(Event, type="tests.memory_bus.Shipped"):
    order_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Anything(Event, type="tests.memory_bus.Anything"):
    value: Any


@dataclass(frozen=True, kw_only=True, slots=True)
class Ship(Command, type="tests.memory_bus.Ship"):
    order_id: str


async def test_publish_returns_after_handlers_ran_in_order() -> None:
    """Handlers have run, in subscription order, when ``publish`` returns."""
    bus = InMemoryMessageBus()
    calls: list[str] = []

    async def first(message: Shipped) -> None:
        calls.append("first")

    async def second(message: Event) -> None:
        calls.append("second")

    async def third(message: Shipped) -> None:
        calls.append("third")

    bus.subscribe(Shipped, first)
    bus.subscribe(Event, second)
    bus.subscribe(Shipped, third)
    await bus.start()
    await bus.publish(Shipped(order_id="o-1"))
    assert calls == ["first", "second", "third"]


async def test_failures_are_aggregated_after_every_handler_ran() -> None:
    """Failing handlers do not stop the others; one `HandlerError` holds them all."""
    bus = InMemoryMessageBus()
    ran: list[str] = []

    async def broken(message: Shipped) -> None:
        ran.append("broken")
        msg = "no stock"
        raise ValueError(msg)

    async def fine(message: Shipped) -> None:
        ran.append("fine")

    async def also_broken(message: Shipped) -> None:
        ran.append("also_broken")
        msg = "no courier"
        raise KeyError(msg)

    for handler in (broken, fine, also_broken):
        bus.subscribe(Shipped, handler)
    event = Shipped(order_id="o-1")
    with pytest.raises(HandlerError) as caught:
        await bus.publish(event)
    assert ran == ["broken", "fine", "also_broken"]
    error = caught.value
    assert isinstance(error, OrchestrixError)
    assert isinstance(error, ExceptionGroup)
    assert error.dispatched == event
    assert "2 of 3 handlers failed" in str(error)
    assert [type(e) for e in error.exceptions] == [ValueError, KeyError]
    notes = [e.__notes__ for e in error.exceptions]
    assert "broken" in notes[0][0]
    assert "also_broken" in notes[1][0]
    assert [h.error is not None for h in bus.handled] == [True, False, True]


async def test_handler_error_works_with_except_star() -> None:
    """The aggregated error can be split with ``except*`` by exception type."""
    bus = InMemoryMessageBus()

    async def broken(message: Shipped) -> None:
        msg = "boom"
        raise ValueError(msg)

    bus.subscribe(Shipped, broken)
    caught: list[BaseException] = []
    try:
        await bus.publish(Shipped(order_id="o-1"))
    except* ValueError as group:
        caught.extend(group.exceptions)
    assert [str(e) for e in caught] == ["boom"]


async def test_handlers_get_a_decoded_copy() -> None:
    """Handlers receive an equal copy that went through the encoded form."""
    bus = InMemoryMessageBus()
    received: list[Message] = []

    async def handler(message: Shipped) -> None:
        received.append(message)

    bus.subscribe(Shipped, handler)
    event = Shipped(order_id="o-1")
    await bus.publish(event)
    assert received == [event]
    assert received[0] is not event
    assert bus.published == [event]


async def test_unencodable_message_runs_nothing() -> None:
    """A message JSON cannot encode fails before any handler runs."""
    bus = InMemoryMessageBus()
    ran: list[Message] = []

    async def handler(message: Anything) -> None:
        ran.append(message)

    bus.subscribe(Anything, handler)
    with pytest.raises(SerializationError):
        await bus.publish(Anything(value=object()))
    assert ran == []
    assert bus.published == []


async def test_unhandled_command_is_not_recorded() -> None:
    """A command nobody handles raises `NoHandlerError` naming its type."""
    bus = InMemoryMessageBus()
    with pytest.raises(NoHandlerError, match="tests.memory_bus.Ship"):
        await bus.publish(Ship(order_id="o-1"))
    assert bus.published == []


async def test_nested_publish_completes_first() -> None:
    """A handler that publishes runs the nested dispatch before it returns."""
    bus = InMemoryMessageBus()
    calls: list[str] = []

    async def ship(command: Ship) -> None:
        calls.append("ship")
        await bus.publish(command.caused(Shipped(order_id=command.order_id)))
        calls.append("ship done")

    async def notify(event: Shipped) -> None:
        calls.append("notify")

    bus.subscribe(Ship, ship)
    bus.subscribe(Shipped, notify)
    await bus.start()
    command = Ship(order_id="o-1")
    await bus.publish(command)
    assert calls == ["ship", "notify", "ship done"]
    assert [type(m) for m in bus.published] == [Ship, Shipped]
    assert bus.published[1].causation_id == command.id


async def test_handled_and_clear() -> None:
    """`handled` records each call; `clear` forgets history, not subscriptions."""
    bus = InMemoryMessageBus()

    async def handler(message: Shipped) -> None:
        return None

    bus.subscribe(Shipped, handler, group="audit")
    event = Shipped(order_id="o-1")
    await bus.publish(event)
    assert bus.handled == [Handled(handler, "audit", event, None)]  # type: ignore[arg-type]  # handler of a subclass
    bus.clear()
    assert bus.published == []
    assert bus.handled == []
    await bus.publish(event)
    assert len(bus.handled) == 1


async def test_publish_before_start_dispatches() -> None:
    """The in-memory bus needs no ``start`` to dispatch; ``start`` only seals it."""
    bus = InMemoryMessageBus()
    received: list[Message] = []

    async def handler(message: Shipped) -> None:
        received.append(message)

    bus.subscribe(Shipped, handler)
    await bus.publish(Shipped(order_id="o-1"))
    assert len(received) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ((dict, None), {}, "Message subclass"),
        ((Shipped, "not callable"), {}, "callable"),
        ((Shipped, None), {"group": ""}, "group"),
    ],
)
async def test_subscribe_rejects_bad_arguments(
    args: tuple[Any, Any], kwargs: dict[str, Any], problem: str
) -> None:
    """Bad subscription arguments raise `InvalidArgumentError` saying which."""
    bus = InMemoryMessageBus()

    async def handler(message: Message) -> None:
        return None

    message_type, function = args
    with pytest.raises(InvalidArgumentError, match=problem):
        bus.subscribe(message_type, function or handler, **kwargs)


async def test_publish_rejects_non_messages() -> None:
    """Publishing something that is no Message raises `InvalidArgumentError`."""
    bus = InMemoryMessageBus()
    with pytest.raises(InvalidArgumentError, match="takes a Message"):
        await bus.publish({"type": "x"})  # type: ignore[arg-type]  # the wrong type is the point
