"""Waits shared by subscriptions and projection runners; no compatibility promise."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from orchestrix.protocols import LiveEventStore

if TYPE_CHECKING:
    from orchestrix.protocols import EventStore

__all__ = ["sleep_unless", "wait_for_new"]


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
