"""Redis snapshot store: the latest snapshot per stream, in one hash per stream."""

from __future__ import annotations

from typing import Self, final

from orchestrix._utils import check_stream_id as _check_stream_id
from orchestrix.backends.redis import _scripts as scripts
from orchestrix.backends.redis._connection import (
    DEFAULT_URL,
    LuaScript,
    RedisResource,
)
from orchestrix.errors import (
    InvalidArgumentError,
)
from orchestrix.protocols import SnapshotStore
from orchestrix.records import Snapshot

__all__ = ["RedisSnapshotStore"]


@final
class RedisSnapshotStore(RedisResource, SnapshotStore):
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
        self._save = LuaScript(self._client, scripts.SAVE_SNAPSHOT)

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

    async def save(self, snapshot: Snapshot) -> None:
        """Keep *snapshot* unless a newer one is stored (see `SnapshotStore.save`)."""
        self._check_open()
        candidate: object = snapshot  # checked at run time despite the type
        if not isinstance(candidate, Snapshot):
            msg = f"save() takes a Snapshot, got {type(candidate).__qualname__}"
            raise InvalidArgumentError(msg)
        key = self.keys.snapshot_key(_check_stream_id(snapshot.stream_id))
        version = snapshot.version
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            msg = f"snapshot version must be an int >= 1, got {version!r}"
            raise InvalidArgumentError(msg)
        args = (
            version,
            snapshot.aggregate_type,
            snapshot.schema_version,
            snapshot.state,
        )
        with self._errors:
            await self._save((key,), *args)

    async def load(self, stream_id: str) -> Snapshot | None:
        """Return the stream's latest snapshot, or None."""
        self._check_open()
        key = self.keys.snapshot_key(_check_stream_id(stream_id))
        with self._errors:
            version, kind, schema, state = await self._client.hmget(
                key, ["v", "a", "n", "d"]
            )
        if version is None:
            return None
        return Snapshot(stream_id, int(version), kind.decode(), int(schema), state)
