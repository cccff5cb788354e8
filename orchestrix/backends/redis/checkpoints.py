"""Redis checkpoint store: every checkpoint of a prefix in one hash."""

from __future__ import annotations

from typing import Self, final

from orchestrix.backends._front import FrontCheckpointStore
from orchestrix.backends.redis._connection import DEFAULT_URL, RedisResource

__all__ = ["RedisCheckpointStore"]


@final
class RedisCheckpointStore(RedisResource, FrontCheckpointStore):
    """Named positions in one Redis hash per prefix: name -> position.

    Names are the hash's fields, stored as UTF-8 text as they are, so any name
    a checkpoint may have is kept apart from every other; positions are
    stored as decimal text and read back exactly. Each method is one command.

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

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        prefix: str | None = None,
        retries: int | None = None,
    ) -> Self:
        """Return a checkpoint store on the Redis server at *url*, once it answers.

        Raises:
            ConfigurationError: A bad URL or option.
            MissingDependencyError: The ``redis`` package is not installed.
            BackendUnavailable: The server cannot be reached.
        """
        store = cls(url, prefix=prefix, retries=retries)
        await store._connect()
        return store

    async def _load(self, name: str) -> int | None:
        with self._errors:
            position = await self._client.hget(self.keys.checkpoints, name)
        return None if position is None else int(position)

    async def _save(self, name: str, position: int) -> None:
        with self._errors:
            await self._client.hset(self.keys.checkpoints, name, str(position))

    async def _delete(self, name: str) -> None:
        with self._errors:
            await self._client.hdel(self.keys.checkpoints, name)

    async def _load_all(self) -> dict[str, int]:
        with self._errors:
            stored = await self._client.hgetall(self.keys.checkpoints)
        return {name.decode(): int(position) for name, position in stored.items()}
