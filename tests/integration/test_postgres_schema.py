"""PostgreSQL schema handling, URL options, the driver check and bulk import."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import pytest

from orchestrix import (
    ConfigurationError,
    DuplicateEventError,
    Event,
    MissingDependencyError,
    SchemaVersionError,
    Snapshot,
    open_bus,
    open_checkpoint_store,
    open_snapshot_store,
    open_store,
)
from orchestrix.backends.postgres import (
    PostgresCheckpointStore,
    PostgresEventStore,
    PostgresMessageBus,
    PostgresSnapshotStore,
)
from orchestrix.backends.postgres._connection import create_pool, parse_url
from orchestrix.backends.postgres._schema import LATEST_VERSION, MIGRATIONS, migrate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.postgres


@dataclass(frozen=True, kw_only=True, slots=True)
class Loaded(Event, type="tests.postgres.schema.loaded"):
    n: int
    text: str = ""


@pytest.fixture
async def admin(
    postgres_url: str, unique_name: str
) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(postgres_url)
    yield connection
    await connection.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')
    await connection.execute(f'DROP SCHEMA IF EXISTS "{unique_name}_b" CASCADE')
    await connection.close()


async def test_concurrent_opens_migrate_once(
    postgres_url: str, unique_name: str, admin: asyncpg.Connection
) -> None:
    """Ten processes opening a fresh schema at once apply each migration once."""
    url = f"{postgres_url}?schema={unique_name}&max_size=1"
    stores = await asyncio.gather(*(PostgresEventStore.open(url) for _ in range(10)))
    for store in stores:
        await store.close()
    rows = await admin.fetch(
        f'SELECT version FROM "{unique_name}".schema_migrations ORDER BY version'
    )
    assert [row[0] for row in rows] == list(range(1, LATEST_VERSION + 1))


async def test_newer_schema_is_refused(
    postgres_url: str, unique_name: str, admin: asyncpg.Connection
) -> None:
    """A schema migrated by a newer release raises SchemaVersionError, untouched."""
    url = f"{postgres_url}?schema={unique_name}"
    store = await open_store(url)
    await store.close()
    await admin.execute(
        f'INSERT INTO "{unique_name}".schema_migrations VALUES (999, $1)', "future"
    )
    with pytest.raises(SchemaVersionError, match="999"):
        await open_store(url)
    with pytest.raises(SchemaVersionError):
        await open_bus(url)
    with pytest.raises(SchemaVersionError):
        await open_checkpoint_store(url)
    count = await admin.fetchval(
        f'SELECT count(*) FROM "{unique_name}".schema_migrations'
    )
    assert count == LATEST_VERSION + 1


async def test_previous_version_migrates_keeping_its_data(
    postgres_url: str, unique_name: str, admin: asyncpg.Connection
) -> None:
    """A schema an older release left gains the checkpoints table on open.

    Its events and snapshots survive, and the new step is recorded once.
    """
    url = f"{postgres_url}?schema={unique_name}"
    previous = MIGRATIONS[-2][0]
    assert await migrate(admin, unique_name, MIGRATIONS[:-1]) == previous
    # Write through stores built on a plain pool: their open() would migrate.
    pool = await create_pool(parse_url(url))
    old_store = PostgresEventStore(pool, schema=unique_name)
    old_snapshots = PostgresSnapshotStore(pool, schema=unique_name)
    try:
        await old_store.append("kept", [Loaded(n=1), Loaded(n=2)])
        await old_snapshots.save(Snapshot("kept", 2, "Kept", 1, b"{}"))
    finally:
        await pool.close()
    assert (
        await admin.fetchval("SELECT to_regclass($1)", f"{unique_name}.checkpoints")
        is None
    )

    async with await PostgresCheckpointStore.open(url) as checkpoints:
        assert await checkpoints.load_all() == {}
        await checkpoints.save("projection", 2)
        assert await checkpoints.load("projection") == 2
    rows = await admin.fetch(
        f'SELECT version FROM "{unique_name}".schema_migrations ORDER BY version'
    )
    assert [row[0] for row in rows] == list(range(1, LATEST_VERSION + 1))
    async with open_store(url) as store:
        assert [r.event.n async for r in store.read("kept")] == [1, 2]  # type: ignore[attr-defined]
    async with open_snapshot_store(url) as snapshots:
        assert await snapshots.load("kept") == Snapshot("kept", 2, "Kept", 1, b"{}")
    async with open_checkpoint_store(url) as checkpoints:
        assert await checkpoints.load_all() == {"projection": 2}


async def test_schemas_isolate_applications(
    postgres_url: str, unique_name: str, admin: asyncpg.Connection
) -> None:
    """Two schemas in one database hold separate logs; stream ids are parameters."""
    first = await open_store(f"{postgres_url}?schema={unique_name}")
    second = await open_store(
        f"postgres://{postgres_url.split('://', 1)[1]}?schema={unique_name}_b"
    )
    try:
        hostile = "x'); DROP TABLE events; --\"ü"
        await first.append(hostile, [Loaded(n=1)])
        assert [r.stream_id async for r in first.read_all()] == [hostile]
        assert [r async for r in second.read_all()] == []
        assert await second.stream_version(hostile) == 0
    finally:
        await first.close()
        await second.close()
    assert admin is not None


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("schema=bad;name", "schema name"),
        ("schema=", "schema name"),
        ("max_size=0", "max_size"),
        ("min_size=5&max_size=2", "min_size"),
        ("page_size=x", "page_size"),
        ("visibility_timeout=-1", "visibility_timeout"),
        ("concurrency=0", "concurrency"),
    ],
)
def test_bad_options_are_refused(query: str, needle: str) -> None:
    """Invalid URL options raise ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError, match=needle):
        parse_url(f"postgresql://u:pw@h/db?{query}")


