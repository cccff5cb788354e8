"""`EventStoreContract`: the executable copy of the `EventStore` contract."""

# Contract suites are tests shipped in the package: they assert, and compare
# with literal counts.
# ruff: noqa: S101, PLR2004

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from orchestrix.errors import (
    ConcurrencyError,
    DuplicateEventError,
    ResourceClosedError,
    SerializationError,
)
from orchestrix.protocols import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    EventStore,
)
from orchestrix.records import AppendResult, Recorded

# The helpers and stream ids are shared with the input half of the contract.
from orchestrix.testing._event_store_input import (
    INVALID_STREAM_IDS,
    LONG_STREAM,
    UNUSUAL_STREAM_IDS,
    EventStoreInputContract,
    _collect,
    _events,
    _ids,
    _read,
    _read_all,
)
from orchestrix.testing._support import (
    WAIT_TIMEOUT,
    ContractEvent,
    OpaqueEvent,
)

__all__ = ["INVALID_STREAM_IDS", "UNUSUAL_STREAM_IDS", "EventStoreContract"]


@pytest.mark.asyncio
class EventStoreContract(EventStoreInputContract):
    """The `EventStore` contract; subclass it and override the `store` fixture.

    The fixture must yield an open, empty store, isolated from every other
    test (``read_all`` sees every stream), and close it afterwards.
    """

    @pytest.fixture
    async def store(self) -> EventStore:
        """Yield an open, empty, isolated `EventStore` (override in a subclass)."""
        msg = (
            f"{type(self).__name__} must override the 'store' fixture to yield an "
            f"open, empty EventStore of the backend under test"
        )
        raise NotImplementedError(msg)

    # --- versions and results -------------------------------------------------

    async def test_missing_stream_has_version_zero_and_no_events(
        self, store: EventStore
    ) -> None:
        """A stream nobody appended to is at version 0 and reads as empty."""
        assert await store.stream_version("missing") == 0
        assert await _read(store, "missing") == []
        assert await _read_all(store) == []

    async def test_first_event_has_version_one(self, store: EventStore) -> None:
        """Versions count events from 1; the result gives version and positions."""
        result = await store.append("s", _events(3))
        assert result == AppendResult(version=3, positions=(1, 2, 3))
        records = await _read(store, "s")
        assert [r.version for r in records] == [1, 2, 3]
        assert [r.position for r in records] == [1, 2, 3]
        assert await store.stream_version("s") == 3

    async def test_append_result_continues_the_stream(self, store: EventStore) -> None:
        """A later append continues both the stream's versions and the positions."""
        await store.append("s", _events(2))
        await store.append("other", _events(1))
        result = await store.append("s", _events(2, start=3))
        assert result.version == 4
        assert result.positions == (4, 5)
        assert result.first_position == 4
        assert result.last_position == 5

    async def test_recorded_fields(self, store: EventStore) -> None:
        """Each `Recorded` carries its place, an aware time and the same event."""
        event = ContractEvent(
            number=7,
            text='h\u00e9llo \U0001f600 "quoted" \\ \'',
            tags=("x", "y"),
            detail={"nested": {"list": [1, 2.5, None, True]}, "empty": {}},
            subject="subject/1",
            correlation_id="corr",
            causation_id="cause",
        )
        await store.append("s", [event])
        (record,) = await _read(store, "s")
        assert record.stream_id == "s"
        assert record.version == 1
        assert record.position == 1
        assert isinstance(record.recorded_at, datetime)
        assert record.recorded_at.tzinfo is not None
        assert record.recorded_at.utcoffset() is not None
        assert record.id == event.id
        assert record.type == "orchestrix.testing.ContractEvent"
        assert record.record.schema_version == ContractEvent.schema_version()
        assert record.event == event
        assert type(record.event) is ContractEvent
        (from_all,) = await _read_all(store)
        assert from_all.event == event
        assert from_all.position == record.position

    # --- expected versions ----------------------------------------------------

    async def test_any_appends_without_a_check(self, store: EventStore) -> None:
        """``ANY`` appends to a new and to an existing stream alike."""
        assert (await store.append("s", _events(1), expected_version=ANY)).version == 1
        assert (await store.append("s", _events(1), expected_version=ANY)).version == 2

    async def test_no_stream(self, store: EventStore) -> None:
        """``NO_STREAM`` creates a stream, and fails once the stream exists."""
        await store.append("s", _events(1), expected_version=NO_STREAM)
        with pytest.raises(ConcurrencyError) as caught:
            await store.append("s", _events(1), expected_version=NO_STREAM)
        assert caught.value.stream_id == "s"
        assert caught.value.expected == NO_STREAM
        assert caught.value.actual == 1
        assert await store.stream_version("s") == 1

    async def test_stream_exists(self, store: EventStore) -> None:
        """``STREAM_EXISTS`` fails on a missing stream, succeeds on an existing one."""
        with pytest.raises(ConcurrencyError) as caught:
            await store.append("s", _events(1), expected_version=STREAM_EXISTS)
        assert caught.value.stream_id == "s"
        assert caught.value.expected == STREAM_EXISTS
        assert caught.value.actual == 0
        assert await store.stream_version("s") == 0
        await store.append("s", _events(1))
        result = await store.append("s", _events(1), expected_version=STREAM_EXISTS)
        assert result.version == 2

    @pytest.mark.parametrize("expected", [1, 3, 4, 10])
    async def test_wrong_expected_version_writes_nothing(
        self, store: EventStore, expected: int
    ) -> None:
        """An int other than the current version raises and stores nothing."""
        await store.append("s", _events(2))
        before = await _read_all(store)
        with pytest.raises(ConcurrencyError) as caught:
            await store.append("s", _events(3, start=3), expected_version=expected)
        assert caught.value.stream_id == "s"
        assert caught.value.expected == expected
        assert caught.value.actual == 2
        assert await store.stream_version("s") == 2
        assert _ids(await _read_all(store)) == _ids(before)

    async def test_right_expected_version(self, store: EventStore) -> None:
        """An int equal to the current version appends."""
        await store.append("s", _events(2))
        result = await store.append("s", _events(1, start=3), expected_version=2)
        assert result.version == 3

    async def test_empty_append(self, store: EventStore) -> None:
        """Appending no events stores nothing but still checks the version."""
        assert await store.append("s", []) == AppendResult(version=0, positions=())
        await store.append("s", _events(2))
        assert await store.append("s", [], expected_version=2) == AppendResult(2, ())
        with pytest.raises(ConcurrencyError):
            await store.append("s", [], expected_version=NO_STREAM)
        assert len(await _read_all(store)) == 2

    # --- atomicity, ids and encoding ------------------------------------------

    async def test_batch_is_atomic_and_consecutive(self, store: EventStore) -> None:
        """A batch gets consecutive versions and positions, in the given order."""
        batch = _events(5)
        result = await store.append("s", batch)
        records = await _read(store, "s")
        assert _ids(records) == [e.id for e in batch]
        assert list(result.positions) == [r.position for r in records]

    async def test_unencodable_event_writes_nothing(self, store: EventStore) -> None:
        """A batch holding an event JSON cannot encode raises and stores nothing."""
        good = ContractEvent(number=1)
        bad = OpaqueEvent(value=object())
        with pytest.raises(SerializationError):
            await store.append("s", [good, bad])
        assert await store.stream_version("s") == 0
        assert await _read_all(store) == []
        assert (await store.append("s", [good])).positions == (1,)

    async def test_retry_returns_the_original_result(self, store: EventStore) -> None:
        """Repeating an identical append stores nothing and returns the first result."""
        await store.append("before", _events(1))
        batch = _events(3)
        first = await store.append("s", batch, expected_version=NO_STREAM)
        assert await store.append("s", batch, expected_version=NO_STREAM) == first
        assert await store.append("s", batch) == first
        assert await store.stream_version("s") == 3
        assert len(await _read_all(store)) == 4

    async def test_retry_after_later_appends(self, store: EventStore) -> None:
        """A retry is recognised even after the stream has grown since."""
        batch = _events(2)
        first = await store.append("s", batch)
        await store.append("s", _events(2, start=3))
        assert await store.append("s", batch, expected_version=0) == first
        assert await store.stream_version("s") == 4

    async def test_id_reused_in_another_stream(self, store: EventStore) -> None:
        """An event id stored in one stream cannot be appended to another."""
        event = ContractEvent(number=1)
        await store.append("s", [event])
        with pytest.raises(DuplicateEventError) as caught:
            await store.append("t", [ContractEvent(number=2), event])
        assert caught.value.event_id == event.id
        assert caught.value.stream_id == "t"
        assert await store.stream_version("t") == 0
        assert len(await _read_all(store)) == 1

    async def test_id_reused_with_new_events(self, store: EventStore) -> None:
        """A stored id batched with new events is no retry: nothing is written."""
        stored = ContractEvent(number=1)
        await store.append("s", [stored])
        with pytest.raises(DuplicateEventError):
            await store.append("s", [stored, ContractEvent(number=2)])
        with pytest.raises(DuplicateEventError):
            await store.append("s", [ContractEvent(number=3), stored])
        assert await store.stream_version("s") == 1
        assert len(await _read_all(store)) == 1

    # --- stream ids -----------------------------------------------------------

    async def test_unusual_stream_ids_are_kept_apart(self, store: EventStore) -> None:
        """Any Unicode stream id is stored verbatim and isolated from the others."""
        appended: dict[str, ContractEvent] = {}
        for stream_id in UNUSUAL_STREAM_IDS:
            event = ContractEvent(number=len(appended), text=stream_id)
            await store.append(stream_id, [event], expected_version=NO_STREAM)
            appended[stream_id] = event
        for stream_id, event in appended.items():
            assert await store.stream_version(stream_id) == 1, stream_id
            records = await _read(store, stream_id)
            assert [r.event for r in records] == [event], stream_id
            assert records[0].stream_id == stream_id
        by_stream = {r.stream_id: r.id for r in await _read_all(store)}
        assert by_stream == {s: e.id for s, e in appended.items()}

    # --- reading --------------------------------------------------------------

    async def test_read_after_version_and_limit(self, store: EventStore) -> None:
        """``after_version`` skips events, ``limit`` bounds how many are yielded."""
        await store.append("s", _events(10))
        assert [r.version for r in await _read(store, "s", after_version=7)] == [
            8,
            9,
            10,
        ]
        assert [r.version for r in await _read(store, "s", limit=2)] == [1, 2]
        assert [
            r.version for r in await _read(store, "s", after_version=3, limit=4)
        ] == [4, 5, 6, 7]
        assert await _read(store, "s", after_version=10) == []
        assert await _read(store, "s", after_version=99) == []
        assert await _read(store, "s", limit=0) == []

    async def test_read_all_after_position_and_limit(self, store: EventStore) -> None:
        """``after_position`` skips events, ``limit`` bounds how many are yielded."""
        for i in range(5):
            await store.append(f"s{i % 2}", _events(2, start=2 * i))
        assert [r.position for r in await _read_all(store, after_position=7)] == [
            8,
            9,
            10,
        ]
        assert [r.position for r in await _read_all(store, limit=3)] == [1, 2, 3]
        positions = [
            r.position for r in await _read_all(store, after_position=2, limit=5)
        ]
        assert positions == [3, 4, 5, 6, 7]
        assert await _read_all(store, after_position=10) == []
        assert await _read_all(store, limit=0) == []

    async def test_read_in_progress_stops_after_close(self, store: EventStore) -> None:
        """A read that outlives ``close`` raises `ResourceClosedError`, never more.

        It may finish the page it holds, but never fetches another one, and
        never ends as if the stream were complete.
        """
        await store.append("s", _events(LONG_STREAM))
        reader = store.read("s")
        first = await anext(reader)
        assert first.version == 1
        await store.close()
        with pytest.raises(ResourceClosedError):
            await _collect(reader)

    async def test_positions_are_gap_free_across_streams(
        self, store: EventStore
    ) -> None:
        """Positions run 1..n in ``read_all`` order; each stream stays in order."""
        appended: list[str] = []
        for i in range(12):
            batch = _events(1 + i % 3, start=i * 10)
            await store.append(f"stream-{i % 4}", batch)
            appended += [e.id for e in batch]
        records = await _read_all(store)
        assert [r.position for r in records] == list(range(1, len(appended) + 1))
        assert _ids(records) == appended
        for i in range(4):
            versions = [r.version for r in records if r.stream_id == f"stream-{i}"]
            assert versions == list(range(1, len(versions) + 1))

    async def test_long_stream_reads_completely(self, store: EventStore) -> None:
        """A stream longer than any page reads in full, in order, by both reads."""
        appended: list[str] = []
        for start in range(0, LONG_STREAM, 250):
            batch = _events(250, start=start)
            await store.append("long", batch)
            appended += [e.id for e in batch]
        records = await _read(store, "long")
        assert [r.version for r in records] == list(range(1, LONG_STREAM + 1))
        assert _ids(records) == appended
        everything = await _read_all(store)
        assert [r.position for r in everything] == list(range(1, LONG_STREAM + 1))
        assert _ids(everything) == appended
        tail = await _read(store, "long", after_version=1_000, limit=1_000)
        assert [r.version for r in tail] == list(range(1_001, LONG_STREAM + 1))

    async def test_iteration_can_stop_early(self, store: EventStore) -> None:
        """Leaving a read early is fine, and the store stays usable afterwards."""
        await store.append("s", _events(LONG_STREAM))
        seen = []
        async for record in store.read("s"):
            seen.append(record.version)
            if len(seen) == 3:
                break
        async for record in store.read_all(after_position=5):
            seen.append(record.position)
            break
        assert seen == [1, 2, 3, 6]
        await store.append("s", _events(1))
        assert await store.stream_version("s") == LONG_STREAM + 1

    async def test_read_while_appending(self, store: EventStore) -> None:
        """A read interleaved with appends yields each event at most once, in order."""
        await store.append("s", _events(5))
        reader = store.read_all()
        seen = [await anext(reader)]
        await store.append("s", _events(5, start=6))
        seen += [record async for record in reader]
        positions = [r.position for r in seen]
        assert positions == sorted(set(positions))
        assert positions[:5] == [1, 2, 3, 4, 5]

    # --- concurrency ----------------------------------------------------------

    async def test_racing_expected_versions(self, store: EventStore) -> None:
        """Tasks racing with expected versions: exactly one wins each version."""
        wins: list[int] = []
        conflicts: list[ConcurrencyError] = []

        async def writer(rounds: int) -> None:
            done = 0
            while done < rounds:
                version = await store.stream_version("race")
                try:
                    result = await store.append(
                        "race", _events(1), expected_version=version
                    )
                except ConcurrencyError as exc:
                    conflicts.append(exc)
                    continue
                wins.append(version)
                assert result.version == version + 1
                done += 1

        async with asyncio.timeout(WAIT_TIMEOUT * 4):
            await asyncio.gather(*(writer(3) for _ in range(20)))
        # Each expected version was won exactly once: no lost update.
        assert sorted(wins) == list(range(60))
        assert all(exc.actual > exc.expected for exc in conflicts)  # type: ignore[operator]  # expected is an int here
        records = await _read(store, "race")
        assert [r.version for r in records] == list(range(1, 61))
        assert [r.position for r in records] == list(range(1, 61))
        assert len(set(_ids(records))) == 60

    async def test_racing_creators(self, store: EventStore) -> None:
        """Of many tasks creating one stream with ``NO_STREAM``, exactly one wins."""
        batches = [_events(2, text=str(i)) for i in range(20)]
        results = await asyncio.gather(
            *(store.append("new", b, expected_version=NO_STREAM) for b in batches),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, AppendResult)]
        assert len(winners) == 1
        assert winners[0].version == 2
        losers = [r for r in results if not isinstance(r, AppendResult)]
        assert all(isinstance(r, ConcurrencyError) for r in losers), losers
        assert all(r.actual == 2 for r in losers if isinstance(r, ConcurrencyError))
        assert len(await _read_all(store)) == 2

    async def test_concurrent_any_appends_all_succeed(self, store: EventStore) -> None:
        """Concurrent ``ANY`` appends to one stream all land, each batch contiguous."""
        batches = [_events(2, text=str(i)) for i in range(40)]
        results = await asyncio.gather(*(store.append("s", b) for b in batches))
        records = await _read(store, "s")
        assert [r.version for r in records] == list(range(1, 81))
        assert [r.position for r in records] == list(range(1, 81))
        by_id = {r.id: r for r in records}
        for batch, result in zip(batches, results, strict=True):
            first, second = (by_id[e.id] for e in batch)
            assert second.version == first.version + 1
            assert result.version == second.version
            assert result.positions == (first.position, second.position)

    async def test_concurrent_writers_keep_read_all_ordered(
        self, store: EventStore
    ) -> None:
        """Writers to many streams at once leave positions gap-free and ordered."""

        async def writer(stream_id: str) -> None:
            for i in range(10):
                await store.append(stream_id, _events(1, start=i), expected_version=i)

        await asyncio.gather(*(writer(f"w{n}") for n in range(10)))
        records = await _read_all(store)
        assert [r.position for r in records] == list(range(1, 101))
        for n in range(10):
            versions = [r.version for r in records if r.stream_id == f"w{n}"]
            assert versions == list(range(1, 11))

    async def test_tailing_reader_sees_every_event_once(
        self, store: EventStore
    ) -> None:
        """A reader tailing ``read_all`` while others write sees each event once."""
        total = 200
        written: list[str] = []
        seen: list[Recorded] = []

        async def writer(n: int) -> None:
            for i in range(total // 10):
                batch = _events(1, start=i)
                await store.append(f"tail-{n}", batch)
                written.extend(e.id for e in batch)

        async def reader() -> None:
            position = 0
            while len(seen) < total:
                async for record in store.read_all(after_position=position):
                    seen.append(record)
                    position = record.position
                await asyncio.sleep(0)

        async with asyncio.timeout(WAIT_TIMEOUT):
            await asyncio.gather(reader(), *(writer(n) for n in range(10)))
        assert [r.position for r in seen] == list(range(1, total + 1))
        assert sorted(_ids(seen)) == sorted(written)

    # --- closing --------------------------------------------------------------

    async def test_close_is_idempotent_and_final(self, store: EventStore) -> None:
        """``close`` can be repeated; every other method then raises."""
        await store.append("s", _events(1))
        await store.close()
        await store.close()
        with pytest.raises(ResourceClosedError):
            await store.append("s", _events(1))
        with pytest.raises(ResourceClosedError):
            await _read(store, "s")
        with pytest.raises(ResourceClosedError):
            await _read_all(store)
        with pytest.raises(ResourceClosedError):
            await store.stream_version("s")
