"""Durable message bus on Redis Streams consumer groups (ADR 0022).

Every subscriber group owns one Redis stream (its queue) read through one Redis
consumer group; a set per message type name records, durably, which groups take
that type. Publishing runs one Lua script that finds the groups of every type
name the message is delivered under and appends the message to each of their
queues, guarded by an idempotency marker that expires after ``dedup_window``.
A delivery is acknowledged (XACK, XDEL) once the group's handlers return, in
batches: the acknowledgements of finished deliveries ride in the same round
trip as the consumer's next read, or are sent at once while it waits,
reclaimed by any consumer of the group (XAUTOCLAIM) after
``visibility_timeout``, and moved to the group's dead-letter stream after
``max_attempts`` deliveries. Every entry carries the type names its message is
delivered under; a consumer whose group has no local handler for any of them
leaves it pending with its delivery count put back, so another consumer of the
group reclaims it after ``visibility_timeout`` (ADR 0033).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Self, final

from orchestrix._utils import message_type_names
from orchestrix.backends._front_bus import (
    BUS_OPTIONS,
    FrontDurableMessageBus,
    drain,
    parse_bus_options,
)
from orchestrix.backends.redis import _scripts as scripts
from orchestrix.backends.redis._connection import (
    DEFAULT_PREFIX,
    DEFAULT_URL,
    LuaScript,
    RedisResource,
    decode_name,
    encode_name,
    float_option,
)
from orchestrix.codec import EncodedMessage, decode, encode
from orchestrix.errors import ConfigurationError, NoHandlerError
from orchestrix.messages import Command, Message
from orchestrix.records import DeadLetter

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orchestrix.backends._front_bus import Subscription

__all__ = ["RedisMessageBus"]

#: Name of the Redis consumer group inside every queue stream.
CONSUMER_GROUP: Final = "orchestrix"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_log = logging.getLogger("orchestrix.redis.bus")


class _Group:
    """One subscriber group of this process: its queue, handlers and deliveries."""

    __slots__ = (
        "acks",
        "cursor",
        "encoded",
        "errors",
        "inflight",
        "last_reclaim",
        "name",
        "names",
        "queue",
        "reading",
        "types",
    )

    def __init__(
        self,
        name: str,
        subscriptions: Iterable[Subscription],
        queue_prefix: str,
        errors_prefix: str,
    ) -> None:
        self.name = name
        self.encoded = encode_name(name)
        self.queue = queue_prefix + self.encoded
        self.errors = errors_prefix + self.encoded
        # The type names its local handlers take: plain, and as in entries.
        self.types = sorted({s.type_name for s in subscriptions})
        self.names = frozenset(encode_name(t).encode() for t in self.types)
        # Entries handled but not yet acknowledged, and whether the consumer
        # is blocked in a read (then a finished delivery acknowledges itself).
        self.acks: list[bytes] = []
        self.reading = False
        self.inflight: set[asyncio.Task[None]] = set()
        self.cursor: bytes | str = "0-0"
        self.last_reclaim = float("-inf")


def _micros_to_datetime(micros: bytes) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


@final
class RedisMessageBus(FrontDurableMessageBus, RedisResource):
    """Durable, at-least-once message bus on Redis Streams.

    Use `open` (or `orchestrix.open_bus`), subscribe handlers, then `start`.
    Options, as keywords or URL query parameters: ``visibility_timeout``
    (seconds before an unacknowledged delivery is redelivered, default 30),
    ``max_attempts`` (deliveries before dead-lettering, default 5),
    ``poll_interval`` (seconds a consumer blocks waiting for messages, below
    the socket timeout, default 1), ``concurrency`` (handlers run at once per
    group in this process, default 1), ``dedup_window`` (seconds a published id
    is remembered to drop republishing, default 86400), and ``prefix`` and
    ``retries`` as for the event store.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str | None = None,
        retries: int | None = None,
        visibility_timeout: float | None = None,
        max_attempts: int | None = None,
        poll_interval: float | None = None,
        concurrency: int | None = None,
        dedup_window: float | None = None,
    ) -> None:
        RedisResource.__init__(
            self,
            url,
            {
                "prefix": prefix,
                "retries": retries,
                "visibility_timeout": visibility_timeout,
                "max_attempts": max_attempts,
                "poll_interval": poll_interval,
                "concurrency": concurrency,
                "dedup_window": dedup_window,
            },
        )
        option = self.option
        options = parse_bus_options({name: option(name, None) for name in BUS_OPTIONS})
        FrontDurableMessageBus.__init__(self, options)
        self.visibility_timeout = options.visibility_timeout
        self.max_attempts = options.max_attempts
        self.poll_interval = options.poll_interval
        self.concurrency = options.concurrency
        self.dedup_window = float_option(
            "dedup_window", option("dedup_window", 86400.0)
        )
        if self.poll_interval >= self.socket_timeout:
            msg = (
                f"option poll_interval ({self.poll_interval} s) must be below the "
                f"socket_timeout ({self.socket_timeout} s): consumers block that long"
            )
            raise ConfigurationError(msg)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._groups: dict[str, _Group] = {}
        self._tasks: list[asyncio.Task[None]] = []
        client = self._client
        self._publish_script = LuaScript(client, scripts.PUBLISH)
        self._dead_letter = LuaScript(client, scripts.DEAD_LETTER)
        self._replay = LuaScript(client, scripts.REPLAY)
        self._ack = LuaScript(client, scripts.ACK)
        self._redis_error: type[Exception] = self._errors._exceptions.RedisError
        self._no_script: type[Exception] = self._errors._exceptions.NoScriptError
        self._window_ms = max(1, round(self.dedup_window * 1000))
        # Encoded type names each message class is delivered under.
        self._names: dict[type[Message], tuple[str, ...]] = {}

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        prefix: str | None = None,
        retries: int | None = None,
        visibility_timeout: float | None = None,
        max_attempts: int | None = None,
        poll_interval: float | None = None,
        concurrency: int | None = None,
        dedup_window: float | None = None,
    ) -> Self:
        """Return a bus on the Redis server at *url*, once it answers; not started.

        Raises:
            ConfigurationError: A bad URL or option (the message names it).
            MissingDependencyError: The ``redis`` package is not installed.
            BackendUnavailable: The server cannot be reached.
        """
        bus = cls(
            url,
            prefix=prefix,
            retries=retries,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            poll_interval=poll_interval,
            concurrency=concurrency,
            dedup_window=dedup_window,
        )
        await bus._connect()
        return bus

    async def _start(self) -> None:
        # Registers this process's groups durably, then starts consuming.
        keys = self.keys
        self._groups = {
            name: _Group(name, subscriptions, keys.bus_queue, keys.bus_errors)
            for name, subscriptions in self._subscriptions.groups().items()
        }
        await self._register()
        for group in self._groups.values():
            task = asyncio.create_task(
                self._consume(group), name=f"orchestrix-redis-bus:{group.name}"
            )
            self._tasks.append(task)

    async def _register(self) -> None:
        keys, client = self.keys, self._client
        with self._errors:
            for group in self._groups.values():
                try:
                    await client.xgroup_create(
                        group.queue, CONSUMER_GROUP, id="0", mkstream=True
                    )
                except self._errors._exceptions.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
            pipe = client.pipeline(transaction=True)
            for group in self._groups.values():
                pipe.sadd(keys.bus_groups, group.encoded)
                for type_name in group.types:
                    pipe.sadd(keys.bus_type + encode_name(type_name), group.encoded)
            await pipe.execute()

    async def _publish(self, message: Message) -> None:
        # Stores the message once for every group registered for its types;
        # republishing an id within dedup_window queues nothing.
        record = encode(message)
        keys = self.keys
        kind = type(message)
        names = self._names.get(kind)
        if names is None:
            names = self._names[kind] = tuple(
                encode_name(name) for name in message_type_names(kind)
            )
        with self._errors:
            queued = await self._publish_script(
                (keys.bus_seen + encode_name(record.id),),
                keys.bus_queue,
                keys.bus_type,
                "1" if isinstance(message, Command) else "0",
                self._window_ms,
                record.id,
                record.type,
                record.schema_version,
                record.payload,
                *names,
            )
        if queued == -1:
            msg = (
                f"no handler subscribes to command {record.type!r} in any process "
                f"using prefix {self.keys.prefix!r}: start a bus that subscribes to "
                f"it before publishing"
            )
            raise NoHandlerError(msg)

    async def _consume(self, group: _Group) -> None:
        loop = asyncio.get_running_loop()
        block = max(1, round(self.poll_interval * 1000))
        reclaim_every = min(self.poll_interval, self.visibility_timeout / 2)
        while not self._closed:
            try:
                free = self.concurrency - len(group.inflight)
                if free > 0 and loop.time() - group.last_reclaim >= reclaim_every:
                    group.last_reclaim = loop.time()
                    free -= await self._reclaim(group, free)
                if free <= 0:
                    await asyncio.wait(
                        group.inflight,
                        timeout=self.poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    continue
                reply = await self._read(group, free, block)
                for _, entries in reply or ():
                    for entry_id, fields in entries:
                        self._spawn(group, entry_id, fields, 1)
            except self._redis_error as exc:
                # redis-py may turn the cancellation of a blocked read into a
                # connection error; a closing bus must not take it for a fault.
                if self.closed:
                    return
                if "NOGROUP" in str(exc):
                    await self._recreate(group)
                    continue
                _log.warning(
                    "consumer of group %r: %s; retrying in %s s",
                    group.name,
                    self._errors.translate(exc),
                    self.poll_interval,
                )
                await asyncio.sleep(self.poll_interval)

    async def _read(self, group: _Group, count: int, block: int) -> Any:
        """Acknowledge the finished deliveries and read new entries, in one trip."""
        acks = group.acks
        if not acks:
            group.reading = True
            try:
                return await self._client.xreadgroup(
                    CONSUMER_GROUP,
                    self.consumer,
                    {group.queue: ">"},
                    count=count,
                    block=block,
                )
            finally:
                group.reading = False
        group.acks = []
        pipe = self._client.pipeline(transaction=False)
        pipe.execute_command(
            "EVALSHA",
            self._ack.sha,
            2,
            group.queue,
            group.errors,
            CONSUMER_GROUP,
            *acks,
        )
        pipe.xreadgroup(
            CONSUMER_GROUP, self.consumer, {group.queue: ">"}, count=count, block=block
        )
        group.reading = True
        try:
            acked, reply = await pipe.execute(raise_on_error=False)
        except BaseException:
            group.acks[:0] = acks  # sent again later: acknowledging is idempotent
            raise
        finally:
            group.reading = False
        if isinstance(acked, self._no_script):
            await self._ack.load()
            group.acks[:0] = acks
        elif isinstance(acked, Exception):
            self._ack_failed(group, acks, acked)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _flush_acks(self, group: _Group) -> None:
        """Acknowledge the finished deliveries of *group* now."""
        acks, group.acks = group.acks, []
        if not acks:
            return
        try:
            await self._ack((group.queue, group.errors), CONSUMER_GROUP, *acks)
        except self._redis_error as exc:
            self._ack_failed(group, acks, exc)

    def _ack_failed(self, group: _Group, acks: list[bytes], exc: Exception) -> None:
        _log.warning(
            "cannot acknowledge %s in group %r, it will be redelivered: %s",
            ", ".join(entry_id.decode() for entry_id in acks),
            group.name,
            self._errors.translate(exc),
        )

    async def _recreate(self, group: _Group) -> None:
        _log.warning("queue of group %r vanished; registering it again", group.name)
        try:
            await self._register()
        except Exception:  # noqa: BLE001 -- the consumer loop logs and retries
            _log.warning("cannot register group %r yet", group.name, exc_info=True)
            await asyncio.sleep(self.poll_interval)

    async def _reclaim(self, group: _Group, free: int) -> int:
        client = self._client
        reply = await client.xautoclaim(
            group.queue,
            CONSUMER_GROUP,
            self.consumer,
            round(self.visibility_timeout * 1000),
            start_id=group.cursor,
            count=free,
        )
        group.cursor, entries = reply[0], reply[1]
        entries = [(entry_id, fields) for entry_id, fields in entries if fields]
        if not entries:
            return 0
        pipe = client.pipeline(transaction=False)
        for entry_id, _ in entries:
            pipe.xpending_range(
                group.queue, CONSUMER_GROUP, entry_id, entry_id, 1, self.consumer
            )
        counts = {
            row["message_id"]: row["times_delivered"]
            for rows in await pipe.execute()
            for row in rows
        }
        claimed = 0
        for entry_id, fields in entries:
            attempt = counts.get(entry_id)
            if attempt is None:  # acknowledged meanwhile by its slow first consumer
                continue
            if attempt > self.max_attempts:
                await self._move_to_dead_letters(group, entry_id, attempt - 1, "")
                continue
            self._spawn(group, entry_id, fields, attempt)
            claimed += 1
        return claimed

    def _spawn(
        self, group: _Group, entry_id: bytes, fields: dict[bytes, bytes], attempt: int
    ) -> None:
        task = asyncio.create_task(self._deliver(group, entry_id, fields, attempt))
        group.inflight.add(task)
        task.add_done_callback(group.inflight.discard)

    async def _deliver(
        self, group: _Group, entry_id: bytes, fields: dict[bytes, bytes], attempt: int
    ) -> None:
        names = fields.get(b"n")
        if names is not None and group.names.isdisjoint(names.split(b" ")):
            await self._release(group, entry_id, fields, attempt)
            return
        routes: tuple[Subscription, ...] = ()
        try:
            record = EncodedMessage(
                fields[b"i"].decode(),
                fields[b"t"].decode(),
                int(fields[b"s"]),
                fields[b"p"],
            )
            message = decode(record)
            routes = self._subscriptions.group_routes(group.name, type(message))
            for route in routes:
                await route.handler(message)
        except Exception as exc:  # noqa: BLE001 -- handler failures are logged and retried
            _log.error(
                "handler of group %r failed on message %s (attempt %d of %d)",
                group.name,
                fields.get(b"i", entry_id).decode(),
                attempt,
                self.max_attempts,
                exc_info=exc,
            )
            if not self._released:
                error = f"{type(exc).__name__}: {exc}"
                await self._failed(group, entry_id, attempt, error)
            return
        if self._released:  # a handler closed its own bus: the entry stays pending
            return
        if not routes:  # an entry queued before the type names were kept
            await self._release(group, entry_id, fields, attempt)
            return
        group.acks.append(entry_id)
        # A consumer about to read sends the acknowledgement with its read; one
        # blocked in a read (or gone, when closing) cannot, so send it now.
        if group.reading or self._closed:
            await self._flush_acks(group)

    async def _release(
        self, group: _Group, entry_id: bytes, fields: dict[bytes, bytes], attempt: int
    ) -> None:
        """Leave an entry no local handler takes to the group's other consumers.

        It is not an attempt: its delivery count goes back, and it stays
        pending with an idle time of a whole visibility timeout, so the next
        reclaim of any consumer of the group takes it at once. (Were its idle
        time to restart, this consumer, the first to see it expire again,
        could keep it from the others for good.)
        """
        _log.debug(
            "no handler of group %r in this process takes message %s; left for "
            "another consumer of the group",
            group.name,
            fields.get(b"i", entry_id).decode(),
        )
        try:
            await self._client.xclaim(
                group.queue,
                CONSUMER_GROUP,
                self.consumer,
                0,
                [entry_id],
                idle=round(self.visibility_timeout * 1000),
                retrycount=attempt - 1,
                justid=True,
            )
        except self._redis_error as exc:
            _log.warning(
                "cannot give back %s in group %r, so it counts as an attempt: %s",
                entry_id.decode(),
                group.name,
                self._errors.translate(exc),
            )

    async def _failed(
        self, group: _Group, entry_id: bytes, attempt: int, error: str
    ) -> None:
        try:
            if attempt >= self.max_attempts:
                await self._move_to_dead_letters(group, entry_id, attempt, error)
            else:
                await self._client.hset(group.errors, entry_id, error)
        except self._redis_error as exc:
            _log.warning(
                "cannot record the failure of %s in group %r: %s",
                entry_id.decode(),
                group.name,
                self._errors.translate(exc),
            )

    async def _move_to_dead_letters(
        self, group: _Group, entry_id: bytes, attempts: int, error: str
    ) -> None:
        keys = self.keys
        moved = await self._dead_letter(
            (
                group.queue,
                keys.bus_dead_letters + group.encoded,
                keys.bus_dead_index + group.encoded,
                group.errors,
            ),
            CONSUMER_GROUP,
            entry_id,
            attempts,
            error,
        )
        if moved:
            _log.error(
                "message entry %s of group %r moved to the dead letters after %d "
                "attempts",
                entry_id.decode(),
                group.name,
                attempts,
            )

    async def _dead_letters(self, group: str | None, limit: int) -> list[DeadLetter]:
        keys, client = self.keys, self._client
        found: list[tuple[tuple[int, int], DeadLetter]] = []
        with self._errors:
            if group is None:
                groups = sorted(
                    decode_name(g) for g in await client.smembers(keys.bus_groups)
                )
            else:
                groups = [group]
            for name in groups if limit else ():
                key = keys.bus_dead_letters + encode_name(name)
                for entry_id, f in await client.xrange(key, "-", "+", limit):
                    ms, _, seq = entry_id.partition(b"-")
                    letter = DeadLetter(
                        message_id=f[b"i"].decode(),
                        group=name,
                        attempts=int(f[b"a"]),
                        error=f[b"e"].decode(),
                        failed_at=_micros_to_datetime(f[b"f"]),
                        record=EncodedMessage(
                            f[b"i"].decode(), f[b"t"].decode(), int(f[b"s"]), f[b"p"]
                        ),
                    )
                    found.append(((int(ms), int(seq)), letter))
        found.sort(key=lambda item: item[0])
        return [letter for _, letter in found[:limit]]

    async def _replay_dead_letter(self, message_id: str, group: str) -> bool:
        keys, encoded = self.keys, encode_name(group)
        with self._errors:
            replayed = await self._replay(
                (
                    keys.bus_queue + encoded,
                    keys.bus_dead_letters + encoded,
                    keys.bus_dead_index + encoded,
                ),
                message_id,
            )
        return bool(replayed)

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Handlers still running after the close timeout are cancelled; their
        # entries stay pending and are reclaimed after the visibility timeout.
        running = {task for group in self._groups.values() for task in group.inflight}
        await drain(running, self._bus_options.close_timeout)
        for group in self._groups.values():
            await self._flush_acks(group)
        if self._started:
            await self._forget_consumer()
        await self._client.aclose()

    async def _forget_consumer(self) -> None:
        # A consumer that holds no pending entry can go; one that does stays so
        # that its entries are reclaimed by the others after the timeout.
        client = self._client
        for group in self._groups.values():
            try:
                pending = await client.xpending_range(
                    group.queue, CONSUMER_GROUP, "-", "+", 1, self.consumer
                )
                if not pending:
                    await client.xgroup_delconsumer(
                        group.queue, CONSUMER_GROUP, self.consumer
                    )
            except self._redis_error:
                _log.debug("cannot remove consumer %s", self.consumer, exc_info=True)

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    def __repr__(self) -> str:
        prefix = self.keys.prefix if self.keys.prefix != DEFAULT_PREFIX else None
        extra = f", prefix={prefix!r}" if prefix else ""
        return f"RedisMessageBus({self._where!r}{extra}, consumer={self.consumer!r})"
