"""Global ordering on PostgreSQL under concurrency (ADR 0017).

Many writers on separate connections append at once while a reader tails
`read_all`; the reader must end with every committed event exactly once, in
position order, with positions 1, 2, 3, ... and no gaps at any moment.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import pytest

from orchestrix import ANY, Event
from orchestrix.backends.postgres import PostgresEventStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.postgres

WRITERS = 32
APPENDS_PER_WRITER = 15


@dataclass(frozen=True, kw_only=True, slots=True)
class Tick(Event, type="tests.postgres.ordering.tick"):
    writer: int
    n: int


@pytest.fixture
async def schema_url(postgres_url: str, unique_name: str) -> AsyncIterator[str]:
    yield f"{postgres_url}?schema={unique_name}"
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')
    finally:
        await connection.close()


async def test_concurrent_writers_and_tailing_reader(schema_url: str) -> None:
    """32 writers on their own connections and a tailing reader: no gap, no loss.

    Half the writers append to their own streams with an expected version;
    the other half append to one shared stream with ``ANY``, which must
    never fail with a conflict. The reader checks at every step that the
    next position it sees is exactly one more than the last.
    """
    store = await PostgresEventStore.open(
        schema_url, min_size=WRITERS + 1, max_size=WRITERS + 2, page_size=50
    )
    committed: set[str] = set()
    done = asyncio.Event()

    async def writer(index: int) -> None:
        version = 0
        for n in range(APPENDS_PER_WRITER):
            events = [Tick(writer=index, n=n) for _ in range(random.randint(1, 3))]
            if index % 2:
                await store.append("shared", events, expected_version=ANY)
            else:
                result = await store.append(
                    f"own-{index}", events, expected_version=version
                )
                version = result.version
            committed.update(event.id for event in events)
            await asyncio.sleep(0)

    seen: list[str] = []
    last = 0

    async def reader() -> None:
        nonlocal last
        while True:
            finished = done.is_set()
            async for recorded in store.read_all(after_position=last):
                assert recorded.position == last + 1, (recorded.position, last)
                last = recorded.position
                seen.append(recorded.id)
            if finished:
                return
            await asyncio.sleep(0.001)

    tail = asyncio.create_task(reader())
    try:
        await asyncio.gather(*(writer(index) for index in range(WRITERS)))
    finally:
        done.set()
        await tail
    try:
        assert len(seen) == len(set(seen))
        assert set(seen) == committed
        assert last == len(committed)
        shared = [recorded.version async for recorded in store.read("shared")]
        assert shared == list(range(1, len(shared) + 1))
        assert await store.stream_version("shared") == len(shared)
    finally:
        await store.close()


async def _wait_for_lock_waiter(observer: asyncpg.Connection, schema: str) -> None:
    """Poll until some backend waits on a lock inside *schema*'s append function."""
    for _ in range(500):
        waiting = await observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE $1",
            f'%"{schema}".append_events%',
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the second append never waited for the first one's counter lock")


async def test_later_writer_cannot_commit_behind_an_open_one(
    schema_url: str, postgres_url: str, unique_name: str
) -> None:
    """An append waits for an earlier, still open one; readers see neither early.

    A transaction holds positions it was given but has not committed; a
    second append must queue behind it, so no reader can see position 2
    while position 1 is still invisible.
    """
    store = await PostgresEventStore.open(schema_url)
    slow = await asyncpg.connect(postgres_url)
    observer = await asyncpg.connect(postgres_url)
    try:
        first = Tick(writer=1, n=1)
        transaction = slow.transaction()
        await transaction.start()
        await slow.fetchrow(
            f'SELECT * FROM "{unique_name}".append_events($1, NULL, $2, $3, $4, $5)',
            "slow",
            [first.id],
            [Tick.type_name()],
            [1],
            [b'{"writer":1,"n":1}'],
        )
        second = asyncio.create_task(store.append("fast", [Tick(writer=2, n=1)]))
        await _wait_for_lock_waiter(observer, unique_name)
        assert [r async for r in store.read_all()] == []
        await transaction.commit()
        result = await second
        assert result.positions == (2,)
        positions = [(r.stream_id, r.position) async for r in store.read_all()]
        assert positions == [("slow", 1), ("fast", 2)]
    finally:
        await slow.close()
        await observer.close()
        await store.close()


async def test_long_transaction_elsewhere_does_not_stall_readers(
    schema_url: str, postgres_url: str
) -> None:
    """An old snapshot held open on the server does not hide new events from readers."""
    store = await PostgresEventStore.open(schema_url)
    idle = await asyncpg.connect(postgres_url)
    try:
        transaction = idle.transaction(isolation="repeatable_read")
        await transaction.start()
        await idle.fetchval("SELECT txid_current()")
        await store.append("s", [Tick(writer=1, n=1)])
        await store.append("t", [Tick(writer=2, n=1)])
        assert [r.position async for r in store.read_all()] == [1, 2]
        await transaction.rollback()
    finally:
        await idle.close()
        await store.close()


async def test_rolled_back_append_leaves_no_gap(schema_url: str) -> None:
    """A failed append (a reused event id) rolls its positions back: no gap."""
    store = await PostgresEventStore.open(schema_url)
    try:
        reused = Tick(writer=1, n=1)
        await store.append("a", [reused])
        with pytest.raises(Exception, match="already stored"):
            await store.append("b", [Tick(writer=2, n=1), reused])
        result = await store.append("b", [Tick(writer=2, n=2)])
        assert result.positions == (2,)
        assert await store.stream_version("b") == 1
    finally:
        await store.close()
