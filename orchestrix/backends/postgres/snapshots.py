"""`PostgresSnapshotStore`: the latest snapshot per stream, in one table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, final

from orchestrix.backends._front import FrontSnapshotStore
from orchestrix.backends.postgres._connection import (
    PooledResource,
    parse_url,
    quote_ident,
)
from orchestrix.backends.postgres._schema import open_migrated_pool
from orchestrix.records import Snapshot

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresSnapshotStore"]


@final
class PostgresSnapshotStore(PooledResource, FrontSnapshotStore):
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

    async def _save(self, snapshot: Snapshot) -> None:
        stream_id, version = snapshot.stream_id, snapshot.version
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

    async def _load(self, stream_id: str) -> Snapshot | None:
        row = await self._run(
            f"load snapshot of stream {stream_id!r}",
            lambda c: c.fetchrow(self._load_sql, stream_id),
        )
        if row is None:
            return None
        return Snapshot(stream_id, row[0], row[1], row[2], row[3])
