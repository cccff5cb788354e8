"""Redis bus specifics: trimming, the idempotency window, reclaiming, options."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from orchestrix import ConfigurationError, Event, open_bus
from orchestrix.backends.redis import RedisMessageBus
from orchestrix.backends.redis._connection import encode_name
from orchestrix.backends.redis.bus import CONSUMER_GROUP
from orchestrix.testing._support import poll_until, wait_until
from tests.contract.test_redis import delete_keys

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

pytestmark = pytest.mark.redis


@dataclass(frozen=True, kw_only=True, slots=True)
class Pinged(Event, type="tests.redis_bus.Pinged"):
    """An event for these tests."""

    number: int


@pytest.fixture
async def make_bus(
    redis_url: str, unique_name: str
) -> AsyncIterator[Callable[..., Awaitable[RedisMessageBus]]]:
    """Make buses on one fresh prefix; close them and delete the keys afterwards."""
    made: list[RedisMessageBus] = []

    async def make(**options: Any) -> RedisMessageBus:
        options.setdefault("poll_interval", 0.05)
        bus = await RedisMessageBus.open(redis_url, prefix=unique_name, **options)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()
    await delete_keys(redis_url, unique_name)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Any]:
    """A plain redis.asyncio client on the test server."""
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_acknowledged_entries_leave_the_queue(
    make_bus: Callable[..., Awaitable[RedisMessageBus]], raw: Any
) -> None:
    """Handled messages are deleted from the group's stream; failing ones stay."""
    handled: list[int] = []

    async def handler(message: Pinged) -> None:
        if message.number == 0:
            msg = "keep this one pending"
            raise RuntimeError(msg)
        handled.append(message.number)

    bus = await make_bus(visibility_timeout=30.0)
    bus.subscribe(Pinged, handler, group="trim")
    await bus.start()
    for number in range(5):
        await bus.publish(Pinged(number=number))
    await wait_until(lambda: len(handled) == 4, "four messages were handled")
    queue = bus.keys.bus_queue + encode_name("trim")
    await poll_until(lambda: raw.xlen(queue), lambda n: n == 1, "four were trimmed")
    pending = await raw.xpending(queue, CONSUMER_GROUP)
    assert pending["pending"] == 1


async def test_republishing_after_the_window_delivers_again(
    make_bus: Callable[..., Awaitable[RedisMessageBus]], raw: Any
) -> None:
    """The id is remembered for ``dedup_window`` seconds only, as documented."""
    received: list[str] = []

    async def handler(message: Pinged) -> None:
        received.append(message.id)

    bus = await make_bus(dedup_window=0.2)
    bus.subscribe(Pinged, handler, group="window")
    await bus.start()
    event = Pinged(number=1)
    await bus.publish(event)
    await bus.publish(event)
    await wait_until(lambda: received == [event.id], "the first delivery")
    marker = bus.keys.bus_seen + encode_name(event.id)
    await poll_until(lambda: raw.exists(marker), lambda n: n == 0, "the id expired")
    await bus.publish(event)
    await wait_until(lambda: received == [event.id] * 2, "the second delivery")


async def test_a_dead_consumers_last_attempt_is_dead_lettered(
    make_bus: Callable[..., Awaitable[RedisMessageBus]],
) -> None:
    """A delivery whose consumer hangs past its last attempt becomes a dead letter."""
    hang = asyncio.Event()

    async def stuck(message: Pinged) -> None:
        await hang.wait()

    first = await make_bus(visibility_timeout=0.3, max_attempts=1)
    first.subscribe(Pinged, stuck, group="hung")
    await first.start()
    event = Pinged(number=1)
    await first.publish(event)
    second = await make_bus(visibility_timeout=0.3, max_attempts=1)
    second.subscribe(Pinged, stuck, group="hung")
    await second.start()
    try:
        (letter,) = await poll_until(
            lambda: second.dead_letters(group="hung"), bool, "a dead letter"
        )
    finally:
        hang.set()
    assert letter.message_id == event.id
    assert letter.attempts == 1
    assert "visibility timeout" in letter.error


async def test_a_group_without_a_local_handler_leaves_the_message(
    make_bus: Callable[..., Awaitable[RedisMessageBus]], raw: Any
) -> None:
    """A consumer with no handler for a type leaves it pending, uncounted.

    Its delivery count goes back to what it was, so a consumer that handles
    the type reclaims it after the visibility timeout as its first attempt.
    """
    got: list[int] = []

    async def on_event(message: Event) -> None:
        got.append(1)

    registering = await make_bus()
    registering.subscribe(Event, on_event, group="mixed")
    await registering.start()
    await registering.close()
    narrow = await make_bus(visibility_timeout=0.3, max_attempts=1)

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Other(Event, type="tests.redis_bus.Other"):
        pass

    narrow.subscribe(Other, on_event, group="mixed")
    await narrow.start()
    await narrow.publish(Pinged(number=1))
    queue = narrow.keys.bus_queue + encode_name("mixed")
    # Pending (read by the narrow consumer) with its delivery count put back.
    await poll_until(
        lambda: raw.xpending_range(queue, CONSUMER_GROUP, "-", "+", 10),
        lambda rows: len(rows) == 1 and rows[0]["times_delivered"] == 0,
        "the narrow consumer read it and gave it back",
    )
    assert got == []
    assert await narrow.dead_letters(group="mixed") == []
    wide = await make_bus(visibility_timeout=0.3, max_attempts=1)
    wide.subscribe(Event, on_event, group="mixed")
    await wide.start()
    await wait_until(lambda: got == [1], "a consumer with a handler took it")
    assert await wide.dead_letters(group="mixed") == []


async def test_closed_consumers_are_removed(
    make_bus: Callable[..., Awaitable[RedisMessageBus]], raw: Any
) -> None:
    """A bus that closes with nothing pending removes its consumer from the group."""

    async def handler(message: Pinged) -> None:
        return None

    bus = await make_bus()
    bus.subscribe(Pinged, handler, group="tidy")
    await bus.start()
    await bus.publish(Pinged(number=1))
    queue = bus.keys.bus_queue + encode_name("tidy")
    await poll_until(lambda: raw.xlen(queue), lambda n: n == 0, "the ack")
    await bus.close()
    assert await raw.xinfo_consumers(queue, CONSUMER_GROUP) == []


async def test_open_bus_reads_options_from_the_url(
    redis_url: str, unique_name: str
) -> None:
    """Every bus option can be given as a URL query parameter."""
    url = (
        f"{redis_url}?prefix={unique_name}&visibility_timeout=2.5&max_attempts=7"
        f"&poll_interval=0.2&concurrency=4&dedup_window=60"
    )
    bus = await open_bus(url)
    assert isinstance(bus, RedisMessageBus)
    assert (
        bus.visibility_timeout,
        bus.max_attempts,
        bus.poll_interval,
        bus.concurrency,
        bus.dedup_window,
    ) == (2.5, 7, 0.2, 4, 60.0)
    assert repr(bus).startswith("RedisMessageBus('redis://")
    await bus.close()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("dedup_window=0", "dedup_window"),
        ("max_attempts=two", "max_attempts"),
        ("poll_interval=20", "poll_interval"),
        ("concurrency=1.5", "concurrency"),
    ],
)
def test_bad_bus_options_are_named(redis_url: str, query: str, named: str) -> None:
    """A bad bus option in the URL raises `ConfigurationError` naming it."""
    with pytest.raises(ConfigurationError, match=named):
        RedisMessageBus(f"{redis_url}?{query}")
