"""C1 and C2: encode and decode one event, in nanoseconds per event.

C1 round-trips a small flat event (`Deposited`); C2 an event with container
fields (`OrderPlaced`: a list of 20 small dicts and a tuple, like an order
with its lines), where `orchestrix.codec.encode` proves the values read back
equal item by item.

* orchestrix: `orchestrix.codec.encode` then `orchestrix.codec.decode` (the
  stored form, type lookup, read-back proof and upcasting check included);
* raw: ``msgspec.json`` straight on the same dataclass (the floor);
* eventsourcing (C1 only): the application mapper's ``to_stored_event`` and
  ``to_domain_event`` (its default JSON transcoder).
"""

from __future__ import annotations

import gc
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from benchmarks.model import Deposited
from benchmarks.workloads import Result, VerificationError
from orchestrix.codec import decode, encode
from orchestrix.messages import Event

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from benchmarks.registry import Entry
    from benchmarks.sizes import Sizes

__all__ = [
    "CODEC_WORKLOADS",
    "CodecContender",
    "EsMapper",
    "OrchestrixCodec",
    "OrderPlaced",
    "RawMsgspec",
    "measure",
    "sample_event",
]

#: The codec workloads and the libraries that run each. eventsourcing's mapper
#: has no typed decoding to compare with C2's (its transcoder reads a tuple
#: back as a list), so it runs C1 only.
CODEC_WORKLOADS: dict[str, tuple[str, ...]] = {
    "C1": ("orchestrix", "raw", "eventsourcing"),
    "C2": ("orchestrix", "raw"),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderPlaced(Event, type="bench.order.placed"):
    """C2's event: an order with 20 lines, each a small dict, and its tags."""

    order_id: str
    lines: list[dict[str, int]]
    tags: tuple[str, ...]


def sample_event(workload: str) -> Deposited | OrderPlaced:
    """Return the event *workload* (C1 or C2) round-trips."""
    if workload == "C1":
        return Deposited(ledger_id="ledger-1", amount=42)
    return OrderPlaced(
        order_id="order-1",
        lines=[
            {"sku": 1000 + i, "quantity": 1 + i % 3, "price_cents": 250 * i}
            for i in range(20)
        ],
        tags=("express", "gift"),
    )


class CodecContender(ABC):
    """Round-trips one event through a library's stored form.

    Args:
        workload: C1 or C2, which chooses the sample event.
    """

    library: ClassVar[str]

    def __init__(self, workload: str = "C1") -> None:
        self.workload = workload

    @abstractmethod
    def round_trip(self) -> Any:
        """Encode the contender's sample event and decode it back."""

    @abstractmethod
    def check(self, decoded: Any) -> bool:
        """Return True if *decoded* equals the sample event."""


class OrchestrixCodec(CodecContender):
    """orchestrix's codec."""

    library: ClassVar[str] = "orchestrix"

    def __init__(self, workload: str = "C1") -> None:
        super().__init__(workload)
        self.event = sample_event(workload)

    def round_trip(self) -> Any:
        return decode(encode(self.event))

    def check(self, decoded: Any) -> bool:
        return bool(decoded == self.event)


class RawMsgspec(CodecContender):
    """msgspec's JSON encoder and a typed decoder for the same dataclass."""

    library: ClassVar[str] = "raw"

    def __init__(self, workload: str = "C1") -> None:
        super().__init__(workload)
        self.event = sample_event(workload)
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder(type(self.event)).decode

    def round_trip(self) -> Any:
        return self._decode(self._encode(self.event))

    def check(self, decoded: Any) -> bool:
        return bool(decoded == self.event)


class EsMapper(CodecContender):
    """eventsourcing's mapper (topic, JSON transcoder, state dict)."""

    library: ClassVar[str] = "eventsourcing"

    def __init__(self, workload: str = "C1") -> None:
        super().__init__(workload)
        from benchmarks.contenders.es import EsLedger, LedgerApplication

        app = LedgerApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.mapper = app.mapper
        ledger: Any = EsLedger(amount=1)
        ledger.deposit(42)
        self.event = ledger.collect_events()[-1]

    def round_trip(self) -> Any:
        return self.mapper.to_domain_event(self.mapper.to_stored_event(self.event))

    def check(self, decoded: Any) -> bool:
        return bool(decoded.__dict__ == self.event.__dict__)


async def codec_round_trips(c: CodecContender, iterations: int) -> dict[str, Result]:
    """Time *iterations* round trips; return nanoseconds per event."""
    if not c.check(c.round_trip()):
        msg = f"{c.library}: the decoded event differs from the encoded one"
        raise VerificationError(msg)
    round_trip = c.round_trip
    for _ in range(max(1, iterations // 10)):
        round_trip()
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(iterations):
        round_trip()
    elapsed = time.perf_counter_ns() - start
    return {c.workload: Result(elapsed / iterations, {"iterations": iterations})}


def measure(
    workload: str, sizes: Sizes
) -> Callable[[Entry], Awaitable[dict[str, Result]]]:
    """Return the harness's measure function for codec *workload* (C1 or C2)."""
    iterations = sizes.c1_iterations if workload == "C1" else sizes.c2_iterations

    async def one(entry: Entry) -> dict[str, Result]:
        return await codec_round_trips(entry.load()(workload), iterations)

    return one
