"""`EventStoreInputContract`: what every `EventStore` does with bad or unusual input.

Part of `EventStoreContract` (its base class): argument checks, numbers
beyond 64 bits, event lists that are not plain lists, and ids no backend can
keep. Every backend, the in-memory one included, must refuse the same input
with the same error, so a unit test on the in-memory double fails where a
real store would.
"""

# Contract suites are tests shipped in the package: they assert, and compare
# with literal counts.
# ruff: noqa: S101, PLR2004

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrix.errors import ConcurrencyError, InvalidArgumentError
from orchestrix.protocols import MAX_STREAM_ID_LENGTH, EventStore
from orchestrix.testing._support import ContractEvent, OtherContractEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from orchestrix.records import Recorded

__all__ = [
    "INVALID_STREAM_IDS",
    "LONG_STREAM",
    "UNUSUAL_STREAM_IDS",
    "EventStoreInputContract",
]

#: Stream ids every backend must store verbatim and keep apart from each other.
UNUSUAL_STREAM_IDS = (
    "a",
    "a:",
    "a:b",
    "A",
    "a b",
    " a",
    "a ",
    "a*",
    "a?",
    "a%",
    "a_",
    "a[b]",
    "{a}",
    "{a}:b",
    "a'b",
    'a"b',
    "a`b",
    "a\\b",
    "a/b",
    "a;b",
    "a'; DROP TABLE events; --",
    "1",
    "01",
    "-1",
    "a\tb",
    "a\nb",
    "stream-\U0001f600",
    "\u00e9",
    "e\u0301",
    "\u4e8b\u4ef6",
    "\u202etxt",
    "x" * MAX_STREAM_ID_LENGTH,
    "\U0001f600" * MAX_STREAM_ID_LENGTH,
)
INVALID_STREAM_IDS = (
    pytest.param("", id="empty"),
    pytest.param("x" * (MAX_STREAM_ID_LENGTH + 1), id="too-long"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param(42, id="not-a-str"),
)
#: More events than any backend's page size, so paging is exercised.
LONG_STREAM = 1_500


def _events(count: int, *, start: int = 1, text: str = "") -> list[ContractEvent]:
    return [ContractEvent(number=start + i, text=text) for i in range(count)]


async def _collect(records: AsyncIterator[Recorded]) -> list[Recorded]:
    return [record async for record in records]


async def _read(store: EventStore, stream_id: str, **kwargs: Any) -> list[Recorded]:
    return await _collect(store.read(stream_id, **kwargs))


async def _read_all(store: EventStore, **kwargs: Any) -> list[Recorded]:
    return await _collect(store.read_all(**kwargs))


def _ids(records: Sequence[Recorded]) -> list[str]:
    return [record.id for record in records]


@pytest.mark.asyncio
class EventStoreInputContract:
    """The `EventStore` contract on bad and unusual input; see `EventStoreContract`."""

    @pytest.mark.parametrize(
        "expected",
        [
            pytest.param(-2, id="below-stream-exists"),
            pytest.param(True, id="bool"),
            pytest.param("1", id="str"),
            pytest.param(1.0, id="float"),
        ],
    )
    async def test_invalid_expected_version(
        self, store: EventStore, expected: Any
    ) -> None:
        """An expected version that is no valid value raises `InvalidArgumentError`."""
        with pytest.raises(InvalidArgumentError):
            await store.append("s", _events(1), expected_version=expected)
        assert await store.stream_version("s") == 0

    async def test_non_event_is_rejected(self, store: EventStore) -> None:
        """Only `Event` instances can be stored."""
        with pytest.raises(InvalidArgumentError):
            await store.append("s", [ContractEvent(number=1), "not an event"])  # type: ignore[list-item]  # the wrong type is the point
        assert await store.stream_version("s") == 0

    @pytest.mark.parametrize(
        "event_id",
        [
            pytest.param("", id="empty"),
            pytest.param("a\x00b", id="nul"),
            pytest.param("\udc00", id="lone-surrogate"),
        ],
    )
    async def test_event_ids_every_backend_can_keep(
        self, store: EventStore, event_id: str
    ) -> None:
        """An event id that some backend could not store is refused by all."""
        with pytest.raises(InvalidArgumentError):
            await store.append("s", [ContractEvent(number=1, id=event_id)])
        assert await store.stream_version("s") == 0

    async def test_same_id_twice_in_one_batch(self, store: EventStore) -> None:
        """A batch that repeats an event id is rejected before anything is stored."""
        event = ContractEvent(number=1)
        with pytest.raises(InvalidArgumentError):
            await store.append("s", [event, event])
        assert await store.stream_version("s") == 0

    @pytest.mark.parametrize("stream_id", INVALID_STREAM_IDS)
    async def test_invalid_stream_id(self, store: EventStore, stream_id: Any) -> None:
        """An empty, too long, NUL-holding or non-str stream id is rejected."""
        with pytest.raises(InvalidArgumentError):
            await store.append(stream_id, _events(1))
        with pytest.raises(InvalidArgumentError):
            await _read(store, stream_id)
        with pytest.raises(InvalidArgumentError):
            await store.stream_version(stream_id)
        assert await _read_all(store) == []

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"after_version": -1}, id="negative-after-version"),
            pytest.param({"limit": -1}, id="negative-limit"),
        ],
    )
    async def test_read_rejects_bad_arguments(
        self, store: EventStore, kwargs: dict[str, int]
    ) -> None:
        """A negative version or limit raises `InvalidArgumentError`."""
        with pytest.raises(InvalidArgumentError):
            await _read(store, "s", **kwargs)

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"after_position": -1}, id="negative-after-position"),
            pytest.param({"limit": -1}, id="negative-limit"),
        ],
    )
    async def test_read_all_rejects_bad_arguments(
        self, store: EventStore, kwargs: dict[str, int]
    ) -> None:
        """A negative position or limit raises `InvalidArgumentError`."""
        with pytest.raises(InvalidArgumentError):
            await _read_all(store, **kwargs)

    async def test_read_arguments_are_checked_when_called(
        self, store: EventStore
    ) -> None:
        """``read`` and ``read_all`` reject bad arguments before iteration starts."""
        with pytest.raises(InvalidArgumentError):
            store.read("")
        with pytest.raises(InvalidArgumentError):
            store.read("s", after_version=-1)
        with pytest.raises(InvalidArgumentError):
            store.read_all(limit=-1)

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param(True, id="bool"),
            pytest.param(1.0, id="float"),
            pytest.param("1", id="str"),
            pytest.param(None, id="none"),
        ],
    )
    async def test_read_rejects_values_of_the_wrong_type(
        self, store: EventStore, bad: Any
    ) -> None:
        """Versions, positions and limits must be ints (None means no limit)."""
        if bad is not None:
            with pytest.raises(InvalidArgumentError):
                store.read("s", limit=bad)
            with pytest.raises(InvalidArgumentError):
                store.read_all(limit=bad)
        with pytest.raises(InvalidArgumentError):
            store.read("s", after_version=bad)
        with pytest.raises(InvalidArgumentError):
            store.read_all(after_position=bad)

    async def test_numbers_beyond_64_bits(self, store: EventStore) -> None:
        """Huge versions, positions and limits mean what they say on every backend.

        A read after a point no event reaches yields nothing, a huge limit
        reads everything, and an expected version no stream can reach is a
        conflict, never a driver overflow.
        """
        await store.append("s", _events(2))
        for huge in (2**63 - 1, 2**63, 2**64):
            assert await _read(store, "s", after_version=huge) == []
            assert await _read_all(store, after_position=huge) == []
            assert len(await _read(store, "s", limit=huge)) == 2
            assert len(await _read_all(store, limit=huge)) == 2
            with pytest.raises(ConcurrencyError) as caught:
                await store.append("s", _events(1), expected_version=huge)
            assert (caught.value.expected, caught.value.actual) == (huge, 2)
        assert await store.stream_version("s") == 2

    async def test_an_iterator_of_events_is_never_half_consumed(
        self, store: EventStore
    ) -> None:
        """Given a generator, an append stores every event or raises; never nothing.

        `EventStore.append` takes a sequence; a backend given a one-shot
        iterator must either consume it once and store it all (the built-in
        backends do), or reject it with `InvalidArgumentError`, but never
        store nothing and report success.
        """
        batch = _events(3)
        generator = (event for event in batch)
        try:
            result = await store.append("s", generator)  # type: ignore[arg-type]  # a non-sequence is the point
        except InvalidArgumentError:
            assert await store.stream_version("s") == 0
        else:
            assert result.version == 3
            assert _ids(await _read(store, "s")) == [e.id for e in batch]

    @pytest.mark.parametrize(
        "events",
        [
            pytest.param(None, id="none"),
            pytest.param(ContractEvent(number=1), id="single-event"),
            pytest.param("events", id="str"),
            pytest.param(42, id="int"),
            pytest.param(
                {OtherContractEvent(number=1), OtherContractEvent(number=2)},
                id="unordered-set",
            ),
        ],
    )
    async def test_events_that_are_no_iterable_of_events(
        self, store: EventStore, events: Any
    ) -> None:
        """Anything but an ordered iterable of events raises `InvalidArgumentError`."""
        with pytest.raises(InvalidArgumentError):
            await store.append("s", events)
        assert await store.stream_version("s") == 0
