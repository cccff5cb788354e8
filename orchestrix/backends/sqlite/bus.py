"""The durable SQLite message bus (ADR 0016, ADR 0033).

A published message is stored once in ``orchestrix_bus_messages``, with the
type names it is delivered under, together with one row in
``orchestrix_bus_deliveries`` per consumer group registered for any of those
names, in one transaction. Consumers claim due deliveries of the types their
group's local handlers take, under a lease (``available_at`` moves to now +
visibility timeout), run those handlers, and delete the row on success. A
delivery whose attempts reach ``max_attempts`` becomes a dead letter
(``dead = 1``) until it is replayed.

Idle consumers poll with a read-only query whose interval doubles from
`MIN_POLL` up to ``poll_interval``; a publish in this process wakes every bus
on the same file at once. A message published by another process is seen
within ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
import weakref
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, final

from orchestrix._utils import message_type_names
from orchestrix.backends._front_bus import (
    FrontDurableMessageBus,
    drain,
    parse_bus_options,
)
from orchestrix.backends.sqlite._connection import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    MEMORY,
    Database,
    write_transaction,
)
from orchestrix.codec import EncodedMessage, decode, encode
from orchestrix.errors import NoHandlerError
from orchestrix.messages import Command, Message
from orchestrix.records import DeadLetter

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

__all__ = ["MIN_POLL", "SQLiteMessageBus"]

#: First idle poll interval, in seconds; it doubles up to ``poll_interval``.
MIN_POLL: Final = 0.01

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
    "published_at, type_names) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (message_id) DO NOTHING"
)
# Due deliveries of a group whose message one of the given type names (a JSON
# array, or NULL for any) takes; messages stored before the type names were
# recorded (type_names NULL) are taken by any consumer of the group.
_DUE_FOR: Final = (
    "FROM orchestrix_bus_deliveries AS d "
    "JOIN orchestrix_bus_messages AS m ON m.seq = d.message_seq "
    "WHERE d.group_name = ? AND d.dead = 0 AND d.available_at <= ? "
    "AND (? IS NULL OR m.type_names IS NULL OR EXISTS (SELECT 1 FROM "
    "json_each(m.type_names) AS n JOIN json_each(?) AS h ON h.value = n.value))"
)
_DUE: Final = f"SELECT 1 {_DUE_FOR} LIMIT 1"
_CLAIMABLE: Final = (
    "SELECT d.message_seq, d.attempts, d.error, m.message_id, m.type, "
    f"m.schema_version, m.payload {_DUE_FOR} "
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
# A claimed delivery no local handler takes: not an attempt, so the count
# goes back; it stays leased, so another consumer gets it after the lease.
_RELEASE: Final = (
    "UPDATE orchestrix_bus_deliveries SET attempts = attempts - 1, lease = NULL "
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


def _record_subscriptions(raw: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
    now = _now()
    write_transaction(
        raw, lambda raw: raw.executemany(_SUBSCRIBE, [(*row, now) for row in rows])
    )


def _publish(
    raw: sqlite3.Connection,
    record: EncodedMessage,
    names: tuple[str, ...],
    names_json: str,
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
        cursor = raw.execute(_INSERT_MESSAGE, (*record, _now(), names_json))
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
    raw: sqlite3.Connection,
    group: str,
    limit: int,
    lease_for: float,
    max_attempts: int,
    *,
    names: str | None = None,
) -> list[tuple[int, str, int, EncodedMessage]]:
    """Lease up to *limit* due deliveries of *group* whose type *names* take."""
    if raw.execute(_DUE, (group, time.time(), names, names)).fetchone() is None:
        return []  # the idle path takes no write lock

    def body(raw: sqlite3.Connection) -> list[tuple[int, str, int, EncodedMessage]]:
        now = time.time()
        rows = raw.execute(_CLAIMABLE, (group, now, names, names, limit)).fetchall()
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
class SQLiteMessageBus(FrontDurableMessageBus):
    """Durable, at-least-once message bus in a SQLite file.

    Any number of processes may share the file: buses with the same group
    compete for its deliveries, different groups each get every message.
    Open it with ``await SQLiteMessageBus.open(path)`` or through
    ``open_bus("sqlite:///app.db")``, subscribe handlers, then ``start()``.
    A consumer claims only deliveries of the types its group's local handlers
    take, so it never counts an attempt for a message it cannot handle.
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
        super().__init__(
            parse_bus_options(
                {
                    "visibility_timeout": visibility_timeout,
                    "max_attempts": max_attempts,
                    "poll_interval": poll_interval,
                    "concurrency": concurrency,
                }
            )
        )
        self._db = database
        # Per group: the JSON array of type names its local handlers take.
        self._names: dict[str, str] = {}
        # Per published class: its type names, and them as a JSON array.
        self._delivered: dict[type[Message], tuple[tuple[str, ...], str]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._consumers: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
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

        The four bus options may also be given as their URL text; they are
        checked as on every durable bus (ADR 0033).

        Raises:
            ConfigurationError: A bad option (the message names it).
            MissingDependencyError: Python was built without the sqlite3 module.
            BackendUnavailable: The file cannot be opened.
            SchemaVersionError: The file's schema is newer than this code.
        """
        options = parse_bus_options(
            {
                "visibility_timeout": visibility_timeout,
                "max_attempts": max_attempts,
                "poll_interval": poll_interval,
                "concurrency": concurrency,
            }
        )
        db = await Database.open(
            path, synchronous=synchronous, busy_timeout=busy_timeout
        )
        return cls(
            db,
            visibility_timeout=options.visibility_timeout,
            max_attempts=options.max_attempts,
            poll_interval=options.poll_interval,
            concurrency=options.concurrency,
        )

    async def _publish(self, message: Message) -> None:
        # Stores the message and one delivery per registered group, atomically.
        cls = type(message)
        delivered = self._delivered.get(cls)
        if delivered is None:
            names = message_type_names(cls)
            delivered = self._delivered[cls] = (names, json.dumps(names))
        record = encode(message)
        command = isinstance(message, Command)
        if await self._db.run(_publish, record, *delivered, command):
            for bus in list(_local_buses.get(self._key, ())):
                bus._wake()

    async def _start(self) -> None:
        # Records this process's subscriptions, then starts the consumers.
        subscriptions = self._subscriptions
        rows = sorted({(s.type_name, s.group) for s in subscriptions})
        await self._db.run(_record_subscriptions, rows)
        self._loop = asyncio.get_running_loop()
        _local_buses[self._key].add(self)
        for group in subscriptions.groups():
            self._names[group] = json.dumps(subscriptions.type_names(group))
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
        options, names = self._bus_options, self._names[group]
        running: set[asyncio.Task[None]] = set()
        while not self._closed:
            wakeup.clear()
            free = options.concurrency - len(running)
            claimed = []
            if free > 0:
                try:
                    claimed = await self._db.run(
                        _claim,
                        group,
                        free,
                        options.visibility_timeout,
                        options.max_attempts,
                        names=names,
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
            if claimed and len(running) < options.concurrency:
                delay = MIN_POLL
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await wakeup.wait()
                delay = MIN_POLL  # woken: look again at once, and soon after
                continue
            delay = min(delay * 2, options.poll_interval)

    async def _deliver(
        self, group: str, seq: int, lease: str, attempt: int, record: EncodedMessage
    ) -> None:
        max_attempts = self._bus_options.max_attempts
        errors: list[str] = []
        try:
            message = decode(record)
        except Exception as exc:  # noqa: BLE001 -- undecodable: retried, then dead
            _log.exception("SQLite bus cannot decode %s %r", record.type, record.id)
            errors.append(f"{type(exc).__qualname__}: {exc}")
        else:
            routes = self._subscriptions.group_routes(group, type(message))
            if not routes:
                # Only a message stored without its type names gets here.
                _log.debug(
                    "no handler of group %r in this process takes %s %r; left for "
                    "another consumer of the group",
                    group,
                    record.type,
                    record.id,
                )
                await self._settle(record, _RELEASE, (group, seq, lease))
                return
            for route in routes:
                try:
                    await route.handler(message)
                except Exception as exc:  # noqa: BLE001 -- any handler error is retried
                    _log.exception(
                        "handler %s of group %r failed on %s %r (attempt %d of %d)",
                        getattr(route.handler, "__qualname__", route.handler),
                        group,
                        record.type,
                        record.id,
                        attempt,
                        max_attempts,
                    )
                    errors.append(f"{type(exc).__qualname__}: {exc}")
        if not errors:
            await self._settle(record, _ACK, (group, seq, lease))
        else:
            text = "; ".join(errors)
            args = (text, max_attempts, max_attempts, _now(), group, seq, lease)
            await self._settle(record, _FAIL, args)

    async def _settle(
        self, record: EncodedMessage, sql: str, args: tuple[object, ...]
    ) -> None:
        if self._released:  # a handler closed its own bus: the lease will end
            return
        try:
            await self._db.run(_settle, sql, args)
        except Exception:  # noqa: BLE001 -- unsettled deliveries return after the lease
            _log.exception("SQLite bus could not settle %s %r", record.type, record.id)

    async def _dead_letters(self, group: str | None, limit: int) -> list[DeadLetter]:
        return await self._db.run(_dead_letters, group, limit)

    async def _replay_dead_letter(self, message_id: str, group: str) -> bool:
        args = (time.time(), group, message_id)
        replayed = await self._db.run(_settle, _REPLAY, args) > 0
        if replayed:
            for bus in list(_local_buses.get(self._key, ())):
                bus._wake()
        return replayed

    async def _close(self) -> None:
        _local_buses.get(self._key, weakref.WeakSet()).discard(self)
        # Let each consumer finish its current claim rather than cancelling it:
        # a claim cancelled mid-flight would hide its rows until the lease ends.
        for event in self._wakeups.values():
            event.set()
        within = self._bus_options.close_timeout
        await drain(self._consumers, within)
        # Handlers still running then are cancelled; their deliveries return
        # after the visibility timeout.
        await drain(self._running, within)
        await self._db.close()
