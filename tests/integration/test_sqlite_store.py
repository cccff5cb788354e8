"""SQLite specifics of the stores: URLs, options, locking, errors, concurrency."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from orchestrix import (
    BackendTimeoutError,
    BackendUnavailable,
    ConcurrencyError,
    ConfigurationError,
    DuplicateEventError,
    Event,
    ResourceClosedError,
    open_bus,
    open_store,
)
from orchestrix.backends.sqlite import SQLiteEventStore

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, kw_only=True, slots=True)
class Counted(Event, type="tests.sqlite.store.counted"):
    n: int


async def _pragma(store: object, name: str) -> object:
    assert isinstance(store, SQLiteEventStore)
    return await store._db.run(lambda raw: raw.execute(f"PRAGMA {name}").fetchone()[0])


async def test_relative_absolute_and_memory_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three slashes: a relative path; four: an absolute one; :memory:: private."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    async with open_store("sqlite:///data/rel.db") as store:
        await store.append("s", [Counted(n=1)])
        assert isinstance(store, SQLiteEventStore)
        assert store.path == str(tmp_path / "data" / "rel.db")
    async with open_store(f"sqlite:///{tmp_path}/data/rel.db") as store:
        assert await store.stream_version("s") == 1
    async with open_store("sqlite:///:memory:") as store:
        await store.append("s", [Counted(n=1)])
        assert await store.stream_version("s") == 1
        assert await _pragma(store, "journal_mode") == "memory"
    async with open_store("sqlite:///:memory:") as store:
        assert await store.stream_version("s") == 0


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("sqlite://host/app.db", "names a host"),
        ("sqlite:///", "no database path"),
        ("sqlite:///app.db?synchronous=sometimes", "synchronous"),
        ("sqlite:///app.db?busy_timeout=-1", "busy_timeout"),
        ("sqlite:///app.db?busy_timeout=soon", "busy_timeout"),
        ("sqlite:///app.db?max_attempts=0", "max_attempts"),
        ("sqlite:///app.db?colour=blue", "unknown option 'colour'"),
        ("sqlite:///app.db?synchronous=full&synchronous=off", "given twice"),
    ],
)
async def test_bad_store_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, needle: str
) -> None:
    """A bad store URL raises ConfigurationError naming what is wrong."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=needle):
        await open_store(url)
    assert not (tmp_path / "app.db").exists()


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("visibility_timeout=0", "visibility_timeout"),
        ("max_attempts=0", "max_attempts"),
        ("max_attempts=2.5", "max_attempts"),
        ("poll_interval=fast", "poll_interval"),
        ("concurrency=0", "concurrency"),
        ("colour=blue", "unknown option 'colour'"),
    ],
)
async def test_bad_bus_urls(tmp_path: Path, query: str, needle: str) -> None:
    """A bad bus option in the URL raises ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError, match=needle):
        await open_bus(f"sqlite:///{tmp_path}/bus.db?{query}")


async def test_bus_url_options_are_applied(tmp_path: Path) -> None:
    """Bus options in the URL reach the bus (they are validated, then used)."""
    url = f"sqlite:///{tmp_path}/bus.db?max_attempts=2&concurrency=3&poll_interval=0.1"
    async with open_bus(url) as bus:
        options = bus._bus_options  # type: ignore[attr-defined]
        assert (options.max_attempts, options.concurrency, options.poll_interval) == (
            2,
            3,
            0.1,
        )


@pytest.mark.parametrize(
    ("query", "level"), [("", 2), ("?synchronous=normal", 1), ("?synchronous=OFF", 0)]
)
async def test_synchronous_option(tmp_path: Path, query: str, level: int) -> None:
    """``synchronous`` defaults to full and the URL can choose another level."""
    async with open_store(f"sqlite:///{tmp_path}/s.db{query}") as store:
        assert await _pragma(store, "synchronous") == level
        assert await _pragma(store, "journal_mode") == "wal"


async def test_missing_directory_is_unavailable(tmp_path: Path) -> None:
    """A path in a directory that does not exist raises BackendUnavailable."""
    with pytest.raises(BackendUnavailable, match="directory exists"):
        await open_store(f"sqlite:///{tmp_path}/no/such/dir/app.db")


async def test_works_without_aiosqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The backend needs only the standard library's sqlite3 (ADR 0032)."""
    monkeypatch.setitem(sys.modules, "aiosqlite", None)
    async with open_store(f"sqlite:///{tmp_path}/app.db") as store:
        await store.append("s", [Counted(n=1)])
        assert await store.stream_version("s") == 1


