"""In-memory backends: the test doubles, and the default of ``open_store()``.

They keep exactly what a real backend keeps (the encoded form of every event
and message, see `orchestrix.codec`), so a unit test on them fails where a real
store would. Everything lives in one process and disappears with it.

Concurrency: asyncio tasks interleave only at ``await`` points, and an append
checks and writes without awaiting in between, so appends are atomic with
respect to every other task. The classes are not thread-safe; use them from one
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, final

from orchestrix._utils import (
    default_group,
    redact_url,
)
from orchestrix.backends._front import (
    FrontCheckpointStore,
    FrontEventStore,
    FrontSnapshotStore,
    check_after,
)
from orchestrix.backends._front_bus import (
    MAX_CLOSE_WAIT,
    FrontMessageBus,
    not_a_message,
)
from orchestrix.codec import EncodedMessage, decode, encode
from orchestrix.errors import (
    ConcurrencyError,
    ConfigurationError,
    DuplicateEventError,
    HandlerError,
    NoHandlerError,
)
from orchestrix.messages import Command, Event, Message
from orchestrix.protocols import (
    STREAM_EXISTS,
    Handler,
    LiveEventStore,
)
from orchestrix.records import AppendResult, Recorded, Snapshot

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = [
    "Handled",
    "InMemoryCheckpointStore",
    "InMemoryEventStore",
    "InMemoryMessageBus",
    "InMemorySnapshotStore",
    "MemoryBackend",
    "backend",
]

#: Records yielded between two suspensions of a read, so that a long read
#: lets other tasks run, as a paging backend would.
PAGE_SIZE: Final = 1_000
_time = time.time
_from_row = Recorded.from_row


def _utc_from_timestamp(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@final
class InMemoryEventStore(FrontEventStore, LiveEventStore):
    """An `EventStore` held in memory, for tests and throwaway programs.

    A read yields the events stored when its iteration began (its first
    ``__anext__``); events appended while it runs are not yielded. Records are
    not copied: a read walks the stored ones, one page of references at a time.
    Every append wakes the tasks waiting in `wait_for_append`, so
    subscriptions follow it without polling.

    Inspection helpers for tests: `streams`, `events`.
    """

    def __init__(self) -> None:
        self._log: list[Recorded] = []
        self._streams: dict[str, list[Recorded]] = {}
        # event id -> its record: finds retries and duplicates.
        self._ids: dict[str, Recorded] = {}
        # Futures of the tasks in wait_for_append, resolved by the next append.
        self._waiters: list[asyncio.Future[None]] = []

    async def _append(
        self,
        stream_id: str,
        records: list[EncodedMessage],
        expected_version: int | None,
    ) -> AppendResult:
        ids = self._ids
        if records and records[0].id in ids:
            return self._retry(stream_id, records)
        for record in records:
            found = ids.get(record.id)
            if found is not None:
                detail = f"in stream {found.stream_id!r} at version {found.version}"
                raise DuplicateEventError(record.id, stream_id, detail)
        stream = self._streams.get(stream_id)
        current = len(stream) if stream is not None else 0
        if expected_version is not None and (
            current == 0
            if expected_version == STREAM_EXISTS
            else current != expected_version
        ):
            raise ConcurrencyError(stream_id, expected_version, current)
        if not records:
            return AppendResult(current, ())
        if stream is None:
            stream = self._streams[stream_id] = []
        log = self._log
        first = len(log) + 1
        # A float now, the datetime only when a reader asks for recorded_at.
        recorded_at = _time()
        position = first
        for record in records:
            current += 1
            stored = _from_row(
                stream_id,
                current,
                position,
                recorded_at,
                record[0],
                record[1],
                record[2],
                record[3],
                _utc_from_timestamp,
            )
            log.append(stored)
            stream.append(stored)
            ids[record.id] = stored
            position += 1
        if self._waiters:
            self._wake_waiters()
        if position == first + 1:
            return AppendResult(current, (first,))
        return AppendResult(current, tuple(range(first, position)))

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_append(self, after_position: int) -> None:
        """Return once the log holds an event after *after_position*.

        See `orchestrix.protocols.LiveEventStore.wait_for_append`.

        Raises:
            InvalidArgumentError: A negative position.
            ResourceClosedError: The store is closed, or closes while waiting.
        """
        self._check_open()
        after = check_after("after_position", after_position)
        while len(self._log) <= after:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            self._check_open()

    async def close(self) -> None:
        """Close the store and wake every waiting task (see `EventStore.close`)."""
        self._closed = True
        self._wake_waiters()

    def _retry(self, stream_id: str, records: list[EncodedMessage]) -> AppendResult:
        """Return the original result if *records* repeat one earlier append."""
        found = self._ids[records[0].id]
        where, version = found.stream_id, found.version
        stream = self._streams[where]
        stored = stream[version - 1 : version - 1 + len(records)]
        # A retry is recognised by ids alone, as on every backend: the stored
        # events stand, whatever the retried ones hold (EventStore.append).
        if where != stream_id or [r.id for r in stored] != [r.id for r in records]:
            detail = (
                f"in stream {where!r} at version {version}"
                if where != stream_id
                else "earlier in this stream, not as this same batch"
            )
            raise DuplicateEventError(records[0].id, stream_id, detail)
        return AppendResult(stored[-1].version, tuple(r.position for r in stored))

    async def _read(
        self, stream_id: str, after_version: int, limit: int | None
    ) -> AsyncIterator[Recorded]:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        # The walk is written out here and in read_all: one async generator
        # step per record instead of two.
        end = len(stream) if limit is None else min(len(stream), after_version + limit)
        for start in range(after_version, end, PAGE_SIZE):
            if self._closed:  # a read in progress stops at its next page
                self._check_open()
            for record in stream[start : min(start + PAGE_SIZE, end)]:
                yield record
            if start + PAGE_SIZE < end:
                await asyncio.sleep(0)

    async def _read_all(
        self, after_position: int, limit: int | None
    ) -> AsyncIterator[Recorded]:
        log = self._log
        end = len(log) if limit is None else min(len(log), after_position + limit)
        for start in range(after_position, end, PAGE_SIZE):
            if self._closed:  # a read in progress stops at its next page
                self._check_open()
            for record in log[start : min(start + PAGE_SIZE, end)]:
                yield record
            if start + PAGE_SIZE < end:
                await asyncio.sleep(0)

    async def _stream_version(self, stream_id: str) -> int:
        stream = self._streams.get(stream_id)
        return 0 if stream is None else len(stream)

    def streams(self) -> list[str]:
        """Return the ids of every stream, in the order they were created."""
        return list(self._streams)

    def events(self, stream_id: str) -> list[Event]:
        """Return a stream's events, decoded, in order (empty when missing)."""
        return [record.event for record in self._streams.get(stream_id, ())]


