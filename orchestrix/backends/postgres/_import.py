"""Bulk import into the PostgreSQL event store with COPY (see ADR 0017).

Rows are copied into a temporary table, then moved into the events table in
one transaction that locks the streams involved (in stream id order, so two
imports cannot deadlock) and takes the global counter last, exactly as an
append does, so positions stay gap-free and readers see all or nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from orchestrix.backends.postgres._connection import import_asyncpg, quote_ident
from orchestrix.errors import DuplicateEventError

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["import_records"]

_STAGE: Final = "orchestrix_import"
_COLUMNS: Final = ("ord", "stream_id", "event_id", "type", "schema_version", "payload")


async def import_records(
    connection: PoolConnectionProxy[Any],
    schema: str,
    rows: list[tuple[int, str, str, str, int, bytes]],
) -> int:
    """Store *rows* (ord, stream id, event id, type, schema version, payload).

    Returns:
        The number stored, or 0 if every event was already stored as given.

    Raises:
        DuplicateEventError: An event id is stored, not as this same import.
    """
    s = quote_ident(schema)
    driver = import_asyncpg()
    async with connection.transaction():
        await connection.execute(
            f"CREATE TEMP TABLE {_STAGE} (ord bigint PRIMARY KEY, stream_id text, "
            "event_id text, type text, schema_version integer, payload bytea, "
            "version bigint) ON COMMIT DROP"
        )
        await connection.copy_records_to_table(_STAGE, records=rows, columns=_COLUMNS)
        await connection.execute(f"ANALYZE {_STAGE}")
        existing = await connection.fetchrow(
            "SELECT count(*), bool_and(e.stream_id = i.stream_id) FROM "
            f"{_STAGE} AS i JOIN {s}.events AS e USING (event_id)"
        )
        if existing is not None and existing[0]:
            if existing[0] == len(rows) and existing[1]:
                consecutive = await connection.fetchval(
                    "SELECT count(DISTINCT (stream_id, offs)) = "
                    "count(DISTINCT stream_id) FROM (SELECT i.stream_id, e.version - "
                    "row_number() OVER (PARTITION BY i.stream_id ORDER BY i.ord) "
                    f"AS offs FROM {_STAGE} AS i JOIN {s}.events AS e "
                    "USING (event_id)) AS x"
                )
                if consecutive:
                    return 0
            dup = await connection.fetchrow(
                "SELECT i.event_id, i.stream_id, e.stream_id, e.version FROM "
                f"{_STAGE} AS i JOIN {s}.events AS e USING (event_id) "
                "ORDER BY i.ord LIMIT 1"
            )
            assert dup is not None  # noqa: S101 -- the count above found one
            detail = f"in stream {dup[2]!r} at version {dup[3]}"
            raise DuplicateEventError(dup[0], dup[1], detail)
        await connection.execute(
            f"INSERT INTO {s}.streams (stream_id, version) SELECT DISTINCT stream_id, "
            f"0 FROM {_STAGE} ORDER BY 1 ON CONFLICT DO NOTHING"
        )
        await connection.execute(
            f"SELECT 1 FROM {s}.streams WHERE stream_id IN (SELECT stream_id FROM "
            f"{_STAGE}) ORDER BY stream_id FOR UPDATE"
        )
        await connection.execute(
            f"UPDATE {_STAGE} AS i SET version = st.version + x.rn FROM (SELECT ord, "
            "row_number() OVER (PARTITION BY stream_id ORDER BY ord) AS rn FROM "
            f"{_STAGE}) AS x, {s}.streams AS st WHERE x.ord = i.ord AND "
            "st.stream_id = i.stream_id"
        )
        await connection.execute(
            f"UPDATE {s}.streams AS st SET version = x.top FROM (SELECT stream_id, "
            f"max(version) AS top FROM {_STAGE} GROUP BY stream_id) AS x "
            "WHERE st.stream_id = x.stream_id"
        )
        last = await connection.fetchval(
            f"UPDATE {s}.event_counter SET last_position = last_position + $1 "
            "RETURNING last_position",
            len(rows),
        )
        first = last - len(rows)
        try:
            await connection.execute(
                f"INSERT INTO {s}.events (position, stream_id, version, event_id, "
                f"type, schema_version, payload) SELECT $1::bigint + ord, stream_id, "
                f"version, event_id, type, schema_version, payload FROM {_STAGE} "
                "ORDER BY ord",
                first,
            )
        except driver.UniqueViolationError as exc:
            # An append stored one of these ids after the check above.
            key = str(exc.detail or exc)
            raise DuplicateEventError(key, "(import)", "stored concurrently") from exc
    return len(rows)
