"""Raw in-memory contender: plain dicts and lists holding JSON-encoded events."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from benchmarks.contenders.base import Conflict, ReadAllOutcome, StoreContender
from benchmarks.model import EVENT_TYPE, LedgerState

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RawMemory"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class RawMemory(StoreContender):
    """Dict of lists: the floor for any in-memory store that encodes its events."""

    library: ClassVar[str] = "raw"
    backend: ClassVar[str] = "memory"

    async def open(self) -> None:
        # stream -> [(event id, type, payload)]
        # global log -> [(stream, version, payload)]
        self._streams: dict[str, list[tuple[str, str, bytes]]] = {}
        self._log: list[tuple[str, int, bytes]] = []
        self._snapshots: dict[str, tuple[int, bytes]] = {}

    async def close(self) -> None:
        self._streams = {}
        self._log = []
        self._snapshots = {}

    async def append(self, stream: str, amounts: Sequence[int], expected: int) -> None:
        events = self._streams.get(stream)
        if events is None:
            events = self._streams[stream] = []
        if len(events) != expected:
            raise Conflict(stream)
        log = self._log
        version = expected
        for amount in amounts:
            payload = _encode({"ledger_id": stream, "amount": amount})
            events.append((str(uuid.uuid4()), EVENT_TYPE, payload))
            version += 1
            log.append((stream, version, payload))

    async def stream_version(self, stream: str) -> int:
        return len(self._streams.get(stream, ()))

    async def stream_versions(self, stream: str) -> list[tuple[int, str]]:
        return [(i, e[0]) for i, e in enumerate(self._streams.get(stream, ()), 1)]

    async def rehydrate(self, stream: str) -> LedgerState:
        balance = count = 0
        snapshot = self._snapshots.get(stream)
        if snapshot is not None:
            count = snapshot[0]
            balance = _decode(snapshot[1])["balance"]
        for _, _, payload in self._streams.get(stream, ())[count:]:
            balance += _decode(payload)["amount"]
            count += 1
        return LedgerState(balance, count)

    async def snapshot(self, stream: str) -> None:
        state = await self.rehydrate(stream)
        self._snapshots[stream] = (state.count, _encode({"balance": state.balance}))

    async def read_all(self) -> ReadAllOutcome:
        count = total = 0
        for _, _, payload in self._log:
            total += _decode(payload)["amount"]
            count += 1
        return ReadAllOutcome(count, total, ordered=True)