def test_python_without_sqlite3_gets_missing_dependency_error(tmp_path: Path) -> None:
    """Without the sqlite3 module, opening raises MissingDependencyError saying so."""
    code = (
        "import asyncio, sys\n"
        "sys.modules['sqlite3'] = None\n"
        "from orchestrix import MissingDependencyError, open_store\n"
        "async def main():\n"
        "    await open_store('sqlite:///app.db')\n"
        "try:\n"
        "    asyncio.run(main())\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc.name, exc.extra, isinstance(exc, ImportError))\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    first, message = result.stdout.splitlines()
    assert first == "sqlite3 sqlite True"
    assert "built without it" in message
    assert "pip install" not in message
    assert not (tmp_path / "app.db").exists()


async def test_locked_database_times_out_cleanly(tmp_path: Path) -> None:
    """A write lock held elsewhere past busy_timeout gives BackendTimeoutError."""
    path = tmp_path / "locked.db"
    async with open_store(f"sqlite:///{path}?busy_timeout=0.05") as store:
        await store.append("s", [Counted(n=1)])
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(BackendTimeoutError, match="busy_timeout") as caught:
                await store.append("s", [Counted(n=2)], expected_version=1)
            assert isinstance(caught.value, TimeoutError)
            assert await store.stream_version("s") == 1  # WAL readers still read
            other.execute("ROLLBACK")
        result = await store.append("s", [Counted(n=2)], expected_version=1)
        assert (result.version, result.positions) == (2, (2,))


async def test_failed_appends_leave_no_gap(tmp_path: Path) -> None:
    """Appends that fail and roll back never consume a global position."""
    async with open_store(f"sqlite:///{tmp_path}/gaps.db") as store:
        taken = Counted(n=0)
        await store.append("a", [taken])
        with pytest.raises(DuplicateEventError):
            await store.append("b", [Counted(n=1), taken])
        with pytest.raises(ConcurrencyError):
            await store.append("a", [Counted(n=2)], expected_version=5)
        result = await store.append("b", [Counted(n=3), Counted(n=4)])
        assert result.positions == (2, 3)
        assert [r.position async for r in store.read_all()] == [1, 2, 3]


async def test_many_tasks_race_on_one_stream(tmp_path: Path) -> None:
    """Tasks on separate connections racing with expected versions stay gap-free."""
    url = f"sqlite:///{tmp_path}/race.db"
    stores = [
        await SQLiteEventStore.open(url.removeprefix("sqlite:///")) for _ in range(4)
    ]
    conflicts = 0

    async def writer(store: SQLiteEventStore, name: int) -> None:
        nonlocal conflicts
        for n in range(15):
            while True:
                version = await store.stream_version("shared")
                try:
                    await store.append(
                        "shared", [Counted(n=name * 100 + n)], expected_version=version
                    )
                    break
                except ConcurrencyError:
                    conflicts += 1

    try:
        await asyncio.gather(*(writer(stores[i % 4], i) for i in range(8)))
        records = [r async for r in stores[0].read_all()]
    finally:
        for store in stores:
            await store.close()
    assert [r.position for r in records] == list(range(1, 121))
    assert [r.version for r in records] == list(range(1, 121))
    for name in range(8):
        mine = [r.event.n for r in records if r.event.n // 100 == name]  # type: ignore[attr-defined]
        assert mine == [name * 100 + n for n in range(15)]


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    """After close, reads and writes raise ResourceClosedError."""
    store = await open_store(f"sqlite:///{tmp_path}/closed.db")
    await store.close()
    await store.close()
    with pytest.raises(ResourceClosedError):
        await store.append("s", [Counted(n=1)])
    with pytest.raises(ResourceClosedError):
        store.read_all()
