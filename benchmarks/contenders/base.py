"""The interface every event-store contender implements, and shared helpers.

A contender is one way of doing the work: orchestrix on a backend, the raw
driver of that backend with the best plain technique, or the
``eventsourcing`` library. The harness creates a fresh contender for every
measurement, calls `StoreContender.open` (which makes a fresh, empty
namespace: a schema, a file, a key prefix), runs the untimed preparation and
the timed workload through the methods below, checks the outcome, and calls
`StoreContender.close`, which removes everything the contender created.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.model import LedgerState
    from benchmarks.settings import Settings

__all__ = ["Conflict", "ContentionOutcome", "ReadAllOutcome", "StoreContender"]


class Conflict(Exception):  # noqa: N818 -- a condition, like ConcurrencyError
    """The stream was not at the expected version; nothing was written."""


@dataclass(frozen=True, slots=True)
class ReadAllOutcome:
    """What a read of the global log saw.

    Attributes:
        count: Events read.
        amount_sum: Sum of the decoded ``amount`` fields (proves decoding).
        ordered: Positions were strictly increasing.
        gap_free: Positions were exactly 1, 2, 3, ... (checked only for
            contenders whose `StoreContender.gap_free` is True).
    """

    count: int
    amount_sum: int
    ordered: bool
    gap_free: bool = True


@dataclass(frozen=True, slots=True)
class ContentionOutcome:
    """What the W5 writers achieved.

    Attributes:
        successes: Appends that succeeded.
        conflicts: Appends rejected by the version check.
        seconds: Wall time of the run.
    """

    successes: int
    conflicts: int
    seconds: float


class StoreContender(ABC):
    """One library on one backend, doing the event-store workloads.

    Subclasses set `library` (``orchestrix``, ``raw``, ``eventsourcing``, or a
    variant such as ``raw-sqlite3``) and `backend` (``memory``, ``sqlite``,
    ``postgres``, ``redis``).
    """

    library: ClassVar[str]
    backend: ClassVar[str]
    #: The contender promises gap-free global positions, and W4 checks them.
    gap_free: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    async def open(self) -> None:
        """Create a fresh, empty namespace and connect to it."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect and remove everything `open` created."""

    @abstractmethod
    async def append(self, stream: str, amounts: Sequence[int], expected: int) -> None:
        """Append one deposit per amount, if the stream is at version *expected*.

        Raises:
            Conflict: The stream is at another version; nothing was written.
        """

    @abstractmethod
    async def stream_version(self, stream: str) -> int:
        """Return the stream's number of events."""

    @abstractmethod
    async def stream_versions(self, stream: str) -> list[tuple[int, str]]:
        """Return (version, event id) of every event of the stream, in order."""

    @abstractmethod
    async def rehydrate(self, stream: str) -> LedgerState:
        """Load the stream and fold it into a ledger (W3; W3s after `snapshot`)."""

    @abstractmethod
    async def snapshot(self, stream: str) -> None:
        """Store a snapshot of the ledger at the stream's current version."""

    @abstractmethod
    async def read_all(self) -> ReadAllOutcome:
        """Read and decode the whole global log from position 0 (W4)."""

    async def contend(
        self, stream: str, writers: int, seconds: float
    ) -> ContentionOutcome:
        """Run *writers* concurrent optimistic writers on *stream* (W5).

        Each writer appends one deposit with the version it last saw; on a
        conflict it reads the stream's version and tries again.
        """
        successes = 0
        conflicts = 0
        start = time.perf_counter()
        deadline = start + seconds

        async def writer() -> None:
            nonlocal successes, conflicts
            seen = await self.stream_version(stream)
            while time.perf_counter() < deadline:
                try:
                    await self.append(stream, (1,), seen)
                except Conflict:
                    conflicts += 1
                    seen = await self.stream_version(stream)
                else:
                    successes += 1
                    seen += 1
                # Drivers that never suspend (sqlite3, dicts) would otherwise
                # let one writer run alone for the whole interval.
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as group:
            for _ in range(writers):
                group.create_task(writer())
        return ContentionOutcome(successes, conflicts, time.perf_counter() - start)
