"""Bus workloads B1 (throughput) and B2 (publish-to-handle latency), and contenders.

Every contender delivers small messages carrying a sequence number from a
publisher to one consumer in the same process:

* orchestrix: ``open_bus(url)`` on each backend, one handler in one group;
* raw memory: an ``asyncio.Queue`` and a consumer task;
* raw PostgreSQL: ``LISTEN`` on one asyncpg connection, ``pg_notify`` from
  another (nothing is stored: the floor of any PostgreSQL bus);
* raw Redis: Streams with a consumer group, ``XADD`` per message, a consumer
  reading batches of up to 100 with ``XREADGROUP`` and acknowledging them
  with one ``XACK`` per batch.

B1 publishes every message one after another (each ``publish`` awaited) while
the consumer runs, and measures from the first publish to the last handled
message. B2 publishes one message at a time and waits until it is handled.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from benchmarks.settings import Settings, Unavailable, fresh_name
from benchmarks.workloads import Result, VerificationError
from orchestrix.messages import Event

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from benchmarks.registry import Entry
    from benchmarks.sizes import Sizes
    from orchestrix.protocols import MessageBus

__all__ = [
    "BusContender",
    "OrchestrixBus",
    "Ping",
    "RawListenNotify",
    "RawQueue",
    "RawRedisStreams",
    "measure",
]

OnMessage = "Callable[[int], None]"
_TIMEOUT = 60.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Ping(Event, type="bench.bus.ping"):
    """The message every bus contender carries."""

    seq: int


class BusContender(ABC):
    """A way of moving messages from a publisher to a handler."""

    library: ClassVar[str]

    def __init__(self, settings: Settings, backend: str) -> None:
        self.settings = settings
        self.backend = backend

    @abstractmethod
    async def open(self, on_message: Callable[[int], None]) -> None:
        """Connect and start consuming; call *on_message* with each sequence number."""

    @abstractmethod
    async def publish(self, seq: int) -> None:
        """Publish message number *seq*."""

    @abstractmethod
    async def close(self) -> None:
        """Stop consuming and remove everything `open` created."""


class OrchestrixBus(BusContender):
    """``orchestrix.open_bus`` on the contender's backend."""

    library: ClassVar[str] = "orchestrix"

    async def open(self, on_message: Callable[[int], None]) -> None:
        from benchmarks.contenders.orchestrix_store import Namespace
        from orchestrix.config import open_bus

        self._namespace = Namespace(self.backend, self.settings)
        self._bus: MessageBus = await open_bus(self._namespace.url)

        async def handle(message: Ping) -> None:
            on_message(message.seq)

        self._bus.subscribe(Ping, handle, group="bench")
        await self._bus.start()

    async def publish(self, seq: int) -> None:
        await self._bus.publish(Ping(seq=seq))

    async def close(self) -> None:
        try:
            await self._bus.close()
        finally:
            await self._namespace.remove()