@final
class InMemorySnapshotStore(FrontSnapshotStore):
    """A `SnapshotStore` held in memory: the latest snapshot per stream."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}

    async def _save(self, snapshot: Snapshot) -> None:
        stream_id, version = snapshot.stream_id, snapshot.version
        stored = self._snapshots.get(stream_id)
        if stored is None or stored.version <= version:
            self._snapshots[stream_id] = snapshot

    async def _load(self, stream_id: str) -> Snapshot | None:
        return self._snapshots.get(stream_id)


@final
class InMemoryCheckpointStore(FrontCheckpointStore):
    """A `CheckpointStore` held in memory: one position per name."""

    def __init__(self) -> None:
        self._positions: dict[str, int] = {}

    async def _load(self, name: str) -> int | None:
        return self._positions.get(name)

    async def _save(self, name: str, position: int) -> None:
        self._positions[name] = position

    async def _delete(self, name: str) -> None:
        self._positions.pop(name, None)

    async def _load_all(self) -> dict[str, int]:
        return dict(self._positions)


@final
@dataclass(frozen=True, slots=True)
class Handled:
    """One handler call made by an `InMemoryMessageBus`.

    Attributes:
        handler: The handler that was called.
        group: Its group (the default group when subscribed without one).
        message: The message it received (a decoded copy of the published one).
        error: What it raised, or None if it returned.
    """

    handler: Handler[Message]
    group: str
    message: Message
    error: Exception | None


@final
class InMemoryMessageBus(FrontMessageBus):
    """A `MessageBus` that runs handlers inside `publish`, in subscription order.

    ``await bus.publish(message)`` encodes the message (so an unencodable one
    fails as on a real bus), decodes a copy, and awaits every matching handler
    in turn. If any raised, the others still ran, and `publish` raises one
    `HandlerError` holding every failure, each with a note naming its handler.
    A handler that publishes runs the nested dispatch before returning.

    The bus dispatches whether or not it was started; `start` only closes the
    list of subscriptions, as on a durable bus. Arguments, subscriptions and
    the closed state follow the rules every bus shares (ADR 0033); `close`
    waits up to 10 s for handlers running in other tasks' ``publish`` calls.

    Inspection helpers for tests: `published`, `handled`, `clear`.
    """

    def __init__(self) -> None:
        super().__init__()
        # Dispatches running now (a nested publish counts once more), so
        # that close() can wait for them.
        self._dispatching = 0
        self._idle: asyncio.Event | None = None
        self.published: list[Message] = []
        """Every message published successfully, in publish order."""
        self.handled: list[Handled] = []
        """Every handler call, in the order they were made."""

    async def publish(self, message: Message) -> None:
        """Run every handler of *message*'s type, in subscription order, then return.

        Handlers get a decoded copy of *message*. Publishing needs no `start`.

        Raises:
            ResourceClosedError: The bus is closed (checked first).
            InvalidArgumentError: *message* is not a Message instance.
            NoHandlerError: *message* is a command nobody subscribes to.
            SerializationError: *message* cannot be encoded (nothing ran).
            HandlerError: One or more handlers raised; all handlers ran.
        """
        # The front end's checks, inline: its publish would cost this bus a
        # coroutine frame per message, a tenth of a dispatch.
        if self._closed:
            self._check_open()
        if not isinstance(message, Message):
            raise not_a_message(message)
        cls = type(message)
        routes = self._subscriptions.cached_routes.get(cls)
        if routes is None:
            routes = self._subscriptions.routes(cls)
        copy = decode(encode(message))
        if not routes and isinstance(message, Command):
            msg = (
                f"no handler subscribes to command {cls.type_name()!r}; subscribe "
                f"one with bus.subscribe({cls.__qualname__}, handler)"
            )
            raise NoHandlerError(msg)
        self.published.append(message)
        if not routes:
            return
        errors: list[Exception] = []
        self._dispatching += 1
        try:
            for route in routes:
                error = None
                try:
                    await route.handler(copy)
                except Exception as exc:  # noqa: BLE001 -- collected, raised below as a group
                    exc.add_note(f"raised by handler {_name(route.handler)}")
                    errors.append(exc)
                    error = exc
                self.handled.append(Handled(route.handler, route.group, copy, error))
        finally:
            self._dispatching -= 1
            if self._idle is not None:
                self._idle.set()
        if errors:
            msg = (
                f"{len(errors)} of {len(routes)} handlers failed on "
                f"{cls.type_name()!r} message {message.id!r}"
            )
            raise HandlerError(msg, errors, message)

    _publish = publish

    async def _start(self) -> None:
        """Nothing to start: handlers run inside `publish`."""

    async def _close(self) -> None:
        """Wait (bounded) for dispatches in other tasks; they are not cancelled.

        The handlers run in their callers' tasks, which are not the bus's to
        cancel. A dispatch of the calling task (a handler closing its own bus)
        is not waited for.
        """
        own = self._own_dispatches()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_CLOSE_WAIT
        while self._dispatching > own and loop.time() < deadline:
            idle = self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await idle.wait()

    def _own_dispatches(self) -> int:
        """Count this bus's dispatches on the calling task's stack."""
        code = InMemoryMessageBus.publish.__code__
        count = 0
        frame = inspect.currentframe()
        while frame is not None:
            if frame.f_code is code and frame.f_locals.get("self") is self:
                count += 1
            frame = frame.f_back
        return count

    def clear(self) -> None:
        """Forget the `published` and `handled` history; keep the subscriptions."""
        self.published.clear()
        self.handled.clear()


def _name(handler: object) -> str:
    return default_group(handler)  # type: ignore[arg-type]  # any object has a name


@final
class MemoryBackend:
    """The `orchestrix.config.Backend` of the ``memory://`` scheme.

    Every ``open_*`` call returns a new, empty instance; two stores opened
    from the same URL share nothing.
    """

    async def open_store(self, url: str) -> InMemoryEventStore:
        """Return a new, empty `InMemoryEventStore`."""
        _check_url(url)
        return InMemoryEventStore()

    async def open_snapshot_store(self, url: str) -> InMemorySnapshotStore:
        """Return a new, empty `InMemorySnapshotStore`."""
        _check_url(url)
        return InMemorySnapshotStore()

    async def open_bus(self, url: str) -> InMemoryMessageBus:
        """Return a new `InMemoryMessageBus` without subscriptions."""
        _check_url(url)
        return InMemoryMessageBus()

    async def open_checkpoint_store(self, url: str) -> InMemoryCheckpointStore:
        """Return a new, empty `InMemoryCheckpointStore`."""
        _check_url(url)
        return InMemoryCheckpointStore()


def _check_url(url: object) -> None:
    if not isinstance(url, str):
        msg = f"an in-memory backend URL must be a str, got {type(url).__name__}"
        raise ConfigurationError(msg)
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "memory" or rest not in ("", "/"):
        msg = (
            f"invalid in-memory backend URL {redact_url(url)!r}: use 'memory://' "
            f"(it takes no host, path or options)"
        )
        raise ConfigurationError(msg)


#: The backend registered for the ``memory`` URL scheme.
backend: Final = MemoryBackend()
