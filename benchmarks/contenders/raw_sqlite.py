"""Raw SQLite contenders: aiosqlite (async, like orchestrix) and sqlite3 (sync).

Both use one connection in autocommit mode, WAL and ``synchronous=FULL``
(every commit is durable, as orchestrix's default). A single append is one
statement that inserts only if the stream is at the expected version; a
batch is ``BEGIN IMMEDIATE``, the version check, ``executemany`` and
``COMMIT``. SQLite runs one writer at a time, so the check cannot race.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from benchmarks.contenders.base import Conflict, ReadAllOutcome, StoreContender
from benchmarks.model import EVENT_TYPE, LedgerState
from benchmarks.settings import Unavailable, fresh_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    import aiosqlite

__all__ = ["RawAioSQLite", "RawSQLite3"]

PAGE = 1_000
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode

_SCHEMA = (
    (
        "CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, "
        "version INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, "
        "data BLOB NOT NULL, "
        "recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')), "
        "UNIQUE (stream_id, version))"
    ),
    (
        "CREATE TABLE snapshots (stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL, "
        "state BLOB NOT NULL)"
    ),
)
_VERSION = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?"
_INSERT_IF = (
    "INSERT INTO events (stream_id, version, id, type, data) SELECT ?, ?, ?, ?, ? "
    "WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?) = ?"
)
_INSERT = (
    "INSERT INTO events (stream_id, version, id, type, data) VALUES (?, ?, ?, ?, ?)"
)
_READ = (
    f"SELECT data FROM events WHERE stream_id = ? AND version > ? "
    f"ORDER BY version LIMIT {PAGE}"
)
_READ_ALL = (
    f"SELECT position, stream_id, version, type, data FROM events "
    f"WHERE position > ? ORDER BY position LIMIT {PAGE}"
)
_SNAPSHOT = "SELECT version, state FROM snapshots WHERE stream_id = ?"
_SAVE_SNAPSHOT = "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)"
_IDS = "SELECT version, id FROM events WHERE stream_id = ? ORDER BY version"


def _rows(stream: str, amounts: Sequence[int], expected: int) -> list[tuple[Any, ...]]:
    return [
        (
            stream,
            expected + i,
            str(uuid.uuid4()),
            EVENT_TYPE,
            _encode({"ledger_id": stream, "amount": a}),
        )
        for i, a in enumerate(amounts, 1)
    ]


class _Files(StoreContender):
    backend: ClassVar[str] = "sqlite"

    def _new_path(self) -> Path:
        self._path = Path(self.settings.workdir) / f"{fresh_name(self.library)}.db"
        return self._path

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._path}{suffix}").unlink(missing_ok=True)


class RawSQLite3(_Files):
    """The standard library's sqlite3, called directly (blocks the event loop)."""

    library: ClassVar[str] = "raw-sqlite3"

    async def open(self) -> None:
        self._db = sqlite3.connect(self._new_path(), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    async def close(self) -> None:
        self._db.close()
        self._remove()

    async def append(self, stream: str, amounts: Sequence[int], expected: int) -> None:
        db = self._db
        if len(amounts) == 1:
            (row,) = _rows(stream, amounts, expected)
            try:
                cursor = db.execute(_INSERT_IF, (*row, stream, expected))
            except sqlite3.IntegrityError as exc:
                raise Conflict(stream) from exc
            if cursor.rowcount != 1:
                raise Conflict(stream)
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute(_VERSION, (stream,)).fetchone()[0] != expected:
                raise Conflict(stream)
            db.executemany(_INSERT, _rows(stream, amounts, expected))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def stream_version(self, stream: str) -> int:
        version: int = self._db.execute(_VERSION, (stream,)).fetchone()[0]
        return version

    async def stream_versions(self, stream: str) -> list[tuple[int, str]]:
        return list(self._db.execute(_IDS, (stream,)))

    async def rehydrate(self, stream: str) -> LedgerState:
        row = self._db.execute(_SNAPSHOT, (stream,)).fetchone()
        count, balance = (0, 0) if row is None else (row[0], _decode(row[1])["balance"])
        while True:
            rows = self._db.execute(_READ, (stream, count)).fetchall()
            for (data,) in rows:
                balance += _decode(data)["amount"]
            count += len(rows)
            if len(rows) < PAGE:
                return LedgerState(balance, count)

    async def snapshot(self, stream: str) -> None:
        state = await self.rehydrate(stream)
        state_json = _encode({"balance": state.balance})
        self._db.execute(_SAVE_SNAPSHOT, (stream, state.count, state_json))

    async def read_all(self) -> ReadAllOutcome:
        count = total = last = 0
        ordered = True
        while True:
            rows = self._db.execute(_READ_ALL, (last,)).fetchall()
            for row in rows:
                total += _decode(row[4])["amount"]
                ordered = ordered and row[0] > last
                last = row[0]
            count += len(rows)
            if len(rows) < PAGE:
                return ReadAllOutcome(count, total, ordered)


class RawAioSQLite(_Files):
    """aiosqlite's public API: every statement is one hop to its worker thread."""

    library: ClassVar[str] = "raw"

    async def open(self) -> None:
        try:
            import aiosqlite
        except ImportError as exc:
            raise Unavailable("aiosqlite is not installed") from exc
        self._db: aiosqlite.Connection = await aiosqlite.connect(
            self._new_path(), isolation_level=None
        )
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            await self._db.execute(statement)

    async def close(self) -> None:
        await self._db.close()
        self._remove()

    async def append(self, stream: str, amounts: Sequence[int], expected: int) -> None:
        db = self._db
        if len(amounts) == 1:
            (row,) = _rows(stream, amounts, expected)
            try:
                cursor = await db.execute(_INSERT_IF, (*row, stream, expected))
            except sqlite3.IntegrityError as exc:
                raise Conflict(stream) from exc
            if cursor.rowcount != 1:
                raise Conflict(stream)
            return
        rows = _rows(stream, amounts, expected)
        await db.execute("BEGIN IMMEDIATE")
        try:
            cursor = await db.execute(_VERSION, (stream,))
            found = await cursor.fetchone()
            if found is None or found[0] != expected:
                raise Conflict(stream)
            await db.executemany(_INSERT, rows)
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")

    async def stream_version(self, stream: str) -> int:
        cursor = await self._db.execute(_VERSION, (stream,))
        row = await cursor.fetchone()
        return 0 if row is None else int(row[0])

    async def stream_versions(self, stream: str) -> list[tuple[int, str]]:
        rows = await self._db.execute_fetchall(_IDS, (stream,))
        return [(r[0], r[1]) for r in rows]

    async def rehydrate(self, stream: str) -> LedgerState:
        found = list(await self._db.execute_fetchall(_SNAPSHOT, (stream,)))
        count, balance = (
            (0, 0) if not found else (found[0][0], _decode(found[0][1])["balance"])
        )
        while True:
            rows = list(await self._db.execute_fetchall(_READ, (stream, count)))
            for (data,) in rows:
                balance += _decode(data)["amount"]
            count += len(rows)
            if len(rows) < PAGE:
                return LedgerState(balance, count)

    async def snapshot(self, stream: str) -> None:
        state = await self.rehydrate(stream)
        state_json = _encode({"balance": state.balance})
        await self._db.execute(_SAVE_SNAPSHOT, (stream, state.count, state_json))

    async def read_all(self) -> ReadAllOutcome:
        count = total = last = 0
        ordered = True
        while True:
            rows = list(await self._db.execute_fetchall(_READ_ALL, (last,)))
            for row in rows:
                total += _decode(row[4])["amount"]
                ordered = ordered and row[0] > last
                last = row[0]
            count += len(rows)
            if len(rows) < PAGE:
                return ReadAllOutcome(count, total, ordered)
