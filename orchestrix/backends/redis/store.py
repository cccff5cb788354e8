"""Redis event store: every append one Lua script, reads in packed pages."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Self, final

import msgspec

from orchestrix.backends._front import FrontEventStore
from orchestrix.backends.redis import _scripts as scripts
from orchestrix.backends.redis._connection import (
    DEFAULT_URL,
    LuaScript,
    RedisResource,
    decode_name,
    int_option,
)
from orchestrix.codec import EncodedMessage
from orchestrix.errors import (
    ConcurrencyError,
    DuplicateEventError,
)
from orchestrix.records import AppendResult, Recorded

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


__all__ = ["RedisEventStore"]

#: Events fetched per round trip while reading, unless ``page_size`` says otherwise.
DEFAULT_PAGE_SIZE: Final = 500

# Lua numbers are doubles: integers beyond this are not exact in scripts.
_LUA_EXACT: Final = 2**53
# The message part of an event entry, packed by the client (ADR 0028).
_pack: Final = msgspec.msgpack.Encoder().encode
# The reply of the append script (see `scripts.APPEND`).
_append_reply: Final = msgspec.msgpack.Decoder(list[Any]).decode
# A page of stored events: (encoded stream id, version, position, recorded at,
# message) per event.
_page: Final = msgspec.msgpack.Decoder(
    list[tuple[str, int, int, datetime, EncodedMessage]]
).decode


@final
class RedisEventStore(RedisResource, FrontEventStore):
    """Event store on Redis: one Redis stream per event stream plus a global log.

    Use `open` (or `orchestrix.open_store`), which checks the server answers.
    Options, as keywords or URL query parameters: ``prefix`` (key prefix,
    default ``orchestrix``), ``page_size`` (events per read round trip, default
    500), ``retries`` (reconnection attempts per command, default 8).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        retries: int | None = None,
    ) -> None:
        super().__init__(
            url, {"prefix": prefix, "page_size": page_size, "retries": retries}
        )
        self.page_size = int_option(
            "page_size", self.option("page_size", DEFAULT_PAGE_SIZE), 1
        )
        client = self._client
        self._append_script = LuaScript(client, scripts.APPEND)
        self._read_page = LuaScript(client, scripts.READ)
        self._read_all_page = LuaScript(client, scripts.READ_ALL)

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        retries: int | None = None,
    ) -> Self:
        """Return a store on the Redis server at *url*, once it answers.

        Raises:
            ConfigurationError: A bad URL or option (the message names it).
            MissingDependencyError: The ``redis`` package is not installed.
            BackendUnavailable: The server cannot be reached.
        """
        store = cls(url, prefix=prefix, page_size=page_size, retries=retries)
        await store._connect()
        await store._warn_about_server()
        return store

    async def _append(
        self,
        stream_id: str,
        records: list[EncodedMessage],
        expected_version: int | None,
    ) -> AppendResult:
        args: list[str | int | bytes] = [
            "" if expected_version is None else expected_version
        ]
        for record in records:
            args += (record.id, _pack(record))
        keys = self.keys
        with self._errors:
            packed = await self._append_script(
                (keys.stream_key(stream_id), keys.log, keys.ids), *args
            )
        kind, found, *rest = _append_reply(packed)
        if kind == "A":
            first = rest[0]
            return AppendResult(found, tuple(range(first, first + len(records))))
        if kind == "R":
            return AppendResult(found, tuple(rest))
        if kind == "C":
            raise ConcurrencyError(stream_id, expected_version, found)
        raise DuplicateEventError(str(found), stream_id)

    async def _read(
        self, stream_id: str, after: int, remaining: int | None
    ) -> AsyncIterator[Recorded]:
        if after >= _LUA_EXACT:
            return  # no stream gets this long, and Lua could not count this far
        keys = (self.keys.stream_key(stream_id), self.keys.log)
        read_page, page_size = self._read_page, self.page_size
        while remaining is None or remaining > 0:
            count = page_size if remaining is None else min(page_size, remaining)
            if self._closed:  # a read in progress stops at its next page
                self._check_open()
            with self._errors:
                rows = _page(await read_page(keys, after, count))
            for _, version, position, recorded_at, record in rows:
                yield Recorded(stream_id, version, position, recorded_at, record)
            if len(rows) < count:
                return
            after += count
            if remaining is not None:
                remaining -= count

    async def _read_all(
        self, after: int, remaining: int | None
    ) -> AsyncIterator[Recorded]:
        if after >= _LUA_EXACT:
            return  # no log gets this long, and Lua could not count this far
        keys = (self.keys.log,)
        read_page, page_size = self._read_all_page, self.page_size
        names: dict[str, str] = {}
        while remaining is None or remaining > 0:
            count = page_size if remaining is None else min(page_size, remaining)
            if self._closed:  # a read in progress stops at its next page
                self._check_open()
            with self._errors:
                rows = _page(await read_page(keys, after + 1, count))
            for encoded_id, version, position, recorded_at, record in rows:
                stream_id = names.get(encoded_id)
                if stream_id is None:
                    stream_id = names[encoded_id] = decode_name(encoded_id)
                yield Recorded(stream_id, version, position, recorded_at, record)
            if len(rows) < count:
                return
            after = rows[-1][2]
            if remaining is not None:
                remaining -= count

    async def _stream_version(self, stream_id: str) -> int:
        key = self.keys.stream_key(stream_id)
        with self._errors:
            return int(await self._client.llen(key))
