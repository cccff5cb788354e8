"""SQLite connections for the stores and the bus: URL options, retries, errors.

Each `Database` owns one standard-library ``sqlite3`` connection and a thread
of its own that creates, uses and closes it. Every database call runs as one
plain function in that thread (ADR 0014, ADR 0032), so a whole transaction
costs one round trip between the event loop and the thread. This module holds
the only place where ``sqlite3`` exceptions become orchestrix errors.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import weakref
from pathlib import Path
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, Concatenate, Final, ParamSpec, TypeVar, final
from urllib.parse import parse_qsl, unquote

from orchestrix._utils import redact_url, split_url
from orchestrix.backends.sqlite._schema import migrate, read_schema_version
from orchestrix.config import builtin_schemes
from orchestrix.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailable,
    ConfigurationError,
    MissingDependencyError,
)

try:
    import sqlite3
except ImportError as exc:  # pragma: no cover -- run in a subprocess by the tests
    # No pip extra can add a standard-library module, so the error replaces
    # the usual "pip install 'orchestrix[sqlite]'" with advice that helps.
    _missing = MissingDependencyError("sqlite3", "sqlite")
    _missing.msg = (
        "the SQLite backend needs Python's sqlite3 module, and this Python was "
        "built without it; use a Python built with SQLite (to build one from "
        "source, install SQLite's headers, such as libsqlite3-dev, first)"
    )
    _missing.args = (_missing.msg,)
    raise _missing from exc

if TYPE_CHECKING:
    from collections.abc import Callable

    # What the connection thread takes from its queue: the future to resolve,
    # then the function and its arguments, or None as the function to stop.
    _Call = tuple[
        asyncio.Future[Any] | None,
        Callable[..., Any] | None,
        tuple[Any, ...],
        dict[str, Any],
    ]

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
        ConfigurationError: Not a sqlite URL, a malformed one (see
            `orchestrix._utils.split_url`), no path, a host, or an option not
            in *allowed* or given twice.
    """
    parts = split_url(
        url,
        kind="SQLite",
        schemes=builtin_schemes("orchestrix.backends.sqlite"),
        usage="expected sqlite:///path/to/file.db",
    )
    shown = redact_url(url)
    if parts.netloc:
        # The host is not quoted: it may hold a user name and password.
        msg = (
            f"SQLite URL {shown!r} names a host; SQLite opens a local file: use "
            f"three slashes for a relative path (sqlite:///app.db) or four for an "
            f"absolute one (sqlite:////var/app.db)"
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


def _resolve(
    future: asyncio.Future[Any], result: object, error: BaseException | None
) -> None:
    if future.done():  # its caller was cancelled and no longer waits
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _post(
    future: asyncio.Future[Any] | None, result: object, error: BaseException | None
) -> None:
    """Hand an outcome from the connection thread to the future's event loop."""
    if future is None:
        return
    try:  # noqa: SIM105 -- cheaper than contextlib.suppress on every call
        future.get_loop().call_soon_threadsafe(_resolve, future, result, error)
    except RuntimeError:
        # The loop is closed, so nobody is left to wait for this outcome.
        pass


def _serve(
    calls: SimpleQueue[_Call], path: str, timeout: float, opened: asyncio.Future[None]
) -> None:
    """Open a connection, run each queued call on it in order, then close it.

    This is the body of a `Database`'s thread: the connection is created,
    used and closed here only, as ``sqlite3`` requires by default
    (``check_same_thread``). Posting an outcome is always the thread's last
    act for a call, so a caller that saw the stop acknowledged may join it.
    """
    try:
        raw = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except BaseException as exc:  # noqa: BLE001 -- handed to the caller of open
        _post(opened, None, exc)
        return
    _post(opened, None, None)
    while True:
        future, function, args, kwargs = calls.get()
        if function is None:
            break
        try:
            result = function(raw, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 -- handed to the awaiting caller
            _post(future, None, exc)
        else:
            _post(future, result, None)
    try:
        raw.close()
    finally:
        _post(future, None, None)


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


#: Queued to stop a connection thread that nobody waits for.
_STOP: Final[_Call] = (None, None, (), {})


@final
class Database:
    """One ``sqlite3`` connection and the thread of our own that owns it.

    ``sqlite3`` calls block, so each runs in that thread; `run` sends it a
    function and awaits its outcome, one round trip per call (ADR 0032).
    """

    __slots__ = (
        "__weakref__",
        "_calls",
        "_finalizer",
        "_stopped",
        "_thread",
        "path",
        "where",
    )

    def __init__(self, path: str, timeout: float, opened: asyncio.Future[None]) -> None:
        self.path = path
        self.where = repr(path)
        self._calls: SimpleQueue[_Call] = SimpleQueue()
        self._stopped: asyncio.Future[None] | None = None
        # A daemon, so that a database nobody closed never holds up the exit
        # of the interpreter; `close` joins it.
        self._thread = threading.Thread(
            target=_serve,
            args=(self._calls, path, timeout, opened),
            name=f"orchestrix-sqlite:{Path(path).name}",
            daemon=True,
        )
        # A database dropped without close() still stops its thread and
        # closes its connection once it is garbage.
        self._finalizer = weakref.finalize(self, self._calls.put, _STOP)

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
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        database = cls(name, busy_timeout, opened)
        database._thread.start()
        try:
            await opened
        except BaseException as exc:
            # Stop the thread as soon as it has connected. Unless this open was
            # cancelled while it connects, it has reported, so it ends at once:
            # join it, so that no thread outlives a failed open.
            database._finalizer()
            if not opened.cancelled():
                database._thread.join()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, database.where) from exc
            raise
        try:
            await database.run(_setup, synchronous, memory)
        except BaseException:
            await database.close()
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
            BackendError: Any other SQLite failure, or the database is closed.
        """
        for attempt in range(_BUSY_RETRIES + 1):
            if self._stopped is not None:
                msg = f"SQLite database {self.where} connection is closed"
                raise BackendError(msg)
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self._calls.put((future, function, args, kwargs))
            try:
                return await future
            except sqlite3.Error as exc:
                if attempt < _BUSY_RETRIES and _is_busy(exc):
                    await asyncio.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # noqa: S311 -- jitter, not security
                    continue
                raise _translate(exc, self.where) from exc
        msg = "unreachable"  # pragma: no cover -- the loop returns or raises
        raise AssertionError(msg)  # pragma: no cover

    async def close(self) -> None:
        """Close the connection and end its thread, after the calls in flight.

        Idempotent; `run` raises `BackendError` once close has begun.
        """
        if self._stopped is None:
            self._finalizer.detach()
            self._stopped = asyncio.get_running_loop().create_future()
            self._calls.put((self._stopped, None, (), {}))
        # Shielded: a cancelled close must not cancel the shared future that
        # a later close waits for.
        await asyncio.shield(self._stopped)
        # The thread resolved the future as its last act: this join is brief.
        self._thread.join()
