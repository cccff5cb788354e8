"""The SQLite connection thread: its lifetime, closed databases, busy retries."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from contextlib import closing
from typing import TYPE_CHECKING

import pytest

from orchestrix import BackendError, BackendUnavailable, SchemaVersionError
from orchestrix.backends.sqlite._connection import (
    Database,
    _is_busy,
    _post,
    write_transaction,
)
from orchestrix.backends.sqlite._schema import SCHEMA_VERSION, migrate

if TYPE_CHECKING:
    from pathlib import Path


def _connection_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("orchestrix-sqlite:")}


async def test_calls_run_in_one_thread_that_owns_the_connection(
    tmp_path: Path,
) -> None:
    """Every call runs in the database's own thread, the only one allowed to use it."""
    database = await Database.open(tmp_path / "owner.db")
    try:
        idents = {await database.run(lambda _: threading.get_ident()) for _ in range(3)}
        assert idents == {database._thread.ident}
        assert threading.get_ident() not in idents
        assert database._thread.daemon
        raw = await database.run(lambda raw: raw)
        with pytest.raises(sqlite3.ProgrammingError, match="thread"):
            raw.execute("SELECT 1")
    finally:
        await database.close()


async def test_close_ends_the_thread_and_is_idempotent(tmp_path: Path) -> None:
    """After close the thread has ended; a second close is a no-op."""
    database = await Database.open(tmp_path / "close.db")
    thread = database._thread
    assert thread.is_alive()
    await database.close()
    assert not thread.is_alive()
    await database.close()
    assert not thread.is_alive()


async def test_run_after_close_raises_backend_error(tmp_path: Path) -> None:
    """A closed database refuses calls with BackendError, not a driver error."""
    database = await Database.open(tmp_path / "closed.db")
    await database.close()
    with pytest.raises(BackendError, match="connection is closed"):
        await database.run(lambda raw: raw.execute("SELECT 1").fetchone())


async def test_close_waits_for_the_call_in_flight(tmp_path: Path) -> None:
    """close() returns only after the running call ends; later calls are refused."""
    database = await Database.open(tmp_path / "inflight.db")
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()
    release = threading.Event()

    def slow(raw: sqlite3.Connection) -> int:
        loop.call_soon_threadsafe(started.set_result, None)
        release.wait()
        return int(raw.execute("SELECT 42").fetchone()[0])

    call = asyncio.create_task(database.run(slow))
    await started
    closing_task = asyncio.create_task(database.close())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not closing_task.done()
    assert database._thread.is_alive()
    with pytest.raises(BackendError, match="connection is closed"):
        await database.run(lambda raw: raw.execute("SELECT 1").fetchone())
    release.set()
    await closing_task
    assert await call == 42
    assert not database._thread.is_alive()


async def test_failed_open_leaves_no_thread(tmp_path: Path) -> None:
    """An open that fails, connecting or setting up, joins its thread."""
    before = _connection_threads()
    with pytest.raises(BackendUnavailable, match="directory exists"):
        await Database.open(tmp_path / "no" / "such" / "dir" / "app.db")
    assert _connection_threads() - before == set()

    newer = tmp_path / "newer.db"
    with closing(sqlite3.connect(newer, isolation_level=None)) as raw:
        migrate(raw)
        raw.execute("UPDATE orchestrix_schema SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaVersionError):
        await Database.open(newer)
    assert _connection_threads() - before == set()


async def test_cancelled_open_leaves_no_thread(tmp_path: Path) -> None:
    """An open cancelled while its thread connects still ends that thread."""
    before = _connection_threads()
    task = asyncio.create_task(Database.open(tmp_path / "cancelled.db"))
    await asyncio.sleep(0)  # the open has started its thread and waits for it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for thread in _connection_threads() - before:
        await asyncio.to_thread(thread.join, 30.0)
    assert _connection_threads() - before == set()


async def test_cancelled_call_still_runs_to_its_end(tmp_path: Path) -> None:
    """A call whose caller is cancelled completes whole; the database stays usable."""
    database = await Database.open(tmp_path / "cancel.db")
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()
    release = threading.Event()

    def slow(raw: sqlite3.Connection) -> None:
        loop.call_soon_threadsafe(started.set_result, None)
        release.wait()
        write_transaction(raw, lambda raw: raw.execute("CREATE TABLE done (x)"))

    try:
        call = asyncio.create_task(database.run(slow))
        await started
        call.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await call
        count = await database.run(
            lambda raw: raw.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'done'"
            ).fetchone()[0]
        )
        assert count == 1
    finally:
        await database.close()


def test_outcome_for_a_closed_loop_is_dropped() -> None:
    """The thread drops an outcome whose event loop has closed, without failing."""
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    loop.close()
    _post(future, 1, None)
    assert not future.done()


async def test_dropped_database_stops_its_thread(tmp_path: Path) -> None:
    """A database garbage-collected without close() still ends its thread."""
    database = await Database.open(tmp_path / "dropped.db")
    thread = database._thread
    del database
    gc.collect()
    await asyncio.to_thread(thread.join, 30.0)
    assert not thread.is_alive()


async def test_busy_database_is_retried(tmp_path: Path) -> None:
    """A call that hits SQLITE_BUSY is retried whole and then succeeds."""
    path = tmp_path / "busy.db"
    database = await Database.open(path, busy_timeout=0)
    # The blocker is released from the database's thread, inside the call that
    # found the database locked, so the retry is certain to find it free.
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    attempts = 0

    def write(raw: sqlite3.Connection) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            try:
                raw.execute("BEGIN IMMEDIATE")
            finally:
                blocker.execute("ROLLBACK")
        write_transaction(
            raw, lambda raw: raw.execute("CREATE TABLE written (x INTEGER)")
        )
        return attempts

    try:
        assert await database.run(write) == 2
        tables = await database.run(
            lambda raw: raw.execute(
                "SELECT name FROM sqlite_master WHERE name = 'written'"
            ).fetchall()
        )
        assert tables == [("written",)]
    finally:
        blocker.close()
        await database.close()


def test_busy_errors_without_a_code_are_recognised_by_their_message() -> None:
    """An error that lacks SQLite's error code counts as busy by its message."""
    assert _is_busy(sqlite3.OperationalError("database is locked"))
    assert not _is_busy(sqlite3.OperationalError("no such table: x"))
