"""The event-store workloads W1-W5: preparation (untimed), run (timed), checks.

Each workload function takes an opened contender and the sizes, and returns a
`Result`. Only the code between the two ``perf_counter`` calls is timed. A
workload whose outcome is wrong (a missing event, a duplicate, a wrong
balance) raises `VerificationError`, so a fast but broken contender never
produces a number.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmarks.model import LedgerState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from benchmarks.contenders.base import StoreContender
    from benchmarks.sizes import Sizes

__all__ = [
    "STORE_WORKLOADS",
    "Result",
    "VerificationError",
    "Workload",
    "amount_of",
]


class VerificationError(AssertionError):
    """A contender's outcome does not match the work it was given."""


@dataclass(frozen=True, slots=True)
class Result:
    """One timed measurement.

    Attributes:
        value: The figure, in the workload's unit.
        details: Extra facts (counts, conflicts, percentiles).
    """

    value: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Workload:
    """A named workload with its unit.

    Attributes:
        name: Short id (``W1`` ...).
        title: What it does, in a few words.
        unit: Unit of `Result.value`.
        run: Prepares, times and checks one measurement.
    """

    name: str
    title: str
    unit: str
    run: Callable[[StoreContender, Sizes], Awaitable[Result]]


def amount_of(index: int) -> int:
    """Return the amount of the deposit at *index*: small, varied, never zero."""
    return index % 7 + 1


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise VerificationError(message)


async def _fill(c: StoreContender, stream: str, count: int, start: int = 0) -> None:
    """Append deposits *start* .. *start + count* - 1 in batches (untimed)."""
    done = 0
    while done < count:
        n = min(1_000, count - done)
        amounts = [amount_of(start + done + i) for i in range(n)]
        await c.append(stream, amounts, start + done)
        done += n


def _timer() -> float:
    gc.collect()
    return time.perf_counter()


async def w1_single_appends(c: StoreContender, s: Sizes) -> Result:
    """W1: one event per append, round-robin over many streams."""
    streams = [f"ledger-{i}" for i in range(s.w1_streams)]
    append = c.append
    start = _timer()
    for version in range(s.w1_events):
        amounts = (amount_of(version),)
        for stream in streams:
            await append(stream, amounts, version)
    elapsed = time.perf_counter() - start
    total = s.w1_streams * s.w1_events
    outcome = await c.read_all()
    _check(outcome.count == total, f"W1 stored {outcome.count} events, not {total}")
    for stream in streams[:: max(1, len(streams) // 10)]:
        version = await c.stream_version(stream)
        _check(version == s.w1_events, f"W1 {stream} at {version}")
    return Result(total / elapsed, {"events": total, "seconds": elapsed})


async def w2_batch_appends(c: StoreContender, s: Sizes) -> Result:
    """W2: one stream, batches with a version check."""
    stream = "ledger-batch"
    batches = [
        [amount_of(i) for i in range(b, b + s.w2_batch)]
        for b in range(0, s.w2_events, s.w2_batch)
    ]
    append = c.append
    start = _timer()
    version = 0
    for batch in batches:
        await append(stream, batch, version)
        version += len(batch)
    elapsed = time.perf_counter() - start
    stored = await c.stream_version(stream)
    _check(stored == s.w2_events, f"W2 stream at {stored}, not {s.w2_events}")
    return Result(s.w2_events / elapsed, {"events": s.w2_events, "seconds": elapsed})


def _expected_state(count: int) -> LedgerState:
    return LedgerState(sum(amount_of(i) for i in range(count)), count)


async def _rehydrate(c: StoreContender, stream: str, events: int) -> Result:
    start = _timer()
    state = await c.rehydrate(stream)
    elapsed = time.perf_counter() - start
    expected = _expected_state(events)
    _check(state == expected, f"rehydrated {state}, expected {expected}")
    return Result(elapsed * 1_000, {"events": events})


async def w3_rehydrate(c: StoreContender, s: Sizes) -> Result:
    """W3: load a long aggregate through the repository and fold it."""
    stream = "ledger-long"
    await _fill(c, stream, s.w3_events)
    return await _rehydrate(c, stream, s.w3_events)


async def w3s_rehydrate_snapshot(c: StoreContender, s: Sizes) -> Result:
    """W3s: the same load, from a snapshot near the end."""
    stream = "ledger-snap"
    await _fill(c, stream, s.w3_snapshot_at)
    await c.snapshot(stream)
    await _fill(c, stream, s.w3_events - s.w3_snapshot_at, start=s.w3_snapshot_at)
    return await _rehydrate(c, stream, s.w3_events)


async def w4_read_all(c: StoreContender, s: Sizes) -> Result:
    """W4: read and decode the global log from position 0."""
    per_stream = 100
    total = 0
    index = 0
    while total < s.w4_events:
        n = min(per_stream, s.w4_events - total)
        await c.append(f"ledger-{index}", [amount_of(total + i) for i in range(n)], 0)
        total += n
        index += 1
    start = _timer()
    outcome = await c.read_all()
    elapsed = time.perf_counter() - start
    _check(outcome.count == total, f"W4 read {outcome.count} events, not {total}")
    expected = sum(amount_of(i) for i in range(total))
    _check(outcome.amount_sum == expected, "W4 decoded amounts do not add up")
    _check(outcome.ordered, "W4 positions were not strictly increasing")
    _check(
        outcome.gap_free or not c.gap_free,
        "W4 skipped a global position the contender promises to fill",
    )
    return Result(total / elapsed, {"events": total, "seconds": elapsed})


async def w5_contention(c: StoreContender, s: Sizes) -> Result:
    """W5: concurrent optimistic writers on one stream."""
    stream = "ledger-hot"
    gc.collect()
    outcome = await c.contend(stream, s.w5_writers, s.w5_seconds)
    rows = await c.stream_versions(stream)
    versions = [v for v, _ in rows]
    _check(
        versions == list(range(1, len(rows) + 1)),
        "W5 versions are not contiguous from 1",
    )
    _check(len({i for _, i in rows}) == len(rows), "W5 stored an event id twice")
    _check(
        len(rows) == outcome.successes,
        f"W5 stored {len(rows)} events but {outcome.successes} appends succeeded",
    )
    return Result(
        outcome.successes / outcome.seconds,
        {
            "successes": outcome.successes,
            "conflicts": outcome.conflicts,
            "seconds": outcome.seconds,
        },
    )


STORE_WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("W1", "single appends", "events/s", w1_single_appends),
        Workload("W2", "batch appends", "events/s", w2_batch_appends),
        Workload("W3", "rehydrate", "ms", w3_rehydrate),
        Workload("W3s", "rehydrate from snapshot", "ms", w3s_rehydrate_snapshot),
        Workload("W4", "read all", "events/s", w4_read_all),
        Workload("W5", "contention", "appends/s", w5_contention),
    )
}
