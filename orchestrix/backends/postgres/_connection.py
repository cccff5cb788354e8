"""Connection handling shared by the PostgreSQL store and bus.

URL options, the pool, and the one place where driver exceptions become
orchestrix errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlencode, urlunsplit

from orchestrix._utils import AsyncResource, mask_password, redact_url, split_url
from orchestrix.backends._front_bus import BUS_OPTIONS, check_bus_option
from orchestrix.config import builtin_schemes
from orchestrix.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailable,
    ConfigurationError,
    MissingDependencyError,
    OrchestrixError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import ModuleType

    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "DEFAULT_SCHEMA",
    "PooledResource",
    "PostgresOptions",
    "connection_lost",
    "create_pool",
    "decode_timestamptz",
    "encode_timestamptz",
    "import_asyncpg",
    "parse_url",
    "prepare_connection",
    "quote_ident",
    "raise_translated",
    "run_pooled",
]

#: Schema used when the URL names none.
DEFAULT_SCHEMA: Final = "orchestrix"
T = TypeVar("T")
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,49}")


def import_asyncpg() -> ModuleType:
    """Return the asyncpg module, or raise MissingDependencyError."""
    try:
        import asyncpg
    except ImportError as exc:
        package, extra = "asyncpg", "postgres"
        raise MissingDependencyError(package, extra) from exc
    return asyncpg


def quote_ident(name: str) -> str:
    """Return a validated identifier, double-quoted for SQL text."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        msg = (
            f"schema name {name!r} is not a plain identifier: use 1 to 50 ASCII "
            f"letters, digits or underscores, not starting with a digit"
        )
        raise ConfigurationError(msg)
    return f'"{name}"'


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """Options read from a ``postgresql://`` URL's query string.

    Attributes:
        dsn: The URL without orchestrix's own options, for asyncpg.
        schema: Database schema holding orchestrix's tables.
        min_size: Connections the pool keeps open.
        max_size: Most connections the pool opens.
        page_size: Rows fetched per round trip when reading.
        connect_timeout: Seconds to wait for a new connection.
        command_timeout: Seconds a statement may run (None: no limit).
        visibility_timeout: Bus: seconds before an unacknowledged delivery
            is redelivered.
        max_attempts: Bus: deliveries before a message is dead-lettered.
        poll_interval: Bus: seconds between fallback polls when idle.
        concurrency: Bus: handlers running at once per group in a process.
    """

    dsn: str = field(repr=False)  # it may hold a password
    schema: str = DEFAULT_SCHEMA
    min_size: int = 1
    max_size: int = 10
    page_size: int = 1000
    connect_timeout: float = 10.0
    command_timeout: float | None = None
    visibility_timeout: float = 30.0
    max_attempts: int = 5
    poll_interval: float = 1.0
    concurrency: int = 1

    @property
    def redacted(self) -> str:
        """The URL with its password masked, for messages."""
        return redact_url(self.dsn)


_INT_OPTIONS: Final = {"min_size": 0, "max_size": 1, "page_size": 1, "max_attempts": 1}
_INT_OPTIONS_MORE: Final = {"concurrency": 1}
_FLOAT_OPTIONS: Final = (
    "connect_timeout",
    "command_timeout",
    "visibility_timeout",
    "poll_interval",
)


def _check_option(name: str, value: object, url: str) -> Any:
    if name in BUS_OPTIONS:
        # One type, range and message for the bus options of every backend.
        return check_bus_option(name, value)
    minimum = {**_INT_OPTIONS, **_INT_OPTIONS_MORE}.get(name)
    if minimum is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            msg = f"option {name} must be an int >= {minimum}, got {value!r} ({url})"
            raise ConfigurationError(msg)
        return value
    if name == "command_timeout" and value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value > 0
        or value == float("inf")
    ):
        msg = f"option {name} must be a number > 0, got {value!r} ({url})"
        raise ConfigurationError(msg)
    return float(value)


