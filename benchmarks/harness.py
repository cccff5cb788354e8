"""The runner: rotate contenders, repeat, and summarise medians and ratios.

A *group* is one workload on one backend with its contenders (orchestrix, the
raw driver, ``eventsourcing``...). Every repetition runs every group once, and
the order of the contenders inside a group rotates by one place per
repetition, so no contender always runs first (cold caches) or last (a
warmed-up or fragmented server). Each measurement gets a fresh namespace.
Ratios are computed per repetition, between measurements taken back to back,
so slow drifts of a shared machine cancel out; their medians and ranges are
reported.
"""

from __future__ import annotations

import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmarks.settings import Unavailable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from benchmarks.registry import Entry
    from benchmarks.workloads import Result

__all__ = ["Group", "Sample", "Stats", "run_groups", "summarise"]


@dataclass(frozen=True, slots=True)
class Group:
    """One workload on one backend, and how to measure one contender on it.

    Attributes:
        workload: Workload id (``W1`` ...).
        backend: Backend name.
        entries: The contenders, in their order of repetition 0.
        measure: Runs one measurement; returns metric name -> result (most
            workloads have one metric, named like the workload).
    """

    workload: str
    backend: str
    entries: tuple[Entry, ...]
    measure: Callable[[Entry], Awaitable[dict[str, Result]]]


@dataclass(slots=True)
class Sample:
    """One measurement of one metric, or the error that prevented it."""

    metric: str
    backend: str
    library: str
    repetition: int
    slot: int
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    """Median and range of a list of values."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        """Return the statistics of *values* (at least one)."""
        return cls(statistics.median(values), min(values), max(values), len(values))

    def as_dict(self) -> dict[str, float]:
        """Return a JSON-friendly form."""
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


async def run_groups(
    groups: list[Group], repetitions: int, log: Callable[[str], None]
) -> list[Sample]:
    """Run every group *repetitions* times, rotating contenders; return the samples."""
    samples: list[Sample] = []
    unavailable: dict[tuple[str, str], str] = {}
    for rep in range(repetitions):
        started = time.perf_counter()
        for group in groups:
            entries = [
                e for e in group.entries if (e.library, e.backend) not in unavailable
            ]
            if not entries:
                continue
            shift = rep % len(entries)
            for slot, entry in enumerate(entries[shift:] + entries[:shift]):
                label = (
                    f"rep {rep + 1} {group.workload:>4} {entry.backend:<8} "
                    f"{entry.library:<14}"
                )
                try:
                    results = await group.measure(entry)
                except Unavailable as exc:
                    unavailable[entry.library, entry.backend] = str(exc)
                    log(f"{label} unavailable: {exc}")
                    samples.append(
                        Sample(
                            group.workload,
                            entry.backend,
                            entry.library,
                            rep,
                            slot,
                            None,
                            error=f"unavailable: {exc}",
                        )
                    )
                    continue
                except Exception as exc:
                    log(f"{label} FAILED: {exc!r}")
                    samples.append(
                        Sample(
                            group.workload,
                            entry.backend,
                            entry.library,
                            rep,
                            slot,
                            None,
                            {"traceback": traceback.format_exc(limit=6)},
                            error=repr(exc),
                        )
                    )
                    continue
                for metric, result in results.items():
                    log(f"{label} {metric:<7} {result.value:14,.3f}")
                    samples.append(
                        Sample(
                            metric,
                            entry.backend,
                            entry.library,
                            rep,
                            slot,
                            result.value,
                            result.details,
                        )
                    )
        log(f"repetition {rep + 1} took {time.perf_counter() - started:.1f} s")
    return samples


def summarise(samples: list[Sample]) -> dict[str, Any]:
    """Return per-contender statistics and per-repetition ratios.

    The result maps ``"figures"`` to rows (metric, backend, library, stats)
    and ``"ratios"`` to rows (metric, backend, library, versus, stats of
    library / versus computed per repetition), for orchestrix against every
    other contender and for eventsourcing against the raw drivers.
    """
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    errors: dict[tuple[str, str, str], list[str]] = {}
    for s in samples:
        key = (s.metric, s.backend, s.library)
        if s.value is None:
            errors.setdefault(key, []).append(s.error or "?")
        else:
            values.setdefault(key, {})[s.repetition] = s.value
    figures = [
        {
            "metric": m,
            "backend": b,
            "library": lib,
            **Stats.of(list(per_rep.values())).as_dict(),
        }
        for (m, b, lib), per_rep in values.items()
    ]
    ratios = []
    for (m, b, lib), per_rep in values.items():
        if lib not in ("orchestrix", "eventsourcing"):
            continue
        for (m2, b2, other), theirs in values.items():
            if (m2, b2) != (m, b) or other in (lib, "orchestrix"):
                continue
            common = sorted(set(per_rep) & set(theirs))
            if not common:
                continue
            per = [per_rep[r] / theirs[r] for r in common if theirs[r]]
            if per:
                ratios.append(
                    {
                        "metric": m,
                        "backend": b,
                        "library": lib,
                        "versus": other,
                        **Stats.of(per).as_dict(),
                    }
                )
    failures = [
        {"metric": m, "backend": b, "library": lib, "errors": sorted(set(errs))}
        for (m, b, lib), errs in errors.items()
    ]
    return {"figures": figures, "ratios": ratios, "failures": failures}
