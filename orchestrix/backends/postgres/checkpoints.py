"""`PostgresCheckpointStore`: one position per subscriber name, in one table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, final

from orchestrix.backends._front import FrontCheckpointStore
from orchestrix.backends.postgres._connection import (
    PooledResource,
    parse_url,
    quote_ident,
)
from orchestrix.backends.postgres._schema import open_migrated_pool

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresCheckpointStore"]


@final
class PostgresCheckpointStore(PooledResource, FrontCheckpointStore):
    """`CheckpointStore` on PostgreSQL: one row per name, replaced on save.

    The rows live in ``<schema>.checkpoints``, beside the events they point
    into, so a projection that writes its read model in the same database can
    be monitored with one query (its lag is the head of the log minus its
    position).
    """

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        schema: str,
        owns_pool: bool = False,
        where: str = "PostgreSQL",
    ) -> None:
        table = f"{quote_ident(schema)}.checkpoints"
        self._pool = pool
        self._owns_pool = owns_pool
        self._where = where
        self._schema = schema
        self._load_sql = f"SELECT position FROM {table} WHERE name = $1"
        self._save_sql = (
            f"INSERT INTO {table} (name, position) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "updated_at = now()"
        )
        self._delete_sql = f"DELETE FROM {table} WHERE name = $1"
        self._load_all_sql = f"SELECT name, position FROM {table}"

    @classmethod
    async def open(cls, url: str, **options: Any) -> Self:
        """Connect to *url*, create or migrate the schema, and return a store.

        Args:
            url: A ``postgresql://`` or ``postgres://`` URL.
            **options: URL options as keywords; they win over the URL's.

        Returns:
            An open store that closes its own pool.

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
        return f"PostgresCheckpointStore({self._where!r}, schema={self._schema!r})"

    async def _load(self, name: str) -> int | None:
        value: int | None = await self._run(
            f"load checkpoint {name!r}",
            lambda c: c.fetchval(self._load_sql, name),
        )
        return value

    async def _save(self, name: str, position: int) -> None:
        await self._run(
            f"save checkpoint {name!r}",
            lambda c: c.execute(self._save_sql, name, position),
        )

    async def _delete(self, name: str) -> None:
        await self._run(
            f"delete checkpoint {name!r}",
            lambda c: c.execute(self._delete_sql, name),
        )

    async def _load_all(self) -> dict[str, int]:
        rows = await self._run(
            "load checkpoints", lambda c: c.fetch(self._load_all_sql)
        )
        return {row[0]: row[1] for row in rows}