def test_options_leave_driver_parameters_alone() -> None:
    """Options of orchestrix are removed from the DSN; libpq-style ones stay."""
    options = parse_url(
        "postgres://u:pw@h:5/db?schema=app&max_size=3&sslmode=disable&page_size=9"
    )
    assert options.schema == "app"
    assert options.max_size == 3
    assert options.page_size == 9
    assert options.dsn == "postgresql://u:pw@h:5/db?sslmode=disable"
    assert "pw" not in options.redacted


async def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without asyncpg, opening a postgres URL raises MissingDependencyError."""
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(MissingDependencyError) as caught:
        await open_store("postgresql://u@127.0.0.1/db")
    assert caught.value.extra == "postgres"
    assert "orchestrix[postgres]" in str(caught.value)


async def test_opened_by_url_scheme(
    postgres_url: str, unique_name: str, admin: asyncpg.Connection
) -> None:
    """Both URL schemes open the PostgreSQL stores and bus."""
    url = f"{postgres_url}?schema={unique_name}"
    async with open_store(url) as store:
        assert isinstance(store, PostgresEventStore)
    async with open_snapshot_store(
        url.replace("postgresql://", "postgres://")
    ) as snaps:
        assert isinstance(snaps, PostgresSnapshotStore)
    async with open_bus(url) as bus:
        assert isinstance(bus, PostgresMessageBus)
    async with open_checkpoint_store(url) as checkpoints:
        assert isinstance(checkpoints, PostgresCheckpointStore)
        assert "schema=" in repr(checkpoints)
    assert admin is not None


async def test_import_events_is_atomic_and_idempotent(
    postgres_url: str, unique_name: str, admin: asyncpg.Connection
) -> None:
    """COPY import stores all events in order, gap-free; a retry stores nothing."""
    store = await PostgresEventStore.open(f"{postgres_url}?schema={unique_name}")
    try:
        await store.append("s-0", [Loaded(n=-1)])
        batch = [
            (f"s-{index % 7}", [Loaded(n=index, text="nul \x00 inside")])
            for index in range(300)
        ]
        assert await store.import_events(batch) == 300
        assert await store.import_events(batch) == 0
        recorded = [r async for r in store.read_all()]
        assert [r.position for r in recorded] == list(range(1, 302))
        assert [r.event.n for r in recorded[1:]] == list(range(300))  # type: ignore[attr-defined]
        assert recorded[1].event.text == "nul \x00 inside"  # type: ignore[attr-defined]
        versions = [r.version async for r in store.read("s-0")]
        assert versions == list(range(1, len(versions) + 1))
        assert await store.stream_version("s-0") == 1 + 300 // 7 + 1

        reused = batch[5][1][0]
        with pytest.raises(DuplicateEventError, match=reused.id):
            await store.import_events([("new", [Loaded(n=1000)]), ("new", [reused])])
        assert await store.stream_version("new") == 0
        after = await store.append("next", [Loaded(n=1001)])
        assert after.positions == (302,)
    finally:
        await store.close()
    assert admin is not None
