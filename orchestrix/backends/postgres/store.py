"""PostgreSQL event store: one-round-trip appends, keyset-paged reads."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, final

from orchestrix._utils import check_non_negative, check_stream_id
from orchestrix.backends._front import FrontEventStore, encode_events
from orchestrix.backends.postgres._connection import (
    PooledResource,
    import_asyncpg,
    parse_url,
    quote_ident,
)
from orchestrix.backends.postgres._import import import_records
from orchestrix.backends.postgres._schema import open_migrated_pool
from orchestrix.errors import (
    ConcurrencyError,
    DuplicateEventError,
    InvalidArgumentError,
)
from orchestrix.protocols import ANY, STREAM_EXISTS, ExpectedVersion
from orchestrix.records import AppendResult, Recorded

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Iterable,
        Sequence,
    )

    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    from orchestrix.codec import EncodedMessage
    from orchestrix.messages import Event


__all__ = ["PostgresEventStore"]

T = TypeVar("T")
_DUPLICATE: Final = "OX001"


def _check_expected(stream_id: str, expected: ExpectedVersion, actual: int) -> None:
    if expected is ANY:
        return
    if (expected == STREAM_EXISTS and actual > 0) or expected == actual:
        return
    raise ConcurrencyError(stream_id, expected, actual)


@final
class PostgresEventStore(PooledResource, FrontEventStore):
    """`EventStore` on PostgreSQL.

    Appends cost one round trip (a server-side function checks the version,
    inserts the batch and assigns positions); reads page through the server
    with keyset pagination, *page_size* rows per round trip. An append whose
    connection breaks is retried once on a fresh connection, which is safe
    because appends are idempotent by event id.

    Create it with `open` (or `orchestrix.open_store`), which also migrates
    the schema; the constructor takes an existing, migrated pool.
    """

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        schema: str,
        page_size: int = 1000,
        owns_pool: bool = False,
        where: str = "PostgreSQL",
    ) -> None:
        quoted = quote_ident(schema)
        self._pool = pool
        self._owns_pool = owns_pool
        self._where = where
        self._schema = schema
        self._page_size = check_non_negative("page_size", page_size) or 1
        self._append_sql = (
            f"SELECT out_code, out_version, out_last FROM "
            f"{quoted}.append_events($1, $2, $3, $4, $5, $6)"
        )
        # In the order of `Recorded.from_row`'s arguments.
        columns = (
            "version, position, recorded_at, event_id, type, schema_version, payload"
        )
        # A stream read already knows the stream id: it is not fetched per row.
        self._read_sql = (
            f"SELECT {columns} FROM {quoted}.events WHERE stream_id = $1 "
            "AND version > $2 ORDER BY version LIMIT $3"
        )
        self._read_all_sql = (
            f"SELECT stream_id, {columns} FROM {quoted}.events WHERE position > $1 "
            "ORDER BY position LIMIT $2"
        )
        self._version_sql = f"SELECT version FROM {quoted}.streams WHERE stream_id = $1"
        self._lookup_sql = (
            f"SELECT event_id, stream_id, version, position FROM {quoted}.events "
            "WHERE event_id = ANY($1::text[])"
        )

    @classmethod
    async def open(cls, url: str, **options: Any) -> Self:
        """Connect to *url*, create or migrate the schema, and return a store.

        Args:
            url: ``postgresql://user:password@host:port/db?schema=...``.
            **options: Override URL options (``schema``, ``min_size``,
                ``max_size``, ``page_size``, ``connect_timeout``, ...).

        Raises:
            ConfigurationError: A bad URL or option.
            BackendUnavailable: The server cannot be reached.
            SchemaVersionError: The schema is newer than this code.
        """
        settings = parse_url(url, **options)
        pool = await open_migrated_pool(settings)
        return cls(
            pool,
            schema=settings.schema,
            page_size=settings.page_size,
            owns_pool=True,
            where=settings.redacted,
        )

    def __repr__(self) -> str:
        return f"PostgresEventStore({self._where!r}, schema={self._schema!r})"

    async def _append(
        self,
        stream_id: str,
        records: list[EncodedMessage],
        expected_version: int | None,
    ) -> AppendResult:
        if not records:
            current = await self._stream_version(stream_id)
            _check_expected(stream_id, expected_version, current)
            return AppendResult(current, ())
        ids = [record.id for record in records]
        driver = import_asyncpg()

        async def call(connection: PoolConnectionProxy[Any]) -> asyncpg.Record | None:
            try:
                return await connection.fetchrow(
                    self._append_sql,
                    stream_id,
                    expected_version,
                    ids,
                    [record.type for record in records],
                    [record.schema_version for record in records],
                    [record.payload for record in records],
                )
            except driver.PostgresError as exc:
                if exc.sqlstate != _DUPLICATE:
                    raise
                return None

        row = await self._run(f"append to stream {stream_id!r}", call)
        if row is not None and row[0] == 0:
            last = row[2]
            return AppendResult(row[1], tuple(range(last - len(ids) + 1, last + 1)))
        actual = None if row is None else int(row[1])
        return await self._resolve(stream_id, ids, expected_version, actual)

    async def _resolve(
        self,
        stream_id: str,
        ids: list[str],
        expected: ExpectedVersion,
        actual: int | None,
    ) -> AppendResult:
        """Tell an exact retry (return its result) from a conflict or reuse."""
        rows = await self._run(
            "look up event ids", lambda c: c.fetch(self._lookup_sql, ids)
        )
        found = {row[0]: row for row in rows}
        if len(found) == len(ids):
            first = found[ids[0]]
            if all(
                found[event_id][1] == stream_id
                and found[event_id][2] == first[2] + offset
                for offset, event_id in enumerate(ids)
            ):
                positions = tuple(found[event_id][3] for event_id in ids)
                return AppendResult(first[2] + len(ids) - 1, positions)
        for event_id in ids:
            if event_id in found:
                _, other, version, _ = found[event_id]
                detail = f"in stream {other!r} at version {version}"
                raise DuplicateEventError(event_id, stream_id, detail)
        if actual is None:
            actual = await self._stream_version(stream_id)
        raise ConcurrencyError(stream_id, expected, actual)

    def _read(
        self, stream_id: str, after: int, limit: int | None
    ) -> AsyncIterator[Recorded]:
        return self._pages(self._read_sql, (stream_id,), after, limit, stream_id)

    def _read_all(self, after: int, limit: int | None) -> AsyncIterator[Recorded]:
        return self._pages(self._read_all_sql, (), after, limit, None)

    async def _pages(  # noqa: C901 -- one loop with prefetch, close and limit
        self,
        sql: str,
        head: tuple[object, ...],
        after: int,
        limit: int | None,
        stream_id: str | None,
    ) -> AsyncIterator[Recorded]:
        """Yield the rows of *sql* page by page, keyed by version or position.

        With *stream_id* the rows are one stream's (version first); without
        it they start with their stream id (and are keyed by position). The
        next page is fetched while this one is consumed: its key is known as
        soon as this page arrives, so the round trip overlaps the reader's
        work instead of adding to it.
        """
        # One object per row: `Recorded.from_row` keeps the columns as they
        # are and builds the stored form only when it is asked for.
        from_row = Recorded.from_row
        key = 0 if stream_id is not None else 2
        remaining = limit
        size = self._page_size if limit is None else min(self._page_size, limit)
        pending: asyncio.Task[list[asyncpg.Record]] | None = None
        try:
            rows = await self._fetch(sql, *head, after, size)
            while True:
                count = len(rows)
                if remaining is not None:
                    remaining -= count
                more = count == size and (remaining is None or remaining > 0)
                if more:
                    if remaining is not None:
                        size = min(self._page_size, remaining)
                    pending = asyncio.ensure_future(
                        self._fetch(sql, *head, rows[-1][key], size)
                    )
                    # Let the fetch send its query before this page is read.
                    await asyncio.sleep(0)
                if stream_id is None:
                    for row in rows:
                        yield from_row(*row)
                else:
                    for row in rows:
                        yield from_row(stream_id, *row)
                if pending is None:
                    return
                if self._closed:  # closed while this page was read
                    self._check_open()
                rows = await pending
                pending = None
        finally:
            # A reader that stops early leaves the next page unread: stop its
            # fetch, or take its failure so that it is not reported as lost.
            if pending is not None and not pending.cancel() and not pending.cancelled():
                pending.exception()

    async def _fetch(self, sql: str, *arguments: object) -> list[asyncpg.Record]:
        return await self._run("read events", lambda c: c.fetch(sql, *arguments))

    async def _stream_version(self, stream_id: str) -> int:
        value = await self._run(
            f"read version of stream {stream_id!r}",
            lambda c: c.fetchval(self._version_sql, stream_id),
        )
        return int(value or 0)

    async def import_events(
        self, streams: Iterable[tuple[str, Sequence[Event]]]
    ) -> int:
        """Bulk-load events with COPY, atomically, with append's guarantees.

        Each ``(stream_id, events)`` pair is appended at the end of its stream
        without a version check; a stream may appear more than once. Either
        every event is stored, with consecutive global positions in the order
        given, or none is. Readers never see part of an import. While the
        rows are inserted, other appends wait, so import millions of events
        in chunks of about 10,000 to 100,000.

        Args:
            streams: Pairs of a stream id and its events, in order.

        Returns:
            How many events were stored: 0 when every event was already
            stored exactly so (a retried import whose acknowledgement was
            lost).

        Raises:
            DuplicateEventError: An event id is already stored, other than
                by an exact retry of this import.
            InvalidArgumentError: Bad stream id or event list.
            SerializationError: An event cannot be encoded.
        """
        self._check_open()
        rows: list[tuple[int, str, str, str, int, bytes]] = []
        seen: set[str] = set()
        for stream_id, events in streams:
            checked = check_stream_id(stream_id)
            for record in encode_events(checked, events):
                if record.id in seen:
                    msg = f"import: event id {record.id!r} is given twice"
                    raise InvalidArgumentError(msg)
                seen.add(record.id)
                rows.append(
                    (
                        len(rows) + 1,
                        checked,
                        record.id,
                        record.type,
                        record.schema_version,
                        record.payload,
                    )
                )
        if not rows:
            return 0
        return await self._run(
            "import events",
            lambda c: import_records(c, self._schema, rows),
            retry=False,
        )
