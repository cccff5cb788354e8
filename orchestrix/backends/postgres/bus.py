"""`PostgresMessageBus`: a durable bus on PostgreSQL tables (see ADR 0019).

A published message is stored once in ``bus_messages`` with one row per
registered consumer group in ``bus_deliveries``. Consumers claim a delivery
of a type their group's local handlers take with ``FOR UPDATE SKIP LOCKED``,
which also leases it for the visibility timeout (committed at once, so no
lock is held while the handler runs), and delete it once every local handler
of the group has returned. LISTEN/NOTIFY wakes idle consumers; a fallback
poll covers leases that expire. Checks, subscriptions and options are the
shared front end's (ADR 0033).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, final

from orchestrix._utils import message_type_names
from orchestrix.backends._front_bus import (
    BUS_OPTIONS,
    BusOptions,
    FrontDurableMessageBus,
    drain,
    parse_bus_options,
    split_bus_options,
)
from orchestrix.backends.postgres._connection import (
    PostgresOptions,
    import_asyncpg,
    parse_url,
    quote_ident,
    run_pooled,
)
from orchestrix.backends.postgres._schema import open_migrated_pool
from orchestrix.codec import EncodedMessage, decode, encode
from orchestrix.errors import NoHandlerError
from orchestrix.messages import Command, Message
from orchestrix.records import DeadLetter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    from orchestrix.backends._front_bus import Subscription

__all__ = ["PostgresMessageBus"]

T = TypeVar("T")
_logger: Final = logging.getLogger("orchestrix.postgres.bus")
_CLOSE_TIMEOUT: Final = 10.0
_STALE: Final = "no acknowledgement within the visibility timeout"
# A one-row CTE named ``a`` that turns off the wait for the WAL flush at the
# commit of the statement's own transaction (set_config's is_local).
_ASYNC_COMMIT: Final = (
    "a AS (SELECT set_config('synchronous_commit', 'off', true) AS sc)"
)


@final
class PostgresMessageBus(FrontDurableMessageBus):
    """`DurableMessageBus` on PostgreSQL: at-least-once, competing consumers.

    Create it with `open` (or `orchestrix.open_bus`); options come from the
    URL's query string or keyword arguments: *visibility_timeout*,
    *max_attempts*, *poll_interval* and *concurrency* (see the bus how-to).
    """

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        options: PostgresOptions,
        bus_options: BusOptions | None = None,
    ) -> None:
        """Wrap an open pool; use `PostgresMessageBus.open` instead.

        Without *bus_options*, the bus options are those of *options*.
        """
        if bus_options is None:
            bus_options = parse_bus_options(
                {name: getattr(options, name) for name in BUS_OPTIONS}
            )
        super().__init__(bus_options)
        s = quote_ident(options.schema)
        self._pool = pool
        self._options = options
        self._channel = f"orchestrix.{options.schema}"
        self._stopping = False
        self._delivered: dict[type[Message], list[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeups: dict[str, asyncio.Event] = {}
        self._stopped = asyncio.Event()
        self._listener: asyncpg.Connection[Any] | None = None
        self._publish_sql = f"SELECT {s}.publish_message($1, $2, $3, $4, $5, $6, $7)"
        self._register_sql = (
            f"INSERT INTO {s}.bus_subscriptions (group_name, type_name) "
            "SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING"
        )
        # Leases and acknowledgements commit without waiting for the WAL
        # flush: losing one in a server crash only redelivers a message,
        # which at-least-once delivery allows, and it takes a disk flush off
        # the path from a publish to its handler (ADR 0019).
        self._claim_sql = (
            f"WITH {_ASYNC_COMMIT}, "
            f"c AS (SELECT d.id FROM {s}.bus_deliveries AS d JOIN "
            f"{s}.bus_messages AS m USING (message_id) WHERE d.group_name = $1 "
            "AND d.visible_at <= now() AND m.type_names && $2::text[] "
            "ORDER BY d.visible_at, d.id LIMIT 1 FOR UPDATE OF d SKIP LOCKED) "
            f"UPDATE {s}.bus_deliveries AS d SET attempts = d.attempts + 1, "
            "visible_at = now() + make_interval(secs => $3) "
            f"FROM c, {s}.bus_messages AS m, a WHERE d.id = c.id AND "
            "m.message_id = d.message_id RETURNING d.id, d.attempts, d.last_error, "
            "m.message_id, m.type, m.schema_version, m.payload"
        )
        self._due_sql = (
            "SELECT greatest(extract(epoch FROM min(visible_at) - now()), 0)::float8 "
            f"FROM {s}.bus_deliveries WHERE group_name = $1"
        )
        self._ack_sql = (
            f"WITH {_ASYNC_COMMIT} DELETE FROM {s}.bus_deliveries AS d USING a "
            "WHERE d.id = $1"
        )
        self._retry_sql = f"UPDATE {s}.bus_deliveries SET last_error = $2 WHERE id = $1"
        # Not an attempt: the count goes back, the lease stays, so another
        # consumer of the group gets the delivery when it ends.
        self._release_sql = (
            f"UPDATE {s}.bus_deliveries SET attempts = attempts - 1 WHERE id = $1"
        )
        self._bury_sql = (
            f"WITH d AS (DELETE FROM {s}.bus_deliveries WHERE id = $1 "
            "RETURNING message_id, group_name) "
            f"INSERT INTO {s}.bus_dead_letters (message_id, group_name, attempts, "
            "error) SELECT message_id, group_name, $2, $3 FROM d "
            "ON CONFLICT (message_id, group_name) DO UPDATE SET attempts = "
            "excluded.attempts, error = excluded.error, failed_at = now()"
        )
        self._dead_sql = (
            "SELECT dl.message_id, dl.group_name, dl.attempts, dl.error, "
            f"dl.failed_at, m.type, m.schema_version, m.payload FROM "
            f"{s}.bus_dead_letters AS dl JOIN {s}.bus_messages AS m "
            "USING (message_id) WHERE $1::text IS NULL OR dl.group_name = $1 "
            "ORDER BY dl.failed_at, dl.message_id LIMIT $2"
        )
        self._replay_sql = (
            f"WITH d AS (DELETE FROM {s}.bus_dead_letters WHERE message_id = $1 "
            "AND group_name = $2 RETURNING message_id, group_name), "
            f"r AS (INSERT INTO {s}.bus_deliveries (message_id, group_name) "
            "SELECT message_id, group_name FROM d ON CONFLICT (message_id, "
            "group_name) DO UPDATE SET attempts = 0, visible_at = now(), "
            "last_error = NULL RETURNING group_name) "
            "SELECT count(*) FROM r, LATERAL (SELECT pg_notify($3, r.group_name)) AS n"
        )

    @classmethod
    async def open(cls, url: str, **options: Any) -> Self:
        """Connect to *url*, create or migrate the schema, and return a bus.

        The bus is not started: subscribe handlers, then ``await bus.start()``.
        Keyword options win over the URL's; the four bus options, as numbers
        or URL text, are checked as on every durable bus (ADR 0033).

        Raises:
            ConfigurationError: A bad URL or option.
            BackendUnavailable: The server cannot be reached.
            SchemaVersionError: The schema is newer than this code.
        """
        rest, given = split_bus_options(url)
        given.update({k: options.pop(k) for k in BUS_OPTIONS if k in options})
        bus_options = parse_bus_options(given)
        settings = parse_url(rest, **options)
        pool = await open_migrated_pool(settings)
        return cls(pool, settings, bus_options)

    def __repr__(self) -> str:
        return (
            f"PostgresMessageBus({self._options.redacted!r}, "
            f"schema={self._options.schema!r})"
        )

    async def _run(
        self,
        what: str,
        operation: Callable[[PoolConnectionProxy[Any]], Awaitable[T]],
    ) -> T:
        # Every statement here is idempotent, so one retry is safe.
        return await run_pooled(
            self._pool, f"{what} ({self._options.redacted})", operation
        )

    async def _publish(self, message: Message) -> None:
        # Stores the message and one delivery per registered group, atomically.
        record = encode(message)
        cls = type(message)
        names = self._delivered.get(cls)
        if names is None:
            names = self._delivered[cls] = list(message_type_names(cls))
        made = await self._run(
            f"publish {record.type!r} message {record.id!r}",
            lambda c: c.fetchval(
                self._publish_sql,
                record.id,
                record.type,
                record.schema_version,
                record.payload,
                names,
                isinstance(message, Command),
                self._channel,
            ),
        )
        if made == -1:
            msg = (
                f"no handler subscribes to command {record.type!r} in any process "
                f"using schema {self._options.schema!r}: subscribe one and start "
                f"its bus before publishing"
            )
            raise NoHandlerError(msg)

    async def _start(self) -> None:
        # Registers this process's subscriptions durably, then consumes.
        pairs = sorted({(s.group, s.type_name) for s in self._subscriptions})
        if pairs:
            await self._run(
                "register subscriptions",
                lambda c: c.execute(
                    self._register_sql, [g for g, _ in pairs], [t for _, t in pairs]
                ),
            )
        groups = self._subscriptions.groups()
        if not groups:
            return
        for group in groups:
            self._wakeups[group] = asyncio.Event()
            for _ in range(self._bus_options.concurrency):
                self._spawn(self._consume(group))
        await self._listen()
        self._spawn(self._supervise())

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _wake(self, group: str | None = None) -> None:
        if group is None:
            for event in self._wakeups.values():
                event.set()
        elif (wakeup := self._wakeups.get(group)) is not None:
            wakeup.set()

    def _notified(self, _c: object, _pid: int, _channel: str, payload: object) -> None:
        self._wake(str(payload))

    async def _listen(self) -> None:
        driver = import_asyncpg()
        try:
            listener: asyncpg.Connection[Any] = await driver.connect(
                self._options.dsn, timeout=self._options.connect_timeout
            )
            await listener.add_listener(self._channel, self._notified)
        except Exception as exc:  # noqa: BLE001 -- logged; consumers poll meanwhile
            _logger.warning(
                "cannot LISTEN for bus wake-ups on %s (%s); polling every %ss",
                self._options.redacted,
                type(exc).__name__,
                self._bus_options.poll_interval,
            )
            return
        self._listener = listener
        self._wake()  # notifications may have been missed while not listening

    async def _supervise(self) -> None:
        """Reconnect the LISTEN connection when the server drops it."""
        while not self._stopping:
            # Wait on the stop event rather than sleeping, so close() never
            # waits out a whole supervision interval.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopped.wait(), min(self._bus_options.poll_interval, 1.0)
                )
            if self._stopped.is_set():
                return
            if self._listener is None or self._listener.is_closed():
                self._listener = None
                await self._listen()

    async def _consume(self, group: str) -> None:
        wake, options = self._wakeups[group], self._bus_options
        # Only deliveries of types a local handler of the group takes are
        # claimed: another consumer's type is never an attempt here.
        names = list(self._subscriptions.type_names(group))
        while not self._stopping:
            wake.clear()
            try:
                row = await self._run(
                    f"claim a delivery for group {group!r}",
                    lambda c: c.fetchrow(
                        self._claim_sql, group, names, options.visibility_timeout
                    ),
                )
                if row is None:
                    due = await self._run(
                        "check pending deliveries",
                        lambda c: c.fetchval(self._due_sql, group),
                    )
                    delay = options.poll_interval
                    if due is not None:
                        delay = min(delay, max(float(due), 0.01))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), delay)
                    continue
                await self._deliver(group, row)
            except Exception:
                _logger.exception("bus consumer for group %r failed; retrying", group)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), options.poll_interval)

    async def _deliver(self, group: str, row: asyncpg.Record) -> None:
        delivery, attempts, last_error = row[0], row[1], row[2]
        record = EncodedMessage(row[3], row[4], row[5], row[6])
        options = self._bus_options
        if attempts > options.max_attempts:
            # The last attempt's consumer died before acknowledging it.
            await self._bury(delivery, attempts - 1, last_error or _STALE)
            return
        routes: tuple[Subscription, ...] = ()
        try:
            message = decode(record)
            routes = self._subscriptions.group_routes(group, type(message))
            for route in routes:
                await route.handler(message)
        except Exception as exc:
            _logger.exception(
                "handler of group %r failed on %r message %r (attempt %d of %d)",
                group,
                record.type,
                record.id,
                attempts,
                options.max_attempts,
            )
            error = f"{type(exc).__qualname__}: {exc}"
            if self._released:
                return
            if attempts >= options.max_attempts:
                await self._bury(delivery, attempts, error)
            else:
                await self._run(
                    "record a handler failure",
                    lambda c: c.execute(self._retry_sql, delivery, error),
                )
                asyncio.get_running_loop().call_later(
                    options.visibility_timeout, self._wake, group
                )
            return
        if self._released:  # a handler closed its own bus: the lease will end
            return
        if not routes:
            # Its stored type names matched, but this process's class of that
            # type does not (another version): not an attempt here.
            await self._run(
                "release a delivery", lambda c: c.execute(self._release_sql, delivery)
            )
            return
        await self._run(
            "acknowledge a delivery", lambda c: c.execute(self._ack_sql, delivery)
        )

    async def _bury(self, delivery: int, attempts: int, error: str) -> None:
        await self._run(
            "dead-letter a message",
            lambda c: c.execute(self._bury_sql, delivery, attempts, error),
        )

    async def _dead_letters(self, group: str | None, limit: int) -> list[DeadLetter]:
        rows = await self._run(
            "list dead letters", lambda c: c.fetch(self._dead_sql, group, limit)
        )
        return [
            DeadLetter(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                EncodedMessage(row[0], row[5], row[6], row[7]),
            )
            for row in rows
        ]

    async def _replay_dead_letter(self, message_id: str, group: str) -> bool:
        count = await self._run(
            f"replay dead letter {message_id!r}",
            lambda c: c.fetchval(self._replay_sql, message_id, group, self._channel),
        )
        self._wake(group)
        return bool(count)

    async def _close(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wake()
        # Consumers run their handlers; those still running after the close
        # timeout are cancelled, and their deliveries return after the lease.
        await drain(self._tasks, self._bus_options.close_timeout)
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)
        try:
            await asyncio.wait_for(self._pool.close(), _CLOSE_TIMEOUT)
        except (TimeoutError, OSError):
            self._pool.terminate()
