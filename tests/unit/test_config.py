"""Opening stores and buses by URL: schemes, environment, entry points, errors."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING

import pytest

import orchestrix.config
from orchestrix import (
    ConfigurationError,
    Event,
    ResourceClosedError,
    open_bus,
    open_snapshot_store,
    open_store,
)
from orchestrix.backends.memory import (
    InMemoryEventStore,
    InMemoryMessageBus,
    InMemorySnapshotStore,
)
from orchestrix.backends.memory import backend as memory_backend
from orchestrix.config import known_schemes

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrix.protocols import EventStore, MessageBus, SnapshotStore

URL_VARIABLES = (
    "ORCHESTRIX_STORE_URL",
    "ORCHESTRIX_BUS_URL",
    "ORCHESTRIX_SNAPSHOT_URL",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Noted(Event, type="tests.config.Noted"):
    text: str


class RecordingBackend:
    """A third-party backend: delegates to memory and remembers the URLs."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    async def open_store(self, url: str) -> EventStore:
        self.opened.append(url)
        return await memory_backend.open_store("memory://")

    async def open_snapshot_store(self, url: str) -> SnapshotStore:
        self.opened.append(url)
        return await memory_backend.open_snapshot_store("memory://")

    async def open_bus(self, url: str) -> MessageBus:
        self.opened.append(url)
        return await memory_backend.open_bus("memory://")


THIRD_PARTY = RecordingBackend()
NOT_A_BACKEND = object()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test without URL variables from the surrounding shell."""
    for name in URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def third_party(monkeypatch: pytest.MonkeyPatch) -> RecordingBackend:
    """Install entry points for the ``acme`` (working) and ``broken`` schemes."""
    THIRD_PARTY.opened.clear()
    points = [
        EntryPoint("acme", f"{__name__}:THIRD_PARTY", "orchestrix.backends"),
        EntryPoint("broken", f"{__name__}:NOT_A_BACKEND", "orchestrix.backends"),
    ]

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [p for p in points if p.group == group]

    monkeypatch.setattr(orchestrix.config, "entry_points", entry_points)
    return THIRD_PARTY


async def test_memory_urls_open_memory_backends() -> None:
    """``memory://`` opens the in-memory store, snapshot store and bus."""
    store = await open_store("memory://")
    snapshots = await open_snapshot_store("memory://")
    bus = await open_bus("memory://")
    assert isinstance(store, InMemoryEventStore)
    assert isinstance(snapshots, InMemorySnapshotStore)
    assert isinstance(bus, InMemoryMessageBus)
    for resource in (store, snapshots, bus):
        await resource.close()


async def test_each_open_is_a_fresh_instance() -> None:
    """Two stores opened from one memory URL share nothing."""
    async with open_store("memory://") as first, open_store("memory://") as second:
        await first.append("s", [Noted(text="x")])
        assert await second.stream_version("s") == 0


