"""C1: encode and decode one small event, in nanoseconds per event.

* orchestrix: `orchestrix.codec.encode` then `orchestrix.codec.decode` (the
  stored form, type lookup and upcasting check included);
* raw: ``msgspec.json`` straight on the same dataclass (the floor);
* eventsourcing: the application mapper's ``to_stored_event`` and
  ``to_domain_event`` (its default JSON transcoder).
"""

from __future__ import annotations

import gc
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from benchmarks.model import Deposited
from benchmarks.workloads import Result, VerificationError
from orchestrix.codec import decode, encode

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from benchmarks.registry import Entry
    from benchmarks.sizes import Sizes

__all__ = ["CodecContender", "EsMapper", "OrchestrixCodec", "RawMsgspec", "measure"]


class CodecContender(ABC):
    """Round-trips one event through a library's stored form."""

    library: ClassVar[str]

    @abstractmethod
    def round_trip(self) -> Any:
        """Encode the contender's sample event and decode it back."""

    @abstractmethod
    def check(self, decoded: Any) -> bool:
        """Return True if *decoded* equals the sample event."""


class OrchestrixCodec(CodecContender):
    """orchestrix's codec."""

    library: ClassVar[str] = "orchestrix"

    def __init__(self) -> None:
        self.event = Deposited(ledger_id="ledger-1", amount=42)

    def round_trip(self) -> Any:
        return decode(encode(self.event))

    def check(self, decoded: Any) -> bool:
        return bool(decoded == self.event)


class RawMsgspec(CodecContender):
    """msgspec's JSON encoder and a typed decoder for the same dataclass."""

    library: ClassVar[str] = "raw"

    def __init__(self) -> None:
        self.event = Deposited(ledger_id="ledger-1", amount=42)
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder(Deposited).decode

    def round_trip(self) -> Any:
        return self._decode(self._encode(self.event))

    def check(self, decoded: Any) -> bool:
        return bool(decoded == self.event)


class EsMapper(CodecContender):
    """eventsourcing's mapper (topic, JSON transcoder, state dict)."""

    library: ClassVar[str] = "eventsourcing"

    def __init__(self) -> None:
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


async def c1_codec(c: CodecContender, sizes: Sizes) -> dict[str, Result]:
    """Time *c1_iterations* round trips; return nanoseconds per event."""
    if not c.check(c.round_trip()):
        msg = f"{c.library}: the decoded event differs from the encoded one"
        raise VerificationError(msg)
    round_trip = c.round_trip
    for _ in range(max(1, sizes.c1_iterations // 10)):
        round_trip()
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(sizes.c1_iterations):
        round_trip()
    elapsed = time.perf_counter_ns() - start
    return {
        "C1": Result(elapsed / sizes.c1_iterations, {"iterations": sizes.c1_iterations})
    }


def measure(sizes: Sizes) -> Callable[[Entry], Awaitable[dict[str, Result]]]:
    """Return the harness's measure function for C1."""

    async def one(entry: Entry) -> dict[str, Result]:
        return await c1_codec(entry.load()(), sizes)

    return one
