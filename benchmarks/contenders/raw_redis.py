"""Raw Redis contender: redis.asyncio with one Lua script per append.

Each stream is a list of JSON records and the global log another list; the
script checks the stream's length against the expected version and pushes
to both lists atomically, in one round trip. Reads take pages of 1,000 with
``LRANGE``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from benchmarks.contenders.base import Conflict, ReadAllOutcome, StoreContender
from benchmarks.model import EVENT_TYPE, LedgerState
from benchmarks.settings import Unavailable, fresh_name

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PAGE", "RawRedis", "delete_prefix"]

PAGE = 1_000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode
_decode_row = msgspec.json.Decoder(list[Any]).decode

# KEYS: stream list, global list. ARGV: expected version, then n stream
# records, then n global records.
_APPEND = """
local n = redis.call('LLEN', KEYS[1])
if n ~= tonumber(ARGV[1]) then return -1 end
local count = (#ARGV - 1) / 2
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2, 1 + count))
redis.call('RPUSH', KEYS[2], unpack(ARGV, 2 + count, 1 + 2 * count))
return n + count
"""


async def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key that starts with *prefix* (plain or hash-tagged)."""
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(url)
    try:
        for pattern in (f"{prefix}:*", f"{{{prefix}}}*"):
            keys = [k async for k in client.scan_iter(match=pattern, count=1_000)]
            for i in range(0, len(keys), 500):
                await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()


class RawRedis(StoreContender):
    """redis.asyncio, a Lua script per append, lists for streams and the log."""

    library: ClassVar[str] = "raw"
    backend: ClassVar[str] = "redis"

    async def open(self) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:
            raise Unavailable("redis is not installed") from exc
        self._prefix = fresh_name("raw")
        self._client: Any = aioredis.Redis.from_url(
            self.settings.redis_url, max_connections=16
        )
        self._script = self._client.register_script(_APPEND)
        self._log = f"{self._prefix}:log"

    async def close(self) -> None:
        try:
            await delete_prefix(self.settings.redis_url, self._prefix)
        finally:
            await self._client.aclose()

    def _key(self, stream: str) -> bytes:
        return f"{self._prefix}:s:".encode() + stream.encode()

    async def append(self, stream: str, amounts: Sequence[int], expected: int) -> None:
        records = []
        entries = []
        for i, amount in enumerate(amounts, 1):
            data = _encode({"ledger_id": stream, "amount": amount})
            event_id = str(uuid.uuid4())
            records.append(_encode([event_id, EVENT_TYPE, data.decode()]))
            entries.append(
                _encode([stream, expected + i, event_id, EVENT_TYPE, data.decode()])
            )
        result = await self._script(
            keys=[self._key(stream), self._log], args=[expected, *records, *entries]
        )
        if result < 0:
            raise Conflict(stream)

    async def stream_version(self, stream: str) -> int:
        return int(await self._client.llen(self._key(stream)))

    async def stream_versions(self, stream: str) -> list[tuple[int, str]]:
        rows = await self._client.lrange(self._key(stream), 0, -1)
        return [(i, _decode_row(r)[0]) for i, r in enumerate(rows, 1)]

    async def rehydrate(self, stream: str) -> LedgerState:
        key = self._key(stream)
        snapshot = await self._client.get(f"{self._prefix}:snap:".encode() + key)
        count, balance = (0, 0)
        if snapshot is not None:
            state = _decode(snapshot)
            count, balance = state["version"], state["balance"]
        lrange = self._client.lrange
        while True:
            rows = await lrange(key, count, count + PAGE - 1)
            for row in rows:
                balance += _decode(_decode_row(row)[2])["amount"]
            count += len(rows)
            if len(rows) < PAGE:
                return LedgerState(balance, count)

    async def snapshot(self, stream: str) -> None:
        state = await self.rehydrate(stream)
        key = f"{self._prefix}:snap:".encode() + self._key(stream)
        await self._client.set(
            key, _encode({"version": state.count, "balance": state.balance})
        )

    async def read_all(self) -> ReadAllOutcome:
        count = total = 0
        lrange = self._client.lrange
        while True:
            rows = await lrange(self._log, count, count + PAGE - 1)
            for row in rows:
                total += _decode(_decode_row(row)[4])["amount"]
            count += len(rows)
            if len(rows) < PAGE:
                # A list index is the position: strictly increasing by construction.
                return ReadAllOutcome(count, total, ordered=True)
