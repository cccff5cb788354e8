"""Raw PostgreSQL contender: asyncpg with the best plain technique.

One table, ``position bigserial`` for the global order, a primary key on
(stream_id, version) and a unique event id. An append is one statement that
inserts only if the stream is at the expected version (a unique violation
catches the race); a batch is one ``INSERT ... SELECT FROM unnest(...)``.
Reads fetch pages of 1,000 rows by key. It gives none of orchestrix's extra
guarantees: a slow transaction may commit a position behind a reader.
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

    import asyncpg

__all__ = ["PAGE", "RawPostgres", "drop_schema"]

PAGE = 1_000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode

_SCHEMA = """
CREATE SCHEMA {s};
CREATE TABLE {s}.events (
    position bigserial PRIMARY KEY,
    stream_id text NOT NULL,
    version integer NOT NULL,
    id uuid NOT NULL UNIQUE,
    type text NOT NULL,
    data bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version)
);
CREATE TABLE {s}.snapshots (
    stream_id text PRIMARY KEY,
    version integer NOT NULL,
    state bytea NOT NULL
);
"""


async def _no_reset(_connection: object) -> None:
    """Skip asyncpg's reset query on release: one round trip per operation less.

    The contender never leaves session state behind (no LISTEN, no advisory
    locks, no SET), so the reset would be pure overhead.
    """


async def drop_schema(url: str, schema: str) -> None:
    """Drop *schema* and everything in it."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


class RawPostgres(StoreContender):
    """asyncpg: a pool of 10 connections, no reset query, one statement per append."""

    library: ClassVar[str] = "raw"
    backend: ClassVar[str] = "postgres"

    async def open(self) -> None:
        try:
            import asyncpg
        except ImportError as exc:
            raise Unavailable("asyncpg is not installed") from exc
        self._schema = s = fresh_name("raw")
        self._pool: asyncpg.Pool[Any] = await asyncpg.create_pool(
            self.settings.postgres_url, min_size=1, max_size=10, reset=_no_reset
        )
        await self._pool.execute(_SCHEMA.format(s=s))
        self._unique = asyncpg.UniqueViolationError
        self._insert = (
            f"INSERT INTO {s}.events (stream_id, version, id, type, data) "
            f"SELECT $1, $2 + 1, $3, $4, $5 WHERE (SELECT coalesce(max(version), 0) "
            f"FROM {s}.events WHERE stream_id = $1) = $2"
        )
        self._insert_many = (
            f"INSERT INTO {s}.events (stream_id, version, id, type, data) "
            f"SELECT $1, $2 + u.n, u.id, $4, u.data "
            f"FROM unnest($3::uuid[], $5::bytea[]) WITH ORDINALITY AS u(id, data, n) "
            f"WHERE (SELECT coalesce(max(version), 0) FROM {s}.events "
            f"WHERE stream_id = $1) = $2"
        )
        self._version = (
            f"SELECT coalesce(max(version), 0) FROM {s}.events WHERE stream_id = $1"
        )
        self._read = (
            f"SELECT version, data FROM {s}.events WHERE stream_id = $1 "
            f"AND version > $2 ORDER BY version LIMIT {PAGE}"
        )
        self._read_all = (
            f"SELECT position, stream_id, version, type, data FROM {s}.events "
            f"WHERE position > $1 ORDER BY position LIMIT {PAGE}"
        )

    async def close(self) -> None:
        try:
            await self._pool.execute(f'DROP SCHEMA IF EXISTS "{self._schema}" CASCADE')
        finally:
            await self._pool.close()

    async def append(self, stream: str, amounts: Sequence[int], expected: int) -> None:
        try:
            if len(amounts) == 1:
                status = await self._pool.execute(
                    self._insert,
                    stream,
                    expected,
                    uuid.uuid4(),
                    EVENT_TYPE,
                    _encode({"ledger_id": stream, "amount": amounts[0]}),
                )
            else:
                status = await self._pool.execute(
                    self._insert_many,
                    stream,
                    expected,
                    [uuid.uuid4() for _ in amounts],
                    EVENT_TYPE,
                    [_encode({"ledger_id": stream, "amount": a}) for a in amounts],
                )
        except self._unique as exc:
            raise Conflict(stream) from exc
        if status == "INSERT 0 0":
            raise Conflict(stream)

    async def stream_version(self, stream: str) -> int:
        version: int = await self._pool.fetchval(self._version, stream)
        return version

    async def stream_versions(self, stream: str) -> list[tuple[int, str]]:
        rows = await self._pool.fetch(
            f"SELECT version, id FROM {self._schema}.events WHERE stream_id = $1 "
            f"ORDER BY version",
            stream,
        )
        return [(r[0], str(r[1])) for r in rows]

    async def _fold(self, stream: str, balance: int, count: int) -> LedgerState:
        fetch = self._pool.fetch
        while True:
            rows = await fetch(self._read, stream, count)
            for row in rows:
                balance += _decode(row[1])["amount"]
            count += len(rows)
            if len(rows) < PAGE:
                return LedgerState(balance, count)

    async def rehydrate(self, stream: str) -> LedgerState:
        row = await self._pool.fetchrow(
            f"SELECT version, state FROM {self._schema}.snapshots WHERE stream_id = $1",
            stream,
        )
        if row is None:
            return await self._fold(stream, 0, 0)
        return await self._fold(stream, _decode(row[1])["balance"], row[0])

    async def snapshot(self, stream: str) -> None:
        state = await self.rehydrate(stream)
        await self._pool.execute(
            f"INSERT INTO {self._schema}.snapshots VALUES ($1, $2, $3) "
            f"ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
            f"state = excluded.state",
            stream,
            state.count,
            _encode({"balance": state.balance}),
        )

    async def read_all(self) -> ReadAllOutcome:
        count = total = last = 0
        ordered = True
        fetch = self._pool.fetch
        while True:
            rows = await fetch(self._read_all, last)
            for row in rows:
                total += _decode(row[4])["amount"]
                ordered = ordered and row[0] > last
                last = row[0]
            count += len(rows)
            if len(rows) < PAGE:
                return ReadAllOutcome(count, total, ordered)