def parse_url(url: str, **overrides: object) -> PostgresOptions:
    """Split *url* into asyncpg's DSN and orchestrix's options.

    Keyword *overrides* win over the URL's query parameters of the same name.

    Raises:
        ConfigurationError: A bad scheme, a malformed URL (see
            `orchestrix._utils.split_url`), an option given twice, a bad
            schema name or option value.
    """
    parts = split_url(
        url,
        kind="PostgreSQL",
        schemes=builtin_schemes("orchestrix.backends.postgres"),
        usage="use postgresql://user@host/db",
        multi_host=True,
    )
    redacted = redact_url(url)
    known = {*_INT_OPTIONS, *_INT_OPTIONS_MORE, *_FLOAT_OPTIONS, "schema"}
    rest: list[tuple[str, str]] = []
    values: dict[str, object] = {}
    seen: set[str] = set()
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key in seen:
            msg = f"option {key!r} is given twice in PostgreSQL URL {redacted!r}"
            raise ConfigurationError(msg)
        seen.add(key)
        if key not in known:
            rest.append((key, raw))
            continue
        if key == "schema" or key in BUS_OPTIONS:
            values[key] = raw  # bus options are checked from their text
            continue
        try:
            values[key] = int(raw) if key not in _FLOAT_OPTIONS else float(raw)
        except ValueError:
            msg = f"option {key} must be a number, got {raw!r} ({redacted})"
            raise ConfigurationError(msg) from None
    for key, value in overrides.items():
        if key not in known:
            msg = (
                f"unknown PostgreSQL option {key!r}; known: {', '.join(sorted(known))}"
            )
            raise ConfigurationError(msg)
        values[key] = value
    checked = {
        key: value if key == "schema" else _check_option(key, value, redacted)
        for key, value in values.items()
    }
    schema = checked.pop("schema", DEFAULT_SCHEMA)
    quote_ident(schema)  # type: ignore[arg-type]  # validated by quote_ident itself
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(rest)))
    options = PostgresOptions(dsn=dsn, schema=schema, **checked)  # type: ignore[arg-type]  # checked above
    if options.min_size > options.max_size:
        msg = (
            f"option min_size ({options.min_size}) must not exceed max_size "
            f"({options.max_size}) ({redacted})"
        )
        raise ConfigurationError(msg)
    return options


async def _no_reset(connection: asyncpg.Connection[Any]) -> None:
    """Skip asyncpg's reset query: orchestrix leaves no session state behind.

    The driver still rolls back an open transaction before this runs; without
    the reset query a pooled call costs one round trip instead of two.
    """
    del connection


_PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)
# The wire values of PostgreSQL's 'infinity' and '-infinity' timestamps,
# decoded as the driver does (the largest and smallest naive datetime).
_INFINITY: Final = 0x7FFFFFFFFFFFFFFF
_NEGATIVE_INFINITY: Final = -0x8000000000000000
_CACHE_SIZE: Final = 4096
_timestamps: dict[int, datetime] = {}


def decode_timestamptz(value: tuple[int]) -> datetime:
    """Return the aware UTC datetime for a ``timestamptz`` in microseconds.

    The events of one append share their commit time, so the datetimes of
    the last few thousand distinct values are kept and reused: a page of a
    read builds few datetime objects instead of one per row.
    """
    micros = value[0]
    cached = _timestamps.get(micros)
    if cached is not None:
        return cached
    if micros == _INFINITY:
        return datetime.max  # noqa: DTZ901 -- the driver's value for 'infinity'
    if micros == _NEGATIVE_INFINITY:
        return datetime.min  # noqa: DTZ901 -- the driver's value for '-infinity'
    if len(_timestamps) >= _CACHE_SIZE:
        _timestamps.clear()
    result = _timestamps[micros] = _PG_EPOCH + timedelta(microseconds=micros)
    return result


def encode_timestamptz(value: datetime) -> tuple[int]:
    """Return a datetime as microseconds since 2000-01-01 UTC.

    A naive datetime is taken as local time, as the driver itself does.
    """
    return ((value.astimezone(UTC) - _PG_EPOCH) // _ONE_MICROSECOND,)


async def prepare_connection(connection: asyncpg.Connection[Any]) -> None:
    """Decode ``timestamptz`` through `decode_timestamptz` on *connection*.

    The driver's own decoder builds each datetime through Python-level
    arithmetic, which costs more than the rest of an event row together.
    """
    await connection.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=encode_timestamptz,
        decoder=decode_timestamptz,
        format="tuple",
    )


async def create_pool(options: PostgresOptions) -> asyncpg.Pool[Any]:
    """Open a connection pool for *options*.

    Raises:
        BackendUnavailable: The server cannot be reached or refuses the login.
        ConfigurationError: asyncpg or the server refuses a URL parameter.
        MissingDependencyError: asyncpg is not installed.
    """
    driver = import_asyncpg()
    try:
        pool: asyncpg.Pool[Any] = await driver.create_pool(
            options.dsn,
            min_size=options.min_size,
            max_size=options.max_size,
            timeout=options.connect_timeout,
            command_timeout=options.command_timeout,
            reset=_no_reset,
            init=prepare_connection,
        )
    except Exception as exc:  # noqa: BLE001 -- every driver failure is translated
        if not _refused_setting(driver, exc):
            raise_translated(exc, f"cannot connect to {options.redacted}")
        # Raised after this block, so that the driver's error is neither the
        # cause nor the context: its text may quote the URL, password too.
        refused = f"{type(exc).__name__}: {mask_password(str(exc), options.dsn)}"
    else:
        return pool
    msg = (
        f"cannot connect to {options.redacted}: a URL parameter is refused "
        f"({refused}); parameters other than orchestrix's own go to asyncpg "
        f"and the server"
    )
    raise ConfigurationError(msg)