async def test_defaults_without_url_or_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no argument and no environment: a SQLite file here, a memory bus."""
    from orchestrix.backends.sqlite import SQLiteEventStore, SQLiteSnapshotStore

    monkeypatch.chdir(tmp_path)
    async with open_store() as store, open_bus() as bus:
        assert isinstance(store, SQLiteEventStore)
        assert isinstance(bus, InMemoryMessageBus)
    async with open_snapshot_store() as snapshots:
        assert isinstance(snapshots, SQLiteSnapshotStore)
    assert (tmp_path / "orchestrix.db").exists()


async def test_environment_variables_choose_the_urls(
    monkeypatch: pytest.MonkeyPatch, third_party: RecordingBackend
) -> None:
    """Each opener reads its variable; snapshots fall back to the store URL."""
    monkeypatch.setenv("ORCHESTRIX_STORE_URL", "acme://store")
    monkeypatch.setenv("ORCHESTRIX_BUS_URL", "acme://bus")
    async with open_store(), open_bus(), open_snapshot_store():
        pass
    monkeypatch.setenv("ORCHESTRIX_SNAPSHOT_URL", "acme://snapshots")
    async with open_snapshot_store():
        pass
    assert third_party.opened == [
        "acme://store",
        "acme://bus",
        "acme://store",
        "acme://snapshots",
    ]


async def test_argument_beats_environment(
    monkeypatch: pytest.MonkeyPatch, third_party: RecordingBackend
) -> None:
    """An explicit URL wins over the environment variable."""
    monkeypatch.setenv("ORCHESTRIX_STORE_URL", "acme://from-env")
    async with open_store("acme://explicit"):
        pass
    assert third_party.opened == ["acme://explicit"]


async def test_async_with_closes_on_exit() -> None:
    """``async with open_store(...)`` closes the store when the block ends."""
    async with open_store("memory://") as store:
        await store.append("s", [Noted(text="x")])
    with pytest.raises(ResourceClosedError):
        await store.stream_version("s")


async def test_async_with_closes_on_error() -> None:
    """The store is closed even when the block raises."""
    stores: list[EventStore] = []
    buses: list[MessageBus] = []

    async def work() -> None:
        async with open_bus("memory://") as bus, open_store("memory://") as store:
            stores.append(store)
            buses.append(bus)
            raise LookupError

    with pytest.raises(LookupError):
        await work()
    with pytest.raises(ResourceClosedError):
        await stores[0].stream_version("s")
    with pytest.raises(ResourceClosedError):
        await buses[0].start()


async def test_scheme_is_case_insensitive() -> None:
    """``MEMORY://`` is the memory scheme too."""
    async with open_store("MEMORY://") as store:
        assert isinstance(store, InMemoryEventStore)


async def test_unknown_scheme_lists_the_known_ones() -> None:
    """An unknown scheme names itself, every known scheme and the entry points."""
    with pytest.raises(ConfigurationError) as caught:
        await open_store("mongodb://localhost/db")
    text = str(caught.value)
    assert "'mongodb'" in text
    for scheme in ("memory", "sqlite", "postgresql", "redis"):
        assert scheme in text
    assert "orchestrix.backends" in text


@pytest.mark.parametrize("url", ["", "memory", "just words", "./events.db"])
async def test_not_a_url(url: str) -> None:
    """A string without ``scheme://`` is rejected, listing the schemes."""
    with pytest.raises(ConfigurationError, match="memory"):
        await open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        "nosuch://admin:hunter2@db.example.com:5432/app",
        "nosuch://:hunter2@db.example.com/app",
        "nosuch:/admin:hunter2@db",
    ],
)
async def test_passwords_never_appear_in_errors(url: str) -> None:
    """A URL's password is masked in the error message."""
    with pytest.raises(ConfigurationError) as caught:
        await open_bus(url)
    assert "hunter2" not in str(caught.value)


async def test_third_party_backend_through_entry_point(
    third_party: RecordingBackend,
) -> None:
    """A scheme registered in the ``orchestrix.backends`` group is opened by it."""
    assert "acme" in known_schemes()
    async with open_store("acme://somewhere/db") as store:
        await store.append("s", [Noted(text="x")])
        assert await store.stream_version("s") == 1
    assert third_party.opened == ["acme://somewhere/db"]


async def test_third_party_scheme_is_listed_in_errors(
    third_party: RecordingBackend,
) -> None:
    """Registered third-party schemes appear among the known schemes."""
    with pytest.raises(ConfigurationError, match="acme"):
        await open_store("nosuch://x")


async def test_entry_point_that_is_no_backend(third_party: RecordingBackend) -> None:
    """An entry point naming an object without the opener methods is rejected."""
    with pytest.raises(ConfigurationError, match="'broken'.*open_store"):
        await open_store("broken://x")


def test_known_schemes_are_sorted() -> None:
    """`known_schemes` lists the built-in schemes, sorted."""
    schemes = known_schemes()
    assert schemes == sorted(schemes)
    assert {"memory", "sqlite", "postgresql", "postgres", "redis", "rediss"} <= set(
        schemes
    )