class RawQueue(BusContender):
    """An ``asyncio.Queue`` drained by one consumer task."""

    library: ClassVar[str] = "raw"

    async def open(self, on_message: Callable[[int], None]) -> None:
        self._queue: asyncio.Queue[int] = asyncio.Queue()

        async def consume() -> None:
            while True:
                on_message(await self._queue.get())

        self._task = asyncio.create_task(consume())

    async def publish(self, seq: int) -> None:
        await self._queue.put(seq)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class RawListenNotify(BusContender):
    """PostgreSQL ``LISTEN``/``NOTIFY`` through asyncpg: no storage, no retries."""

    library: ClassVar[str] = "raw"

    async def open(self, on_message: Callable[[int], None]) -> None:
        try:
            import asyncpg
        except ImportError as exc:
            raise Unavailable("asyncpg is not installed") from exc
        self._channel = fresh_name("raw")
        self._listener: Any = await asyncpg.connect(self.settings.postgres_url)
        self._publisher: Any = await asyncpg.connect(self.settings.postgres_url)

        def callback(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            on_message(int(str(payload)))

        await self._listener.add_listener(self._channel, callback)

    async def publish(self, seq: int) -> None:
        await self._publisher.execute(
            "SELECT pg_notify($1, $2)", self._channel, str(seq)
        )

    async def close(self) -> None:
        await self._listener.close()
        await self._publisher.close()


class RawRedisStreams(BusContender):
    """A Redis Stream with a consumer group; batched reads and acknowledgements."""

    library: ClassVar[str] = "raw"

    async def open(self, on_message: Callable[[int], None]) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:
            raise Unavailable("redis is not installed") from exc
        self._prefix = fresh_name("raw")
        self._key = f"{self._prefix}:stream"
        self._publisher: Any = aioredis.Redis.from_url(self.settings.redis_url)
        self._consumer: Any = aioredis.Redis.from_url(self.settings.redis_url)
        await self._publisher.xgroup_create(self._key, "bench", id="0", mkstream=True)

        self._running = True

        async def consume() -> None:
            # Stopped by a flag, not by cancellation: cancelling redis-py in
            # the middle of a blocking read leaves its connection unusable.
            while self._running:
                reply = await self._consumer.xreadgroup(
                    "bench", "c1", {self._key: ">"}, count=100, block=100
                )
                for _key, entries in reply:
                    for _id, fields in entries:
                        on_message(int(fields[b"seq"]))
                    await self._consumer.xack(
                        self._key, "bench", *[i for i, _ in entries]
                    )

        self._task = asyncio.create_task(consume())

    async def publish(self, seq: int) -> None:
        await self._publisher.xadd(self._key, {"seq": seq})

    async def close(self) -> None:
        from benchmarks.contenders.raw_redis import delete_prefix

        self._running = False
        await self._task
        await self._consumer.aclose()
        await self._publisher.aclose()
        await delete_prefix(self.settings.redis_url, self._prefix)


async def b1_throughput(c: BusContender, sizes: Sizes) -> dict[str, Result]:
    """B1: publish every message back to back; time until the last is handled."""
    total = sizes.b1_messages
    seen: set[int] = set()
    done = asyncio.Event()

    def on_message(seq: int) -> None:
        seen.add(seq)
        if len(seen) == total:
            done.set()

    await c.open(on_message)
    try:
        start = time.perf_counter()
        for seq in range(total):
            await c.publish(seq)
        await asyncio.wait_for(done.wait(), _TIMEOUT)
        elapsed = time.perf_counter() - start
    finally:
        await c.close()
    if seen != set(range(total)):
        msg = f"B1 handled {len(seen)} distinct messages of {total}"
        raise VerificationError(msg)
    return {"B1": Result(total / elapsed, {"messages": total, "seconds": elapsed})}


async def b2_latency(c: BusContender, sizes: Sizes) -> dict[str, Result]:
    """B2: one message at a time; the time from publish to handler, p50 and p99."""
    loop = asyncio.get_running_loop()
    waiting: dict[int, asyncio.Future[float]] = {}

    def on_message(seq: int) -> None:
        future = waiting.pop(seq, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    warmup = max(1, sizes.b2_messages // 10)
    latencies = []
    await c.open(on_message)
    try:
        for seq in range(warmup + sizes.b2_messages):
            future = waiting[seq] = loop.create_future()
            start = time.perf_counter()
            await c.publish(seq)
            handled = await asyncio.wait_for(future, _TIMEOUT)
            if seq >= warmup:
                latencies.append((handled - start) * 1_000)
    finally:
        await c.close()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    details = {"messages": len(latencies)}
    return {
        "B2 p50": Result(statistics.median(latencies), details),
        "B2 p99": Result(cuts[98], details),
    }


def measure(
    workload: str, backend: str, settings: Settings, sizes: Sizes
) -> Callable[[Entry], Awaitable[dict[str, Result]]]:
    """Return the harness's measure function for *workload* on *backend*."""
    run = b1_throughput if workload == "B1" else b2_latency

    async def one(entry: Entry) -> dict[str, Result]:
        contender = entry.load()(settings, backend)
        return await run(contender, sizes)

    return one
