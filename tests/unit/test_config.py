"""Opening stores and buses by URL: schemes, environment, entry points, errors."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestrix.backends.memory
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
from orchestrix.backends.postgres import backend as postgres_backend
from orchestrix.backends.postgres._connection import parse_url as parse_postgres_url
from orchestrix.backends.redis import RedisEventStore
from orchestrix.backends.redis import backend as redis_backend
from orchestrix.backends.sqlite import backend as sqlite_backend
from orchestrix.backends.sqlite._connection import STORE_OPTIONS
from orchestrix.backends.sqlite._connection import parse_url as parse_sqlite_url
from orchestrix.config import known_schemes

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from orchestrix.config import Backend, Opening
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


# Every host below is 127.0.0.1:1, a closed port, so a URL that wrongly passes
# its parser fails fast with BackendUnavailable instead of reaching a server.
MALFORMED_URLS = [
    ("memory://[::1", "memory://"),
    ("sqlite://[::1/app.db", "IPv6"),
    ("sqlite:///app\x00.db", "NUL"),
    ("sqlite:///app%00.db", "NUL"),
    ("sqlite:///app%zz.db", "%25"),
    ("sqlite:///app%ff.db", "UTF-8"),
    ("sqlite:///app\ud800.db", "UTF-8"),
    ("sqlite:///app.db#1", "%23"),
    ("postgresql://[::1/db", "IPv6"),
    ("postgresql://u@127.0.0.1:99999/db", "port"),
    ("postgresql://u@127.0.0.1:abc/db", "port"),
    ("postgresql://u@127.0.0.1:1,127.0.0.2:0/db", "port"),
    ("postgresql://u@[::1]x/db", "port"),
    ("postgresql://u@127.0.0.1:1/d%zzb", "%25"),
    ("postgresql://u@127.0.0.1:1/d\x00b", "NUL"),
    ("postgresql://u@127.0.0.1:1/d%00b", "NUL"),
    ("postgres://u@127.0.0.1:1/db#x", "%23"),
    ("postgresql://u@127.0.0.1:1/db?schema=a&schema=b", "'schema' is given twice"),
    ("postgresql://u@127.0.0.1:1/db?page_size=1&page_size=2", "given twice"),
    ("postgresql://u@127.0.0.1:1/db?application_name=a&application_name=b", "twice"),
    ("redis://[::1:6379/0", "IPv6"),
    ("redis://127.0.0.1:99999/0", "port"),
    ("redis://127.0.0.1:abc/0", "port"),
    ("redis://127.0.0.1:1/0\x00", "NUL"),
    ("redis://127.0.0.1:1/0?prefix=%zz", "%25"),
    ("rediss://127.0.0.1:1/0#x", "%23"),
    ("redis://127.0.0.1:1/0?prefix=a&prefix=b", "'prefix' is given twice"),
    ("redis://127.0.0.1:1/0?socket_timeout=1&socket_timeout=2", "given twice"),
]

OPENERS: list[Callable[[str], Opening[Any]]] = [
    open_store,
    open_snapshot_store,
    open_bus,
]
OPENER_IDS = ["store", "snapshots", "bus"]


@pytest.mark.parametrize("opener", OPENERS, ids=OPENER_IDS)
@pytest.mark.parametrize(("url", "needle"), MALFORMED_URLS)
async def test_malformed_urls_raise_configuration_error(
    opener: Callable[[str], Opening[Any]],
    url: str,
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A malformed URL of any scheme raises ConfigurationError naming the fault.

    Bad IPv6 brackets, ports, percent-escapes, NUL characters, fragments and
    repeated options are refused before any file is created or server asked.
    """
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        await opener(url)
    assert needle in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opener", OPENERS, ids=OPENER_IDS)
@pytest.mark.parametrize(
    ("url", "value"),
    [
        ("redis://127.0.0.1:1/abc", "'abc'"),
        ("redis://127.0.0.1:1/-1", "'-1'"),
        ("redis://127.0.0.1:1/0/1", "'0/1'"),
        ("redis://127.0.0.1:1/%31x", "'1x'"),
        ("redis://127.0.0.1:1?db=x", "'x'"),
        ("redis://127.0.0.1:1/?db=-2", "'-2'"),
        ("redis://127.0.0.1:1?db=", "''"),
    ],
)
async def test_redis_database_must_be_an_integer(
    opener: Callable[[str], Opening[Any]], url: str, value: str
) -> None:
    """A Redis database that is no integer >= 0 is refused, naming the value.

    It used to open database 0 silently, or fail on the server.
    """
    with pytest.raises(ConfigurationError, match="database") as caught:
        await opener(url)
    assert value in str(caught.value)


def test_redis_database_given_twice() -> None:
    """A Redis database in both the path and ``?db=`` is ambiguous and refused."""
    with pytest.raises(ConfigurationError, match="twice"):
        RedisEventStore("redis://127.0.0.1:1/1?db=2")


@pytest.mark.parametrize("db", ["", "/", "/0", "/15", "?db=3", "/?db=3"])
async def test_good_redis_databases_are_accepted(db: str) -> None:
    """An empty path, ``/N`` or ``?db=N`` opens the client on that database."""
    store = RedisEventStore(f"redis://127.0.0.1:1{db}")
    await store.close()


