"""Workload sizes: the defaults of a full run and the tiny ``--smoke`` ones."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["DEFAULT", "SMOKE", "Sizes"]


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each workload does (every field is a ``--flag``).

    Attributes:
        w1_streams: W1: number of streams.
        w1_events: W1: events appended to each stream, one per append.
        w2_events: W2: events appended to the one stream.
        w2_batch: W2: events per append.
        w3_events: W3/W3s: length of the rehydrated stream.
        w3_snapshot_at: W3s: version of the snapshot.
        w4_events: W4: events in the global log.
        w5_writers: W5: concurrent writers.
        w5_seconds: W5: how long they write.
        b1_messages: B1: messages published.
        b2_messages: B2: round trips timed.
        c1_iterations: C1: encode+decode pairs timed.
        c2_iterations: C2: encode+decode pairs timed.
    """

    w1_streams: int = 1_000
    w1_events: int = 10
    w2_events: int = 10_000
    w2_batch: int = 100
    w3_events: int = 10_000
    w3_snapshot_at: int = 9_990
    w4_events: int = 20_000
    w5_writers: int = 8
    w5_seconds: float = 2.0
    b1_messages: int = 5_000
    b2_messages: int = 300
    c1_iterations: int = 50_000
    c2_iterations: int = 20_000

    def with_overrides(self, overrides: dict[str, Any]) -> Sizes:
        """Return a copy with the non-None values of *overrides* applied."""
        names = {f.name for f in fields(self)}
        given = {k: v for k, v in overrides.items() if k in names and v is not None}
        result = replace(self, **given)
        if not 0 < result.w3_snapshot_at <= result.w3_events:
            msg = (
                f"w3_snapshot_at must be between 1 and w3_events "
                f"({result.w3_events}), got {result.w3_snapshot_at}"
            )
            raise ValueError(msg)
        if result.w2_events % result.w2_batch:
            msg = (
                f"w2_events ({result.w2_events}) must be a multiple of w2_batch "
                f"({result.w2_batch})"
            )
            raise ValueError(msg)
        return result


DEFAULT = Sizes()
SMOKE = Sizes(
    w1_streams=10,
    w1_events=3,
    w2_events=200,
    w2_batch=20,
    w3_events=120,
    w3_snapshot_at=110,
    w4_events=150,
    w5_writers=3,
    w5_seconds=0.1,
    b1_messages=30,
    b2_messages=10,
    c1_iterations=200,
    c2_iterations=50,
)
