"""`SubscriptionContract`: catch-up subscriptions on any `EventStore`."""

# Contract suites are tests shipped in the package: they assert, and compare
# with literal counts.
# ruff: noqa: S101, PLR2004

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from orchestrix.errors import InvalidArgumentError
from orchestrix.messages import Event
from orchestrix.protocols import LiveEventStore
from orchestrix.subscriptions import Subscription, subscribe
from orchestrix.testing._support import (
    WAIT_TIMEOUT,
    ContractEvent,
    OtherContractEvent,
)

if TYPE_CHECKING:
    from orchestrix.protocols import EventStore
    from orchestrix.records import Recorded

__all__ = ["SubscriptionContract"]

#: How often the suite's subscriptions look for new events on stores that do
#: not wake them: short, so the suite stays quick on every backend.
POLL: float = 0.02


async def _take(subscription: Subscription, count: int) -> list[Recorded]:
    """Return the next *count* events, failing after `WAIT_TIMEOUT`."""
    taken: list[Recorded] = []
    async with asyncio.timeout(WAIT_TIMEOUT):
        async for recorded in subscription:
            taken.append(recorded)
            if len(taken) == count:
                break
    return taken


@pytest.mark.asyncio
class SubscriptionContract:
    """Subscriptions on a store; override the `store` fixture.

    The fixture must yield an open, empty store, isolated from every other
    test (subscriptions read the whole log), and close it afterwards.
    """

    @pytest.fixture
    async def store(self) -> EventStore:
        """Yield an open, empty, isolated `EventStore` (override in a subclass)."""
        msg = (
            f"{type(self).__name__} must override the 'store' fixture to yield an "
            f"open, empty EventStore of the backend under test"
        )
        raise NotImplementedError(msg)

    async def test_catches_up_then_follows(self, store: EventStore) -> None:
        """Stored events come first, in position order, then new ones as appended."""
        stored = [ContractEvent(number=i) for i in range(5)]
        await store.append("a", stored[:3])
        await store.append("b", stored[3:])
        async with subscribe(store, poll_interval=POLL) as subscription:
            first = await _take(subscription, 5)
            assert [r.id for r in first] == [e.id for e in stored]
            assert [r.position for r in first] == [1, 2, 3, 4, 5]
            newer = ContractEvent(number=9)

            async def append_later() -> None:
                await asyncio.sleep(0.05)
                await store.append("a", [newer])

            task = asyncio.create_task(append_later())
            (live,) = await _take(subscription, 1)
            await task
            assert (live.id, live.position, live.stream_id) == (newer.id, 6, "a")
            assert subscription.position == 6

    async def test_starting_at_the_head_sees_only_new_events(
        self, store: EventStore
    ) -> None:
        """A subscription from the current head yields only what comes after."""
        result = await store.append("s", [ContractEvent(number=i) for i in range(3)])
        head = result.positions[-1]
        async with subscribe(store, after_position=head, poll_interval=POLL) as sub:
            newer = ContractEvent(number=3)
            task = asyncio.create_task(store.append("s", [newer]))
            (recorded,) = await _take(sub, 1)
            await task
            assert recorded.id == newer.id

    async def test_filters_by_class_and_base_class(self, store: EventStore) -> None:
        """Only events of the given classes (or subclasses) are yielded."""
        mixed = [
            ContractEvent(number=1),
            OtherContractEvent(number=2),
            ContractEvent(number=3),
            OtherContractEvent(number=4),
        ]
        await store.append("s", mixed)
        others = subscribe(store, types=OtherContractEvent, poll_interval=POLL)
        assert [r.id for r in await _take(others, 2)] == [mixed[1].id, mixed[3].id]
        assert others.position == 4
        everything = subscribe(store, types=Event, poll_interval=POLL)
        assert len(await _take(everything, 4)) == 4
        both = subscribe(
            store, types=[ContractEvent, OtherContractEvent], poll_interval=POLL
        )
        assert len(await _take(both, 4)) == 4
        for subscription in (others, everything, both):
            await subscription.close()

    async def test_filters_by_stream_prefix(self, store: EventStore) -> None:
        """Only events of streams whose id starts with the prefix are yielded."""
        await store.append("order-1", [ContractEvent(number=1)])
        await store.append("invoice-1", [ContractEvent(number=2)])
        await store.append("order-2", [ContractEvent(number=3)])
        async with subscribe(
            store, stream_prefix="order-", poll_interval=POLL
        ) as orders:
            taken = await _take(orders, 2)
        assert [r.stream_id for r in taken] == ["order-1", "order-2"]

    async def test_position_skips_what_the_filters_leave_out(
        self, store: EventStore
    ) -> None:
        """A subscription resumed from `position` never reads left-out events again."""
        await store.append("s", [ContractEvent(number=1), OtherContractEvent(number=2)])
        await store.append("s", [OtherContractEvent(number=3)])
        first = subscribe(store, types=ContractEvent, poll_interval=POLL)
        await _take(first, 1)
        kept = ContractEvent(number=4)
        await store.append("s", [kept])
        assert [r.id for r in await _take(first, 1)] == [kept.id]
        assert first.position == 4
        await first.close()
        resumed = subscribe(
            store,
            after_position=first.position,
            types=ContractEvent,
            poll_interval=POLL,
        )
        last = ContractEvent(number=5)
        await store.append("s", [OtherContractEvent(number=6), last])
        assert [r.id for r in await _take(resumed, 1)] == [last.id]
        await resumed.close()

    async def test_concurrent_writers_never_skip_or_repeat(
        self, store: EventStore
    ) -> None:
        """Followed while many writers append, the log is seen whole and once."""
        writers, batches = 8, 10
        total = writers * batches * 2

        async def write(writer: int) -> None:
            for batch in range(batches):
                events = [ContractEvent(number=batch * 2 + i) for i in range(2)]
                await store.append(f"writer-{writer}", events)

        async with subscribe(store, poll_interval=POLL, batch_size=7) as subscription:
            tasks = [asyncio.create_task(write(w)) for w in range(writers)]
            seen = await _take(subscription, total)
            await asyncio.gather(*tasks)
        stored = [r async for r in store.read_all()]
        assert [r.position for r in seen] == list(range(1, total + 1))
        assert [r.id for r in seen] == [r.id for r in stored]

    async def test_without_follow_it_stops_at_the_head(self, store: EventStore) -> None:
        """With ``follow=False`` the iteration ends once every stored event came."""
        await store.append("s", [ContractEvent(number=i) for i in range(3)])
        subscription = subscribe(store, follow=False, batch_size=2)
        async with asyncio.timeout(WAIT_TIMEOUT):
            seen = [recorded async for recorded in subscription]
        assert [r.position for r in seen] == [1, 2, 3]
        assert subscription.caught_up
        assert subscription.position == 3

    async def test_close_ends_a_waiting_iteration(self, store: EventStore) -> None:
        """Closing a subscription ends its iteration, even one waiting for events."""
        subscription = subscribe(store, poll_interval=60)

        async def drain() -> list[Recorded]:
            return [recorded async for recorded in subscription]

        task = asyncio.create_task(drain())
        await asyncio.sleep(0.05)
        await subscription.close()
        async with asyncio.timeout(WAIT_TIMEOUT):
            assert await task == []
        assert "closed" in repr(subscription)

    async def test_live_stores_wake_subscribers(self, store: EventStore) -> None:
        """A `LiveEventStore` wakes a subscription at once, without polling."""
        if not isinstance(store, LiveEventStore):
            pytest.skip(f"{type(store).__name__} is not a LiveEventStore")
        async with subscribe(store, poll_interval=3_600) as subscription:
            event = ContractEvent(number=1)

            async def append_later() -> None:
                await asyncio.sleep(0.05)
                await store.append("s", [event])

            task = asyncio.create_task(append_later())
            (recorded,) = await _take(subscription, 1)
            await task
            assert recorded.id == event.id

    @pytest.mark.parametrize(
        "arguments",
        [
            pytest.param({"after_position": -1}, id="negative-position"),
            pytest.param({"after_position": 1.5}, id="float-position"),
            pytest.param({"types": str}, id="type-not-an-event"),
            pytest.param({"types": []}, id="no-types"),
            pytest.param({"types": "ContractEvent"}, id="type-as-text"),
            pytest.param({"stream_prefix": ""}, id="empty-prefix"),
            pytest.param({"batch_size": 0}, id="zero-batch"),
            pytest.param({"poll_interval": 0}, id="zero-poll"),
            pytest.param({"poll_interval": float("nan")}, id="nan-poll"),
            pytest.param({"follow": "no"}, id="follow-not-a-bool"),
        ],
    )
    async def test_bad_arguments(
        self, store: EventStore, arguments: dict[str, Any]
    ) -> None:
        """A bad argument raises `InvalidArgumentError` when subscribing."""
        with pytest.raises(InvalidArgumentError):
            subscribe(store, **arguments)
