"""Redis snapshot store: the latest snapshot per stream, in one hash per stream."""

from __future__ import annotations

from typing import Self, final

from orchestrix.backends._front import FrontSnapshotStore
from orchestrix.backends.redis import _scripts as scripts
from orchestrix.backends.redis._connection import (
    DEFAULT_URL,
    LuaScript,
    RedisResource,
)
from orchestrix.records import Snapshot

__all__ = ["RedisSnapshotStore"]


@final
class RedisSnapshotStore(RedisResource, FrontSnapshotStore):
    """Latest snapshot per stream, one Redis hash beside the stream's key.

    Options, as keywords or URL query parameters: ``prefix`` and ``retries``,
    as for `RedisEventStore`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str | None = None,
        retries: int | None = None,
    ) -> None:
        super().__init__(url, {"prefix": prefix, "retries": retries})
        self._save_script = LuaScript(self._client, scripts.SAVE_SNAPSHOT)

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        prefix: str | None = None,
        retries: int | None = None,
    ) -> Self:
        """Return a snapshot store on the Redis server at *url*, once it answers.

        Raises:
            ConfigurationError: A bad URL or option.
            MissingDependencyError: The ``redis`` package is not installed.
            BackendUnavailable: The server cannot be reached.
        """
        store = cls(url, prefix=prefix, retries=retries)
        await store._connect()
        return store

    async def _save(self, snapshot: Snapshot) -> None:
        key = self.keys.snapshot_key(snapshot.stream_id)
        version = snapshot.version
        args = (
            version,
            snapshot.aggregate_type,
            snapshot.schema_version,
            snapshot.state,
        )
        with self._errors:
            await self._save_script((key,), *args)

    async def _load(self, stream_id: str) -> Snapshot | None:
        key = self.keys.snapshot_key(stream_id)
        with self._errors:
            version, kind, schema, state = await self._client.hmget(
                key, ["v", "a", "n", "d"]
            )
        if version is None:
            return None
        return Snapshot(stream_id, int(version), kind.decode(), int(schema), state)
