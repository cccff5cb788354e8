"""PostgreSQL connections killed mid-run: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import pytest

from orchestrix import BackendUnavailable, Event, open_store
from orchestrix.backends.postgres import PostgresEventStore, PostgresMessageBus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from orchestrix.records import AppendResult

pytestmark = pytest.mark.postgres

WRITERS = 4
APPENDS = 20


@dataclass(frozen=True, kw_only=True, slots=True)
class Blip(Event, type="tests.postgres.faults.blip"):
    n: int


@pytest.fixture
async def schema_url(postgres_url: str, unique_name: str) -> AsyncIterator[str]:
    yield f"{postgres_url}?schema={unique_name}&application_name={unique_name}"
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')
    finally:
        await connection.close()


async def _kill(postgres_url: str, application: str) -> int:
    connection = await asyncpg.connect(postgres_url)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                application,
            )
        )
    finally:
        await connection.close()


async def test_appends_survive_killed_connections(
    schema_url: str, postgres_url: str, unique_name: str
) -> None:
    """Appends commit or raise BackendUnavailable; retrying them stores each once."""
    store = await PostgresEventStore.open(schema_url, min_size=4, max_size=8)
    unavailable = 0
    killed = 0
    killing = True

    async def killer() -> None:
        nonlocal killed
        while killing:
            await asyncio.sleep(0.05)
            killed += await _kill(postgres_url, unique_name)

    async def writer(index: int) -> list[AppendResult]:
        nonlocal unavailable
        results = []
        version = 0
        for n in range(APPENDS):
            events = [Blip(n=n), Blip(n=n)]
            result: AppendResult | None = None
            while result is None:
                try:
                    result = await store.append(
                        f"w-{index}", events, expected_version=version
                    )
                except BackendUnavailable:
                    unavailable += 1
            version = result.version
            results.append(result)
        return results

    kill_task = asyncio.create_task(killer())
    try:
        outcomes = await asyncio.gather(*(writer(index) for index in range(WRITERS)))
    finally:
        killing = False
        await kill_task
    try:
        assert killed > 0
        positions = [r.position async for r in store.read_all()]
        assert positions == list(range(1, WRITERS * APPENDS * 2 + 1))
        for index, results in enumerate(outcomes):
            assert results[-1].version == APPENDS * 2
            versions = [r.version async for r in store.read(f"w-{index}")]
            assert versions == list(range(1, APPENDS * 2 + 1))
    finally:
        await store.close()


async def test_bus_redelivers_after_killed_connections(
    schema_url: str, postgres_url: str, unique_name: str
) -> None:
    """Deliveries interrupted by dropped connections are redelivered; none is lost."""
    consumer = await PostgresMessageBus.open(
        schema_url, visibility_timeout=0.5, max_attempts=50, poll_interval=0.1
    )
    publisher = await PostgresMessageBus.open(schema_url)
    handled: set[int] = set()

    async def handle(message: Blip) -> None:
        handled.add(message.n)

    consumer.subscribe(Blip, handle, group="g")
    await consumer.start()
    try:
        sent = 0
        for round_ in range(5):
            for _ in range(20):
                while True:
                    try:
                        await publisher.publish(Blip(n=sent))
                        break
                    except BackendUnavailable:
                        continue
                sent += 1
            await _kill(postgres_url, unique_name)
            del round_
        for _ in range(400):
            if len(handled) == sent:
                break
            await asyncio.sleep(0.05)
        assert handled == set(range(sent))
        assert await consumer.dead_letters() == []
    finally:
        await consumer.close()
        await publisher.close()


async def test_unreachable_server_error_hides_the_password() -> None:
    """A URL with a password to a closed port fails clearly, without the password."""
    url = "postgresql://someone:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(BackendUnavailable) as caught:
        await open_store(url)
    text = "".join(traceback.format_exception(caught.value))
    assert "s3cr3t-pw" not in text
    assert "someone:***@127.0.0.1:1" in str(caught.value)


async def test_store_repr_hides_the_password(
    postgres_url: str, unique_name: str
) -> None:
    """The store's repr names the server but never the password."""
    url = postgres_url.replace("postgres@", "postgres:not-needed@")
    store = await PostgresEventStore.open(f"{url}?schema={unique_name}")
    try:
        assert "not-needed" not in repr(store)
    finally:
        await store.close()
        with contextlib.suppress(Exception):
            connection = await asyncpg.connect(postgres_url)
            await connection.execute(f'DROP SCHEMA "{unique_name}" CASCADE')
            await connection.close()
