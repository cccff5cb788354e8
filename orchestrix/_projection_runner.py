"""Helpers of `orchestrix.projections` that are not API: the head probe and waits."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from orchestrix.protocols import LiveEventStore

if TYPE_CHECKING:
    from orchestrix.protocols import EventStore

__all__ = ["event_at", "find_head", "sleep_unless", "wait_for_new"]


async def event_at(store: EventStore, position: int) -> bool:
    """Return whether the log holds an event at *position* (positions are gap-free)."""
    async for _ in store.read_all(after_position=position - 1, limit=1):
        return True
    return False


async def find_head(store: EventStore, known: int) -> int:
    """Return the log's last position, knowing that it is at least *known*.

    Positions are gap-free (ADR 0003), so the head is found by galloping then
    bisecting with one-event reads: about 2 * log2(lag) reads, none of which
    decodes a stream or reads more than one record.
    """
    low = known  # the head is at least this (0: possibly empty)
    step = 1
    while await event_at(store, low + step):
        low += step
        step *= 2
    high = low + step  # no event there
    while high - low > 1:
        middle = (low + high) // 2
        if await event_at(store, middle):
            low = middle
        else:
            high = middle
    return low


async def wait_for_new(
    store: EventStore, after_position: int, poll: float, stop: asyncio.Event
) -> None:
    """Wait until an event after *after_position* may exist, *stop* is set, or *poll* s.

    A `LiveEventStore` wakes the wait as soon as an append commits; other stores
    are polled. Errors of the store's wait are raised.
    """
    waits: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
    if isinstance(store, LiveEventStore):
        waits.append(asyncio.ensure_future(store.wait_for_append(after_position)))
    try:
        done, _ = await asyncio.wait(
            waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in waits:
            task.cancel()
        # Collect the cancelled waits, so none is left pending or unretrieved.
        await asyncio.gather(*waits, return_exceptions=True)
    for task in done:
        if not task.cancelled():
            task.result()  # the store's error, if waiting failed


async def sleep_unless(stop: asyncio.Event, delay: float) -> None:
    """Sleep *delay* seconds, or less if *stop* is set meanwhile."""
    if stop.is_set():
        return
    try:
        async with asyncio.timeout(delay):
            await stop.wait()
    except TimeoutError:
        return
