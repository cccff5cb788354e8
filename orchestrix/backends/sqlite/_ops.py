"""Functions the SQLite stores run in the connection's thread, and their SQL.

Each function is one atomic unit: a read, or one `write_transaction`, so that
`Database.run` may retry it whole when the database is busy (ADR 0014).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TypeAlias

from orchestrix.backends.sqlite._connection import write_transaction
from orchestrix.errors import ConcurrencyError, DuplicateEventError
from orchestrix.protocols import ANY, STREAM_EXISTS
from orchestrix.records import AppendResult, Recorded, Snapshot

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from orchestrix.codec import EncodedMessage
    from orchestrix.protocols import ExpectedVersion

__all__ = [
    "READ_ALL",
    "READ_STREAM",
    "VERSION",
    "append",
    "delete_checkpoint",
    "fetch_all",
    "fetch_stream",
    "load_all_checkpoints",
    "load_checkpoint",
    "load_snapshot",
    "save_checkpoint",
    "save_snapshot",
    "scalar",
]

# version, position, recorded_at, event_id, type, schema_version, payload
_Row: TypeAlias = tuple[int, int, str, str, str, int, bytes]
_from_row: Final = Recorded.from_row
_parse_time: Final = datetime.fromisoformat

_HEAD: Final = (
    "SELECT (SELECT coalesce(max(version), 0) FROM orchestrix_events "
    "WHERE stream_id = ?), (SELECT coalesce(max(position), 0) FROM orchestrix_events)"
)
_INSERT: Final = (
    "INSERT INTO orchestrix_events (position, stream_id, version, event_id, type, "
    "schema_version, payload, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The columns in the order of `Recorded.from_row`; a stream read leaves out
# the stream id, which the caller already holds.
_COLUMNS: Final = (
    "version, position, recorded_at, event_id, type, schema_version, payload"
)
READ_STREAM: Final = (
    f"SELECT {_COLUMNS} FROM orchestrix_events WHERE stream_id = ? AND version > ? "
    f"ORDER BY version LIMIT ?"
)
READ_ALL: Final = (
    f"SELECT stream_id, {_COLUMNS} FROM orchestrix_events WHERE position > ? "
    f"ORDER BY position LIMIT ?"
)
VERSION: Final = (
    "SELECT coalesce(max(version), 0) FROM orchestrix_events WHERE stream_id = ?"
)
_FIND_ID: Final = (
    "SELECT stream_id, version, position FROM orchestrix_events WHERE event_id = ?"
)
_SAVE_SNAPSHOT: Final = (
    "INSERT INTO orchestrix_snapshots (stream_id, version, aggregate_type, "
    "schema_version, state, saved_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
    "aggregate_type = excluded.aggregate_type, "
    "schema_version = excluded.schema_version, state = excluded.state, "
    "saved_at = excluded.saved_at "
    "WHERE excluded.version >= orchestrix_snapshots.version"
)
_LOAD_SNAPSHOT: Final = (
    "SELECT version, aggregate_type, schema_version, state "
    "FROM orchestrix_snapshots WHERE stream_id = ?"
)
_SAVE_CHECKPOINT: Final = (
    "INSERT INTO orchestrix_checkpoints (name, position, updated_at) "
    "VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
    "position = excluded.position, updated_at = excluded.updated_at"
)
_DELETE_CHECKPOINT: Final = "DELETE FROM orchestrix_checkpoints WHERE name = ?"
_LOAD_CHECKPOINT: Final = "SELECT position FROM orchestrix_checkpoints WHERE name = ?"
_LOAD_ALL_CHECKPOINTS: Final = "SELECT name, position FROM orchestrix_checkpoints"


def _matches(expected: ExpectedVersion, actual: int) -> bool:
    if expected is ANY:
        return True
    if expected == STREAM_EXISTS:
        return actual > 0
    return expected == actual


def _retry_result(
    raw: sqlite3.Connection, stream_id: str, ids: Sequence[str]
) -> AppendResult | None:
    """Return the original result if *ids* are an exact earlier append, else None.

    Raises:
        DuplicateEventError: Some ids are stored, but not as that append.
    """
    found = [raw.execute(_FIND_ID, (event_id,)).fetchone() for event_id in ids]
    stored = [(event_id, row) for event_id, row in zip(ids, found, strict=True) if row]
    if not stored:
        return None
    first_id, first = stored[0]
    exact = len(stored) == len(ids) and all(
        row[0] == stream_id and row[1] == first[1] + index
        for index, (_, row) in enumerate(stored)
    )
    if not exact:
        where = f"in stream {first[0]!r} at version {first[1]}"
        raise DuplicateEventError(first_id, stream_id, where)
    return AppendResult(stored[-1][1][1], tuple(row[2] for _, row in stored))


def append(
    raw: sqlite3.Connection,
    stream_id: str,
    records: list[EncodedMessage],
    expected: ExpectedVersion,
) -> AppendResult:
    def body(raw: sqlite3.Connection) -> AppendResult:
        version, position = raw.execute(_HEAD, (stream_id,)).fetchone()
        if not _matches(expected, version):
            retry = _retry_result(raw, stream_id, [r.id for r in records])
            if retry is not None:
                return retry
            raise ConcurrencyError(stream_id, expected, version)
        if not records:
            return AppendResult(version, ())
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        raw.executemany(
            _INSERT,
            [
                (position + i, stream_id, version + i, *r, now)
                for i, r in enumerate(records, 1)
            ],
        )
        count = len(records)
        return AppendResult(
            version + count, tuple(range(position + 1, position + count + 1))
        )

    try:
        return write_transaction(raw, body)
    except sqlite3.IntegrityError:
        # An event id is already stored: an exact retry, or a real duplicate.
        result = _retry_result(raw, stream_id, [r.id for r in records])
        if result is None:  # pragma: no cover -- only ids are unique here
            raise
        return result


def fetch_stream(
    raw: sqlite3.Connection, stream_id: str, after: int, size: int
) -> list[Recorded]:
    """Return up to *size* events of *stream_id* after version *after*."""
    rows: Iterable[_Row] = raw.execute(READ_STREAM, (stream_id, after, size))
    # recorded_at stays text until read: most readers only decode events.
    return [_from_row(stream_id, *row, _parse_time) for row in rows]


def fetch_all(raw: sqlite3.Connection, after: int, size: int) -> list[Recorded]:
    """Return up to *size* events after global position *after*."""
    rows: Iterable[tuple[str, *_Row]] = raw.execute(READ_ALL, (after, size))
    return [_from_row(*row, _parse_time) for row in rows]


def scalar(raw: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> int:
    return int(raw.execute(sql, args).fetchone()[0])


def save_snapshot(raw: sqlite3.Connection, snapshot: Snapshot) -> None:
    s, now = snapshot, datetime.now(UTC).isoformat(timespec="microseconds")
    row = (s.stream_id, s.version, s.aggregate_type, s.schema_version, s.state, now)
    write_transaction(raw, lambda raw: raw.execute(_SAVE_SNAPSHOT, row))


def load_snapshot(raw: sqlite3.Connection, stream_id: str) -> Snapshot | None:
    row = raw.execute(_LOAD_SNAPSHOT, (stream_id,)).fetchone()
    return None if row is None else Snapshot(stream_id, *row)


def save_checkpoint(raw: sqlite3.Connection, name: str, position: int) -> None:
    row = (name, position, datetime.now(UTC).isoformat(timespec="microseconds"))
    write_transaction(raw, lambda raw: raw.execute(_SAVE_CHECKPOINT, row))


def delete_checkpoint(raw: sqlite3.Connection, name: str) -> None:
    write_transaction(raw, lambda raw: raw.execute(_DELETE_CHECKPOINT, (name,)))


def load_checkpoint(raw: sqlite3.Connection, name: str) -> int | None:
    row = raw.execute(_LOAD_CHECKPOINT, (name,)).fetchone()
    return None if row is None else int(row[0])


def load_all_checkpoints(raw: sqlite3.Connection) -> dict[str, int]:
    return dict(raw.execute(_LOAD_ALL_CHECKPOINTS).fetchall())