def _refused_setting(driver: ModuleType, exc: Exception) -> bool:
    """Return True if asyncpg or the server refused a setting while connecting."""
    return not isinstance(exc, OrchestrixError) and isinstance(
        exc,
        driver.ClientConfigurationError
        | driver.UndefinedObjectError  # an unknown server setting
        | driver.InvalidParameterValueError  # a bad value for a server setting
        | ValueError,  # asyncpg's reading of the URL
    )


def connection_lost(exc: BaseException) -> bool:
    """Return True if *exc* means the connection broke (safe to retry elsewhere)."""
    driver = import_asyncpg()
    if isinstance(
        exc,
        driver.ConnectionDoesNotExistError
        | driver.AdminShutdownError
        | driver.CrashShutdownError
        | driver.CannotConnectNowError
        | ConnectionError,
    ):
        return True
    if isinstance(exc, driver.InternalClientError):
        # The protocol lost track of its state: the connection is unusable.
        return True
    return isinstance(exc, driver.InterfaceError) and "closed" in str(exc)


def raise_translated(exc: BaseException, context: str) -> NoReturn:
    """Raise the orchestrix error for a driver failure, chained to it.

    Args:
        exc: The driver's exception.
        context: What was being done, naming the redacted URL or the object.
    """
    driver = import_asyncpg()
    text = redact_url(str(exc)) or type(exc).__name__
    if isinstance(exc, driver.QueryCanceledError | asyncio.TimeoutError):
        msg = f"{context}: timed out ({text})"
        raise BackendTimeoutError(msg) from exc
    if connection_lost(exc) or isinstance(
        exc,
        OSError
        | driver.PostgresConnectionError
        | driver.TooManyConnectionsError
        | driver.InvalidAuthorizationSpecificationError
        | driver.InvalidCatalogNameError,
    ):
        msg = f"{context}: PostgreSQL is unavailable ({text})"
        raise BackendUnavailable(msg) from exc
    msg = f"{context}: PostgreSQL error ({type(exc).__name__}: {text})"
    raise BackendError(msg) from exc


async def run_pooled(
    pool: asyncpg.Pool[Any],
    what: str,
    operation: Callable[[PoolConnectionProxy[Any]], Awaitable[T]],
    *,
    retry: bool = True,
) -> T:
    """Run *operation* on a pooled connection; translate driver errors.

    A connection the server dropped is discarded (never returned to the pool
    in a broken state), and with *retry* the operation runs once more on a
    fresh one: callers retry only reads and idempotent writes.
    """
    for attempt in (1, 2):
        try:
            async with pool.acquire() as connection:
                try:
                    return await operation(connection)
                except Exception as exc:
                    if connection_lost(exc):
                        # Already released if the driver saw the socket close.
                        with contextlib.suppress(Exception):
                            connection.terminate()
                    raise
        except OrchestrixError:
            raise
        except Exception as exc:  # noqa: BLE001 -- translated right here
            if connection_lost(exc):
                # The server dropped one connection, most likely all of them
                # (a restart, a failover): replace the idle ones too.
                await pool.expire_connections()
                if attempt == 1 and retry:
                    continue
            raise_translated(exc, what)
    raise AssertionError  # pragma: no cover -- the loop returns or raises


class PooledResource(AsyncResource):
    """A resource on a pool: acquire, run, translate errors, retry once."""

    _pool: asyncpg.Pool[Any]
    _owns_pool: bool
    _where: str

    async def _run(
        self,
        what: str,
        operation: Callable[[PoolConnectionProxy[Any]], Awaitable[T]],
        *,
        retry: bool = True,
    ) -> T:
        self._check_open()
        return await run_pooled(
            self._pool, f"{what} ({self._where})", operation, retry=retry
        )

    async def close(self) -> None:
        """Release the pool (if this object opened it) once calls in flight end.

        Idempotent; see `EventStore.close` for what happens to reads in progress.
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            await self._pool.close()
