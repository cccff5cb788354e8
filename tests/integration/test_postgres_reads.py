"""PostgreSQL reads: the next page is fetched ahead and never leaked."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import pytest

from orchestrix import Event
from orchestrix.backends.postgres import PostgresEventStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.postgres

EVENTS = 11


@dataclass(frozen=True, kw_only=True, slots=True)
class Tick(Event, type="tests.postgres.reads.tick"):
    n: int


@pytest.fixture
async def store(
    postgres_url: str, unique_name: str
) -> AsyncIterator[PostgresEventStore]:
    # One connection: a page fetch left running would block every later read.
    opened = await PostgresEventStore.open(
        f"{postgres_url}?schema={unique_name}", min_size=1, max_size=1, page_size=2
    )
    try:
        yield opened
    finally:
        await opened.close()
        connection = await asyncpg.connect(postgres_url)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')
        finally:
            await connection.close()


async def _fill(store: PostgresEventStore, stream_id: str) -> None:
    await store.append(stream_id, [Tick(n=n) for n in range(EVENTS)])


async def test_stopping_a_read_early_frees_its_connection(
    store: PostgresEventStore, unique_name: str
) -> None:
    """A reader that stops mid-page leaves the pool usable for the next read."""
    stream_id = f"{unique_name}-s"
    await _fill(store, stream_id)
    for _ in range(3):
        records = store.read(stream_id)
        assert isinstance(records, AsyncGenerator)
        async with contextlib.aclosing(records):
            async for recorded in records:
                assert recorded.version == 1
                break
    read = [r.event async for r in store.read(stream_id)]
    assert [event.n for event in read if isinstance(event, Tick)] == list(range(EVENTS))


async def test_reads_page_by_page_in_order_up_to_the_limit(
    store: PostgresEventStore, unique_name: str
) -> None:
    """Paged reads with and without a limit return each event once, in order."""
    stream_id = f"{unique_name}-s"
    await _fill(store, stream_id)
    for limit in (None, 1, 2, 3, 4, EVENTS, EVENTS + 5):
        read = [r async for r in store.read(stream_id, after_version=1, limit=limit)]
        expected = EVENTS - 1 if limit is None else min(limit, EVENTS - 1)
        assert [r.version for r in read] == list(range(2, expected + 2))
        everything = [r async for r in store.read_all(limit=limit)]
        expected = EVENTS if limit is None else min(limit, EVENTS)
        assert [r.position for r in everything] == list(range(1, expected + 1))
        assert all(r.stream_id == stream_id for r in everything)


async def test_a_read_abandoned_while_its_next_page_loads_is_cancelled(
    store: PostgresEventStore, unique_name: str
) -> None:
    """Cancelling a reader between pages stops its fetch; the store still reads."""
    stream_id = f"{unique_name}-s"
    await _fill(store, stream_id)
    started = asyncio.Event()

    async def reader() -> None:
        async for _ in store.read_all():
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(reader())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.stream_version(stream_id) == EVENTS
    assert len([r async for r in store.read_all()]) == EVENTS