@pytest.mark.parametrize(
    "backend",
    [memory_backend, sqlite_backend, postgres_backend, redis_backend],
    ids=["memory", "sqlite", "postgres", "redis"],
)
@pytest.mark.parametrize("url", [None, 5, b"memory://", ["memory://"]])
async def test_backends_refuse_urls_that_are_not_str(
    backend: Backend, url: object
) -> None:
    """A backend given something other than a str raises ConfigurationError."""
    for open_ in (backend.open_store, backend.open_snapshot_store, backend.open_bus):
        with pytest.raises(ConfigurationError, match="must be a str"):
            await open_(url)  # type: ignore[arg-type]  # the wrong type on purpose


@pytest.mark.parametrize("url", [5, b"memory://", ["memory://"]])
async def test_openers_refuse_urls_that_are_not_str(url: object) -> None:
    """`open_store` and its siblings name the type of a URL that is not a str."""
    for opener in OPENERS:
        with pytest.raises(ConfigurationError, match="must be a str") as caught:
            await opener(url)  # type: ignore[arg-type]  # the wrong type on purpose
        assert "memory" in str(caught.value)


SEED_URLS = [
    "memory://",
    "sqlite:///app.db?synchronous=normal&busy_timeout=2",
    "sqlite:////var/lib/app%20data.db",
    "postgresql://user:pw@127.0.0.1:5432,[::1]:5433/db?schema=s&min_size=1",
    "postgres://127.0.0.1/db?application_name=x&connect_timeout=2.5",
    "redis://user:pw@127.0.0.1:6379/0?prefix=p&socket_timeout=2",
    "rediss://[::1]:6380?db=2",
]
# Characters that matter to URL syntax, or to the checks after it.
TRICKY = [
    *"[]@:/?#%&=,;+ -_.~0123456789abcdefxyz",
    "\x00",
    "\t",
    "\n",
    "\\",
    "\uff03",
    "\uff1a",
    "\ud800",
    "\xe9",
    "%00",
    "%ff",
    "%zz",
    "%25",
    "://",
]


@st.composite
def mutated_urls(draw: st.DrawFn) -> str:
    """Draw a good URL of some scheme, then insert, delete or replace a few bits."""
    url = draw(st.sampled_from(SEED_URLS))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        start = draw(st.integers(min_value=0, max_value=len(url)))
        end = draw(st.integers(min_value=start, max_value=min(len(url), start + 3)))
        piece = draw(st.sampled_from(["", *TRICKY]))
        url = url[:start] + piece + url[end:]
    return url


def _parse_everywhere(url: object) -> None:
    """Run every URL parser on *url*, as far as it gets without connecting."""
    parsers: list[Callable[[Any], object]] = [
        orchestrix.config._backend,
        orchestrix.backends.memory._check_url,
        lambda u: parse_sqlite_url(u, STORE_OPTIONS),
        parse_postgres_url,
        RedisEventStore,
    ]
    for parse in parsers:
        with contextlib.suppress(ConfigurationError):
            parse(url)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        mutated_urls(),
        st.text(),
        st.builds(
            "".join,
            st.tuples(
                st.sampled_from(
                    ["memory://", "sqlite://", "postgresql://", "redis://"]
                ),
                st.lists(st.sampled_from(TRICKY)).map("".join),
            ),
        ),
        st.binary(),
        st.integers(),
        st.none(),
    )
)
def test_url_parsers_raise_only_configuration_errors(url: object) -> None:
    """Whatever the URL, parsing it succeeds or raises ConfigurationError.

    No ValueError, TypeError or UnicodeError of urllib or a driver escapes.
    """
    _parse_everywhere(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("redis://127.0.0.1:1/0?max_attempts=0", id="redis"),
        pytest.param("postgresql://u@127.0.0.1:1/db?max_attempts=1_0", id="postgres"),
        pytest.param("sqlite:///{tmp}/x.db?max_attempts=0", id="sqlite"),
    ],
)
async def test_stores_check_bus_options_of_their_url(url: str, tmp_path: Any) -> None:
    """One URL serves store and bus: every store refuses a bad bus option alike.

    The ports are closed, so the error comes from the check, before connecting.
    """
    with pytest.raises(ConfigurationError, match="bus option 'max_attempts' must be"):
        await open_store(url.format(tmp=tmp_path))


@pytest.mark.parametrize("option", ["ssl_cert_reqs=none", "ssl_ca_certs=/x.pem"])
async def test_tls_options_need_a_rediss_url(option: str) -> None:
    """A TLS option on a plain redis:// URL is refused before connecting.

    redis-py accepts it, then fails every connection with a raw TypeError.
    """
    with pytest.raises(ConfigurationError, match="needs a rediss:// URL"):
        await open_store(f"redis://127.0.0.1:1/0?{option}")


def test_entry_points_match_the_one_list_of_builtin_schemes() -> None:
    """The package's entry points register exactly the built-in schemes.

    `orchestrix.config` keeps the one list; the backends' URL parsers read
    their schemes from it, and the entry points must not drift from it.
    """
    from importlib.metadata import entry_points

    ours = {
        entry.name: entry.value
        for entry in entry_points(group=orchestrix.config.ENTRY_POINT_GROUP)
        if entry.value.startswith("orchestrix.")
    }
    builtin = orchestrix.config._BUILTIN
    assert ours == {scheme: target for scheme, (target, _) in builtin.items()}
    assert orchestrix.config.builtin_schemes("orchestrix.backends.postgres") == (
        "postgresql",
        "postgres",
    )
