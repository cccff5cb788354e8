"""The durable SQLite message bus (ADR 0016).

A published message is stored once in ``orchestrix_bus_messages`` together with
one row in ``orchestrix_bus_deliveries`` per consumer group registered for any
of its type names, in one transaction. Consumers claim due deliveries under a
lease (``available_at`` moves to now + visibility timeout), run the group's
handlers, and delete the row on success. A delivery whose attempts reach
``max_attempts`` becomes a dead letter (``dead = 1``) until it is replayed.

Idle consumers poll with a read-only query whose interval doubles from
`MIN_POLL` up to ``poll_interval``; a publish in this process wakes every bus
on the same file at once. A message published by another process is seen
within ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, final

from orchestrix._utils import (
    AsyncResource,
    check_non_negative,
    default_group,
    message_type_names,
)
from orchestrix.backends.sqlite._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    MEMORY,
    Database,
    write_transaction,
)
from orchestrix.codec import EncodedMessage, decode, encode
from orchestrix.errors import (
    ConfigurationError,
    HandlerRegistrationError,
    NoHandlerError,
)
from orchestrix.messages import Command, Message
from orchestrix.protocols import DurableMessageBus
from orchestrix.records import DeadLetter

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from orchestrix.protocols import Handler, M

__all__ = ["BUS_OPTIONS", "MIN_POLL", "SQLiteMessageBus", "check_bus_options"]

#: Query parameters a bus URL accepts besides the store options.
BUS_OPTIONS: Final = (
    "visibility_timeout",
    "max_attempts",
    "poll_interval",
    "concurrency",
)
#: First idle poll interval, in seconds; it doubles up to ``poll_interval``.
MIN_POLL: Final = 0.01
#: Longest wait for running handlers when the bus closes, in seconds.
CLOSE_GRACE: Final = 10.0

_log = logging.getLogger("orchestrix.sqlite.bus")
# Buses of this process by database file, so a publish wakes their consumers.
_local_buses: defaultdict[str, weakref.WeakSet[SQLiteMessageBus]] = defaultdict(
    weakref.WeakSet
)

_SUBSCRIBE: Final = (
    "INSERT INTO orchestrix_bus_subscriptions (type_name, group_name, registered_at) "
    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
)
_INSERT_MESSAGE: Final = (
    "INSERT INTO orchestrix_bus_messages (message_id, type, schema_version, payload, "
    "published_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING"
)
_DUE: Final = (
    "SELECT 1 FROM orchestrix_bus_deliveries "
    "WHERE group_name = ? AND dead = 0 AND available_at <= ? LIMIT 1"
)
_CLAIMABLE: Final = (
    "SELECT d.message_seq, d.attempts, d.error, m.message_id, m.type, "
    "m.schema_version, m.payload FROM orchestrix_bus_deliveries AS d "
    "JOIN orchestrix_bus_messages AS m ON m.seq = d.message_seq "
    "WHERE d.group_name = ? AND d.dead = 0 AND d.available_at <= ? "
    "ORDER BY d.available_at, d.message_seq LIMIT ?"
)
_LEASE: Final = (
    "UPDATE orchestrix_bus_deliveries SET attempts = attempts + 1, "
    "available_at = ?, lease = ? WHERE group_name = ? AND message_seq = ?"
)
_BURY: Final = (
    "UPDATE orchestrix_bus_deliveries SET dead = 1, failed_at = ?, lease = NULL, "
    "error = ? WHERE group_name = ? AND message_seq = ?"
)
_ACK: Final = (
    "DELETE FROM orchestrix_bus_deliveries "
    "WHERE group_name = ? AND message_seq = ? AND lease = ?"
)
_FAIL: Final = (
    "UPDATE orchestrix_bus_deliveries SET error = ?, "
    "dead = (attempts >= ?), failed_at = CASE WHEN attempts >= ? THEN ? END "
    "WHERE group_name = ? AND message_seq = ? AND lease = ?"
)
_DEAD: Final = (
    "SELECT d.group_name, d.attempts, d.error, d.failed_at, m.message_id, m.type, "
    "m.schema_version, m.payload FROM orchestrix_bus_deliveries AS d "
    "JOIN orchestrix_bus_messages AS m ON m.seq = d.message_seq WHERE d.dead = 1"
)
_REPLAY: Final = (
    "UPDATE orchestrix_bus_deliveries SET dead = 0, attempts = 0, available_at = ?, "
    "lease = NULL, error = NULL, failed_at = NULL WHERE group_name = ? AND dead = 1 "
    "AND message_seq = (SELECT seq FROM orchestrix_bus_messages WHERE message_id = ?)"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _number(name: str, value: object, *, integer: bool, minimum: float) -> Any:
    """Return *value* (a number or its text) checked, or raise naming *name*."""
    number: float | None = None
    if not isinstance(value, bool) and isinstance(value, str | int | float):
        with contextlib.suppress(ValueError):
            number = float(value) if not integer else int(value)
    if (
        number is None
        or (integer and isinstance(value, float))
        or not minimum <= number < float("inf")
    ):
        what = "an int" if integer else "a number"
        msg = f"bus option {name!r} must be {what} >= {minimum}, got {value!r}"
        raise ConfigurationError(msg)
    return number


def check_bus_options(
    visibility_timeout: object = 30.0,
    max_attempts: object = 5,
    poll_interval: object = 1.0,
    concurrency: object = 1,
) -> dict[str, Any]:
    """Return the validated bus options, converted from text where needed.

    Raises:
        ConfigurationError: An option is out of range (the message names it).
    """
    return {
        "visibility_timeout": _number(
            "visibility_timeout", visibility_timeout, integer=False, minimum=0.001
        ),
        "max_attempts": _number("max_attempts", max_attempts, integer=True, minimum=1),
        "poll_interval": _number(
            "poll_interval", poll_interval, integer=False, minimum=MIN_POLL
        ),
        "concurrency": _number("concurrency", concurrency, integer=True, minimum=1),
    }


def _record_subscriptions(raw: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
    now = _now()
    write_transaction(
        raw, lambda raw: raw.executemany(_SUBSCRIBE, [(*row, now) for row in rows])
    )


def _publish(
    raw: sqlite3.Connection,
    record: EncodedMessage,
    names: tuple[str, ...],
    command: bool,
) -> bool:
    def body(raw: sqlite3.Connection) -> bool:
        marks = ", ".join("?" * len(names))
        groups = raw.execute(
            "SELECT DISTINCT group_name FROM orchestrix_bus_subscriptions "
            f"WHERE type_name IN ({marks})",
            names,
        ).fetchall()
        if command and not groups:
            msg = (
                f"no handler subscribes to command {record.type!r} on this SQLite "
                f"bus; subscribe one and start its bus before publishing"
            )
            raise NoHandlerError(msg)
        cursor = raw.execute(_INSERT_MESSAGE, (*record, _now()))
        if cursor.rowcount == 0:
            return False  # already stored: the id is the idempotency key
        seq, now = cursor.lastrowid, time.time()
        raw.executemany(
            "INSERT INTO orchestrix_bus_deliveries (group_name, message_seq, "
            "available_at) VALUES (?, ?, ?)",
            [(group, seq, now) for (group,) in groups],
        )
        return True

    return write_transaction(raw, body)


def _claim(
    raw: sqlite3.Connection, group: str, limit: int, lease_for: float, max_attempts: int
) -> list[tuple[int, str, int, EncodedMessage]]:
    if raw.execute(_DUE, (group, time.time())).fetchone() is None:
        return []  # the idle path takes no write lock

    def body(raw: sqlite3.Connection) -> list[tuple[int, str, int, EncodedMessage]]:
        now = time.time()
        rows = raw.execute(_CLAIMABLE, (group, now, limit)).fetchall()
        claimed, leases, buried = [], [], []
        for seq, attempts, error, *record in rows:
            if attempts >= max_attempts:  # its last consumer died mid-handling
                reason = error or "visibility timeout expired on every attempt"
                buried.append((_now(), reason, group, seq))
                continue
            lease = uuid.uuid4().hex
            leases.append((now + lease_for, lease, group, seq))
            claimed.append((seq, lease, attempts + 1, EncodedMessage(*record)))
        raw.executemany(_BURY, buried)
        raw.executemany(_LEASE, leases)
        return claimed

    return write_transaction(raw, body)


def _settle(raw: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> int:
    return write_transaction(raw, lambda raw: raw.execute(sql, args).rowcount)


def _dead_letters(
    raw: sqlite3.Connection, group: str | None, limit: int
) -> list[DeadLetter]:
    where, args = (
        ("", (limit,)) if group is None else ("AND d.group_name = ?", (group, limit))
    )
    rows = raw.execute(
        f"{_DEAD} {where} ORDER BY d.failed_at, d.message_seq LIMIT ?", args
    )
    return [
        DeadLetter(
            message_id,
            group_name,
            attempts,
            error or "",
            datetime.fromisoformat(at),
            EncodedMessage(message_id, *record),
        )
        for group_name, attempts, error, at, message_id, *record in rows
    ]


@final
class SQLiteMessageBus(AsyncResource, DurableMessageBus):
    """Durable, at-least-once message bus in a SQLite file.

    Any number of processes may share the file: buses with the same group
    compete for its deliveries, different groups each get every message.
    Open it with ``await SQLiteMessageBus.open(path)`` or through
    ``open_bus("sqlite:///app.db")``, subscribe handlers, then ``start()``.
    """

    def __init__(
        self,
        database: Database,
        *,
        visibility_timeout: float = 30.0,
        max_attempts: int = 5,
        poll_interval: float = 1.0,
        concurrency: int = 1,
    ) -> None:
        """Wrap an open `Database`; use `SQLiteMessageBus.open` instead."""
        self._db = database
        options = check_bus_options(
            visibility_timeout, max_attempts, poll_interval, concurrency
        )
        self._visibility: float = options["visibility_timeout"]
        self._max_attempts: int = options["max_attempts"]
        self._poll: float = options["poll_interval"]
        self._concurrency: int = options["concurrency"]
        self._handlers: dict[str, list[tuple[str, Handler[Any]]]] = {}
        self._commands: set[str] = set()
        self._wakeups: dict[str, asyncio.Event] = {}
        self._consumers: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._key = database.path if database.path != MEMORY else f"{MEMORY}{id(self)}"

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        visibility_timeout: float = 30.0,
        max_attempts: int = 5,
        poll_interval: float = 1.0,
        concurrency: int = 1,
    ) -> SQLiteMessageBus:
        """Open the database at *path* as a message bus (not started).

        Args:
            path: File path; ``":memory:"`` gives a bus private to this object.
            synchronous: SQLite's ``PRAGMA synchronous`` (see ADR 0015).
            busy_timeout: Seconds to wait for another connection's write lock.
            visibility_timeout: Seconds before an unacknowledged delivery is
                delivered again.
            max_attempts: Deliveries tried before a message is dead-lettered.
            poll_interval: Longest idle wait, in seconds, before looking for
                messages published by other processes.
            concurrency: Handlers run at once per group in this process.

        Raises:
            ConfigurationError: A bad option (the message names it).
            MissingDependencyError: aiosqlite is not installed.
            BackendUnavailable: The file cannot be opened.
            SchemaVersionError: The file's schema is newer than this code.
        """
        options = check_bus_options(
            visibility_timeout, max_attempts, poll_interval, concurrency
        )
        db = await Database.open(
            path, synchronous=synchronous, busy_timeout=busy_timeout
        )
        return cls(db, **options)

    def subscribe(
        self, message_type: type[M], handler: Handler[M], *, group: str | None = None
    ) -> None:
        """Call *handler* for every message of *message_type* (see `MessageBus`).

        Raises:
            HandlerRegistrationError: The bus is started, or the command type
                already has a handler in this process.
        """
        self._check_open()
        if self._started:
            msg = "subscribe handlers before start(); this SQLite bus is running"
            raise HandlerRegistrationError(msg)
        name = message_type.__message_type__
        if issubclass(message_type, Command):
            if name in self._commands:
                msg = f"command {name!r} already has a handler on this bus"
                raise HandlerRegistrationError(msg)
            self._commands.add(name)
        group = default_group(handler) if group is None else group
        self._handlers.setdefault(group, []).append((name, handler))

    async def publish(self, message: Message) -> None:
        """Store *message* and one delivery per registered group, atomically.

        Raises:
            NoHandlerError: A command no group registered in this file handles.
            SerializationError: *message* cannot be encoded.
        """
        self._check_open()
        record = encode(message)
        names = message_type_names(type(message))
        command = isinstance(message, Command)
        if await self._db.run(_publish, record, names, command):
            for bus in list(_local_buses.get(self._key, ())):
                bus._wake()

    async def start(self) -> None:
        """Record this process's subscriptions, then start the consumers."""
        self._check_open()
        if self._started:
            return
        self._started = True
        rows = sorted(
            {
                (name, group)
                for group, subs in self._handlers.items()
                for name, _ in subs
            }
        )
        await self._db.run(_record_subscriptions, rows)
        self._loop = asyncio.get_running_loop()
        _local_buses[self._key].add(self)
        for group in self._handlers:
            self._wakeups[group] = asyncio.Event()
            task = asyncio.create_task(self._consume(group), name=f"sqlite-bus:{group}")
            self._consumers.append(task)

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        for event in self._wakeups.values():
            if same_loop:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)

    async def _consume(self, group: str) -> None:
        wakeup, delay = self._wakeups[group], MIN_POLL
        running: set[asyncio.Task[None]] = set()
        while not self._closed:
            wakeup.clear()
            free = self._concurrency - len(running)
            claimed = []
            if free > 0:
                try:
                    claimed = await self._db.run(
                        _claim, group, free, self._visibility, self._max_attempts
                    )
                except Exception:  # noqa: BLE001 -- a consumer must outlive a bad poll
                    _log.exception(
                        "SQLite bus group %r could not claim messages", group
                    )
            for delivery in claimed:
                task = asyncio.create_task(self._deliver(group, *delivery))
                running.add(task)
                self._running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(self._running.discard)
                task.add_done_callback(lambda _: wakeup.set())
            if claimed and len(running) < self._concurrency:
                delay = MIN_POLL
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wakeup.wait()
                delay = MIN_POLL  # woken: look again at once, and soon after
                continue
            delay = min(delay * 2, self._poll)

    async def _deliver(
        self, group: str, seq: int, lease: str, attempt: int, record: EncodedMessage
    ) -> None:
        errors: list[str] = []
        try:
            message = decode(record)
            names = set(message_type_names(type(message)))
            handlers = [h for name, h in self._handlers[group] if name in names]
            if not handlers:
                errors.append(f"no handler of group {group!r} in this process")
            for handler in handlers:
                try:
                    await handler(message)
                except Exception as exc:  # noqa: BLE001 -- any handler error is retried
                    _log.exception(
                        "handler %s of group %r failed on %s %r (attempt %d of %d)",
                        getattr(handler, "__qualname__", handler),
                        group,
                        record.type,
                        record.id,
                        attempt,
                        self._max_attempts,
                    )
                    errors.append(f"{type(exc).__qualname__}: {exc}")
        except Exception as exc:  # noqa: BLE001 -- undecodable: retried, then dead
            _log.exception("SQLite bus cannot decode %s %r", record.type, record.id)
            errors.append(f"{type(exc).__qualname__}: {exc}")
        try:
            if not errors:
                await self._db.run(_settle, _ACK, (group, seq, lease))
            else:
                text = "; ".join(errors)
                args = (text, self._max_attempts, self._max_attempts, _now())
                await self._db.run(_settle, _FAIL, (*args, group, seq, lease))
        except Exception:  # noqa: BLE001 -- unsettled deliveries return after the lease
            _log.exception("SQLite bus could not settle %s %r", record.type, record.id)

    async def dead_letters(
        self, *, group: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Return up to *limit* dead letters, oldest first (one group, or all)."""
        self._check_open()
        limit = check_non_negative("limit", limit)
        return await self._db.run(_dead_letters, group, limit)

    async def replay_dead_letter(self, message_id: str, *, group: str) -> bool:
        """Requeue a dead letter with fresh attempts; False if there is none."""
        self._check_open()
        args = (time.time(), group, message_id)
        replayed = await self._db.run(_settle, _REPLAY, args) > 0
        if replayed:
            for bus in list(_local_buses.get(self._key, ())):
                bus._wake()
        return replayed

    async def close(self) -> None:
        """Stop consuming, let running handlers finish (bounded), disconnect."""
        if self._closed:
            return
        self._closed = True
        _local_buses.get(self._key, weakref.WeakSet()).discard(self)
        # Let each consumer finish its current claim rather than cancelling it:
        # a claim cancelled mid-flight would hide its rows until the lease ends.
        for event in self._wakeups.values():
            event.set()
        if self._consumers:
            _, stuck = await asyncio.wait(self._consumers, timeout=CLOSE_GRACE)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*self._consumers, return_exceptions=True)
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=CLOSE_GRACE)
            for task in late:  # their deliveries return after the visibility timeout
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._db.close()
