"""`PostgresSnapshotStore`: the latest snapshot per stream, in one table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, final

from orchestrix._utils import check_stream_id
from orchestrix.backends.postgres._connection import (
    PooledResource,
    parse_url,
    quote_ident,
)
from orchestrix.backends.postgres._schema import open_migrated_pool
from orchestrix.errors import InvalidArgumentError
from orchestrix.protocols import SnapshotStore
from orchestrix.records import Snapshot

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresSnapshotStore"]


@final
class PostgresSnapshotStore(PooledResource, SnapshotStore):
    """`SnapshotStore` on PostgreSQL: one row per stream, never moved backwards."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        schema: str,
        owns_pool: bool = False,
        where: str = "PostgreSQL",
    ) -> None:
        quoted = quote_ident(schema)
        self._pool = pool
        self._owns_pool = owns_pool
        self._where = where
        self._schema = schema
        self._save_sql = (
            f"INSERT INTO {quoted}.snapshots AS s (stream_id, version, "
            "aggregate_type, schema_version, state) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
            "aggregate_type = excluded.aggregate_type, schema_version = "
            "excluded.schema_version, state = excluded.state, taken_at = now() "
            "WHERE s.version <= excluded.version"
        )
        self._load_sql = (
            f"SELECT version, aggregate_type, schema_version, state FROM "
            f"{quoted}.snapshots WHERE stream_id = $1"
        )

    @classmethod
    async def open(cls, url: str, **options: Any) -> Self:
        """Connect to *url*, create or migrate the schema, and return a store.

        Raises:
            ConfigurationError: A bad URL or option.
            BackendUnavailable: The server cannot be reached.
            SchemaVersionError: The schema is newer than this code.
        """
        settings = parse_url(url, **options)
        pool = await open_migrated_pool(settings)
        return cls(
            pool, schema=settings.schema, owns_pool=True, where=settings.redacted
        )

    def __repr__(self) -> str:
        return f"PostgresSnapshotStore({self._where!r}, schema={self._schema!r})"

    async def save(self, snapshot: Snapshot) -> None:
        """Keep *snapshot* unless a newer one is stored (see `SnapshotStore.save`)."""
        self._check_open()
        stream_id = check_stream_id(snapshot.stream_id)
        version = snapshot.version
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            msg = f"snapshot version must be an int >= 1, got {version!r}"
            raise InvalidArgumentError(msg)
        state: object = snapshot.state
        if not isinstance(state, bytes):
            msg = f"snapshot state must be bytes, got {type(snapshot.state).__name__}"
            raise InvalidArgumentError(msg)
        await self._run(
            f"save snapshot of stream {stream_id!r}",
            lambda c: c.execute(
                self._save_sql,
                stream_id,
                version,
                snapshot.aggregate_type,
                snapshot.schema_version,
                snapshot.state,
            ),
        )

    async def load(self, stream_id: str) -> Snapshot | None:
        """Return the stream's latest snapshot, or None."""
        self._check_open()
        stream_id = check_stream_id(stream_id)
        row = await self._run(
            f"load snapshot of stream {stream_id!r}",
            lambda c: c.fetchrow(self._load_sql, stream_id),
        )
        if row is None:
            return None
        return Snapshot(stream_id, row[0], row[1], row[2], row[3])
