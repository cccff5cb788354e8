"""SQLite connections for the stores and the bus: URL options, retries, errors.

Every database call runs as one plain function in the aiosqlite connection's
thread (see ADR 0014), so a whole transaction costs one round trip between
the event loop and that thread. This module holds the only place where
``sqlite3`` exceptions become orchestrix errors.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Final, ParamSpec, TypeVar, final
from urllib.parse import parse_qsl, unquote, urlsplit

from orchestrix._utils import redact_url
from orchestrix.backends.sqlite._schema import migrate, read_schema_version
from orchestrix.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailable,
    ConfigurationError,
    MissingDependencyError,
    OrchestrixError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiosqlite

__all__ = [
    "MEMORY",
    "STORE_OPTIONS",
    "SYNCHRONOUS_MODES",
    "Database",
    "parse_url",
    "write_transaction",
]

P = ParamSpec("P")
T = TypeVar("T")

MEMORY: Final = ":memory:"
#: Values of the ``synchronous`` option (SQLite's PRAGMA synchronous).
SYNCHRONOUS_MODES: Final = ("off", "normal", "full", "extra")
#: Query parameters every SQLite URL accepts.
STORE_OPTIONS: Final = ("synchronous", "busy_timeout")
DEFAULT_SYNCHRONOUS: Final = "full"
DEFAULT_BUSY_TIMEOUT: Final = 5.0
# SQLITE_BUSY can still surface where SQLite does not call the busy handler
# (a WAL snapshot that went stale, recovery after a crash); the whole
# transaction is then retried this many times before giving up.
_BUSY_RETRIES: Final = 4
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

_log = logging.getLogger("orchestrix.sqlite.connection")


def parse_url(url: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """Split a ``sqlite:`` URL into a database path and its query options.

    ``sqlite:///rel/path.db`` is relative to the working directory,
    ``sqlite:////abs/path.db`` absolute, ``sqlite:///:memory:`` in memory.

    Raises:
        ConfigurationError: Not a sqlite URL, no path, a host, or an option
            not in *allowed*.
    """
    shown = redact_url(url)
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        msg = f"not a SQLite URL: {shown!r}; expected sqlite:///path/to/file.db"
        raise ConfigurationError(msg)
    if parts.netloc:
        msg = (
            f"SQLite URL {shown!r} names a host ({parts.netloc!r}); SQLite opens a "
            f"local file: use three slashes for a relative path "
            f"(sqlite:///app.db) or four for an absolute one (sqlite:////var/app.db)"
        )
        raise ConfigurationError(msg)
    path = unquote(parts.path.removeprefix("/"))
    if not path:
        msg = (
            f"SQLite URL {shown!r} has no database path; use sqlite:///app.db, "
            f"sqlite:////abs/app.db or sqlite:///:memory:"
        )
        raise ConfigurationError(msg)
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in allowed:
            msg = (
                f"unknown option {name!r} in SQLite URL {shown!r}; this opener "
                f"accepts: {', '.join(allowed)}"
            )
            raise ConfigurationError(msg)
        if name in options:
            msg = f"option {name!r} is given twice in SQLite URL {shown!r}"
            raise ConfigurationError(msg)
        options[name] = value
    return path, options


def _check_synchronous(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in SYNCHRONOUS_MODES:
        msg = (
            f"option 'synchronous' must be one of {', '.join(SYNCHRONOUS_MODES)}, "
            f"got {value!r}"
        )
        raise ConfigurationError(msg)
    return value.lower()


def _check_busy_timeout(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]  # checked by the except
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds >= 0 or seconds == float("inf"):
        msg = f"option 'busy_timeout' must be a number of seconds >= 0, got {value!r}"
        raise ConfigurationError(msg)
    return seconds


def _driver() -> Any:
    try:
        import aiosqlite
    except ImportError as exc:
        raise MissingDependencyError("aiosqlite", "sqlite") from exc  # noqa: EM101 -- the error builds its own message
    return aiosqlite


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


def _translate(exc: sqlite3.Error, where: str) -> BackendError:
    if _is_busy(exc):
        return BackendTimeoutError(
            f"SQLite database {where} stayed locked by another connection beyond "
            f"the busy timeout and {_BUSY_RETRIES} retries ({exc}); raise "
            f"?busy_timeout= or shorten the other process's transactions"
        )
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
        return BackendUnavailable(
            f"cannot open SQLite database {where} ({exc}); check that its "
            f"directory exists and is writable"
        )
    return BackendError(f"SQLite database {where} failed: {exc}")


def write_transaction(
    raw: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]
) -> T:
    """Run *body* inside ``BEGIN IMMEDIATE`` ... ``COMMIT``; roll back on error.

    ``BEGIN IMMEDIATE`` takes the write lock first, so the busy handler waits
    for it instead of failing on a stale read snapshot later.
    """
    raw.execute("BEGIN IMMEDIATE")
    try:
        result = body(raw)
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
    return result


def _setup(raw: sqlite3.Connection, synchronous: str, memory: bool) -> None:
    # Check the schema before touching anything: a database written by a newer
    # orchestrix must be left exactly as it is, journal mode included.
    read_schema_version(raw, strict=True)
    if not memory:
        mode = raw.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            _log.warning(
                "SQLite kept journal mode %r instead of WAL; readers will block "
                "writers (is the file on a network file system?)",
                mode,
            )
    raw.execute(f"PRAGMA synchronous={synchronous}")
    migrate(raw)


@final
class Database:
    """One aiosqlite connection and the thread it runs in."""

    __slots__ = ("_conn", "_raw", "path", "where")

    def __init__(
        self, conn: aiosqlite.Connection, raw: sqlite3.Connection, path: str
    ) -> None:
        self._conn = conn
        self._raw = raw
        self.path = path
        self.where = repr(path)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Database:
        """Connect, apply the connection settings and migrate the schema.

        Raises:
            ConfigurationError: A bad option.
            MissingDependencyError: aiosqlite is not installed.
            BackendUnavailable: The file cannot be opened.
            SchemaVersionError: The schema is newer than this code.
        """
        synchronous = _check_synchronous(synchronous)
        busy_timeout = _check_busy_timeout(busy_timeout)
        name = str(path)
        memory = name == MEMORY
        if not memory:
            # resolve() may stat the file system; it runs once per open.
            name = str(Path(name).expanduser().resolve())  # noqa: ASYNC240 -- see above
        aiosqlite = _driver()
        conn = aiosqlite.connect(name, isolation_level=None, timeout=busy_timeout)
        try:
            await conn
        except sqlite3.Error as exc:
            # After a failed connect aiosqlite stops its thread with a future
            # nobody awaits; wait for the thread so it cannot outlive the loop.
            await asyncio.to_thread(conn._thread.join, 10.0)
            raise _translate(exc, repr(name)) from exc
        # aiosqlite has no public call for "run this function in the
        # connection's thread"; _execute and _conn are that mechanism and have
        # been stable since aiosqlite 0.11. One call per transaction is what
        # makes an append a single round trip (ADR 0014).
        database = cls(conn, conn._conn, name)
        try:
            await database.run(_setup, synchronous, memory)
        except BaseException:
            await conn.close()
            raise
        return database

    async def run(
        self,
        function: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``function(raw_connection, *args)`` in the connection's thread.

        *function* must be atomic (a read, or one `write_transaction`), since
        it is retried whole when SQLite reports the database busy.

        Raises:
            BackendTimeoutError: The database stayed locked too long.
            BackendError: Any other SQLite failure.
        """
        for attempt in range(_BUSY_RETRIES + 1):
            try:
                return await self._conn._execute(function, self._raw, *args, **kwargs)  # type: ignore[no-any-return,no-untyped-call]  # aiosqlite's private API is untyped
            except sqlite3.Error as exc:
                if attempt < _BUSY_RETRIES and _is_busy(exc):
                    await asyncio.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # noqa: S311 -- jitter, not security
                    continue
                raise _translate(exc, self.where) from exc
            except ValueError as exc:
                if isinstance(exc, OrchestrixError):
                    raise
                # aiosqlite raises ValueError("Connection closed") after close.
                msg = f"SQLite database {self.where} connection is closed: {exc}"
                raise BackendError(msg) from exc
        msg = "unreachable"  # pragma: no cover -- the loop returns or raises
        raise AssertionError(msg)  # pragma: no cover

    async def close(self) -> None:
        """Close the connection and stop its thread."""
        await self._conn.close()
