"""Helpers of `orchestrix.projections` that are not API: the head probe."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrix.protocols import EventStore

__all__ = ["event_at", "find_head"]


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
