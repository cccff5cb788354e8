"""Redis event store specifics: key layout, URL options, driver and server checks."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from orchestrix import (
    ConfigurationError,
    Event,
    MissingDependencyError,
    Snapshot,
    open_snapshot_store,
    open_store,
)
from orchestrix.backends.redis import RedisEventStore, RedisSnapshotStore
from orchestrix.backends.redis._connection import RedisKeys, decode_name, encode_name
from tests.contract.test_redis import delete_keys

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.redis


@dataclass(frozen=True, kw_only=True, slots=True)
class Marked(Event, type="tests.redis_store.Marked"):
    """An event for these tests."""

    number: int


@pytest.fixture
async def prefix(redis_url: str, unique_name: str) -> AsyncIterator[str]:
    """A fresh key prefix, whose keys are deleted after the test."""
    yield unique_name
    await delete_keys(redis_url, unique_name)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Any]:
    """A plain redis.asyncio client on the test server."""
    import redis.asyncio as aioredis

    client: Any = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    "name",
    ["plain", "a:b", "{tag}", "}{", "100%", "a%3Ab", "ünïcödé ✓", "s:x", " ", "~._-"],
)
def test_names_encode_reversibly_without_key_separators(name: str) -> None:
    """Encoded names hold no ':', '{' or '}' and decode back to the same name."""
    encoded = encode_name(name)
    assert not {":", "{", "}"} & set(encoded)
    assert decode_name(encoded) == name
    assert decode_name(encoded.encode()) == name


def test_every_key_of_a_prefix_shares_one_hash_tag() -> None:
    """All keys start with the '{prefix}' hash tag, so they share a cluster slot."""
    keys = RedisKeys("app")
    built = [
        keys.log,
        keys.ids,
        keys.stream_key("a:b"),
        keys.snapshot_key("{x}"),
        keys.bus_queue + encode_name("g"),
        keys.bus_groups,
        keys.checkpoints,
    ]
    assert all(key.startswith("{app}:") for key in built)
    assert keys.stream_key("a:b") == "{app}:s:a%3Ab"


async def test_ids_that_look_like_keys_stay_apart(redis_url: str, prefix: str) -> None:
    """Stream ids equal to another id's encoding or to key parts never mix."""
    ids = ["a:b", "a%3Ab", "log", "s:log", "{" + prefix + "}:log", "snap:x", "x"]
    async with await RedisEventStore.open(redis_url, prefix=prefix) as store:
        for number, stream_id in enumerate(ids):
            await store.append(stream_id, [Marked(number=number)])
        for number, stream_id in enumerate(ids):
            numbers = [r.event.number async for r in store.read(stream_id)]  # type: ignore[attr-defined]  # Marked only
            assert numbers == [number]
            assert await store.stream_version(stream_id) == 1
        assert [r.stream_id async for r in store.read_all()] == ids


async def test_prefixes_isolate_stores(redis_url: str, unique_name: str) -> None:
    """Two stores on one server with different prefixes see nothing of each other."""
    first, second = unique_name + "_a", unique_name + "_b"
    try:
        one = await open_store(f"{redis_url}?prefix={first}")
        two = await open_store(f"{redis_url}?prefix={second}")
        await one.append("s", [Marked(number=1)])
        assert await two.stream_version("s") == 0
        assert [r async for r in two.read_all()] == []
        await one.close()
        await two.close()
    finally:
        await delete_keys(redis_url, first)
        await delete_keys(redis_url, second)


async def test_url_options_reach_the_store(redis_url: str, prefix: str) -> None:
    """``prefix`` and ``page_size`` in the URL configure the opened store."""
    store = await open_store(f"{redis_url}?prefix={prefix}&page_size=3&retries=2")
    assert isinstance(store, RedisEventStore)
    assert store.page_size == 3
    assert store.keys.prefix == prefix
    await store.append("s", [Marked(number=n) for n in range(10)])
    assert [r.version async for r in store.read("s", after_version=2, limit=5)] == [
        3,
        4,
        5,
        6,
        7,
    ]
    await store.close()


async def test_keyword_options_win_over_the_url(redis_url: str, prefix: str) -> None:
    """A keyword option overrides the same option given in the URL."""
    store = RedisEventStore(f"{redis_url}?page_size=3", prefix=prefix, page_size=9)
    assert store.page_size == 9
    await store.close()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("redis://127.0.0.1:6379/0?prefix=a%20b", "prefix"),
        ("redis://127.0.0.1:6379/0?prefix=%7Bx%7D", "prefix"),
        ("redis://127.0.0.1:6379/0?page_size=0", "page_size"),
        ("redis://127.0.0.1:6379/0?page_size=many", "page_size"),
        ("redis://127.0.0.1:6379/0?retries=-1", "retries"),
        ("redis://127.0.0.1:6379/0?bogus=1", "bogus"),
        ("redis://127.0.0.1:6379/0?socket_timeout=0", "socket_timeout"),
    ],
)
def test_bad_options_are_named(url: str, named: str) -> None:
    """A bad or unknown URL option raises `ConfigurationError` naming it."""
    with pytest.raises(ConfigurationError, match=named):
        RedisEventStore(url)


def test_bad_url_hides_the_password() -> None:
    """A URL error names the URL with its password masked."""
    with pytest.raises(ConfigurationError) as caught:
        RedisEventStore("redis://me:hunter2@127.0.0.1:6379/0?nope=1")
    assert "hunter2" not in str(caught.value)
    assert "me:***@" in str(caught.value)


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the redis package, opening raises `MissingDependencyError('redis')`."""
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(MissingDependencyError, match=r"orchestrix\[redis\]"):
        RedisEventStore("redis://127.0.0.1:6379/0")


async def test_append_writes_one_entry_per_structure(
    redis_url: str, prefix: str, raw: Any
) -> None:
    """An append adds the log's event, the stream's position and the id together."""
    async with await RedisEventStore.open(redis_url, prefix=prefix) as store:
        event = Marked(number=1)
        await store.append("a:b", [event])
        keys = store.keys
        assert await raw.lrange(keys.stream_key("a:b"), 0, -1) == [b"1"]
        stored = msgspec.msgpack.decode(await raw.hget(keys.log, "1"))
        assert stored[:3] == ["a%3Ab", 1, 1]
        assert stored[3].tzinfo is not None
        assert stored[4][:3] == [event.id, "tests.redis_store.Marked", 1]
        assert await raw.hlen(keys.log) == 1
        assert await raw.hget(keys.ids, event.id) == b"1"


async def test_server_settings_that_lose_events_are_logged(
    redis_url: str, prefix: str, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening a store warns when the server has no AOF or may evict keys."""
    from orchestrix.backends.redis import _connection as _redis_common

    persistence = await raw.info("persistence")
    policy = (await raw.info("memory"))["maxmemory_policy"]
    _redis_common._checked_servers.clear()
    caplog.set_level(logging.WARNING, logger="orchestrix.redis.connection")
    async with await RedisEventStore.open(redis_url, prefix=prefix):
        pass
    text = caplog.text
    assert ("appendonly no" in text) == (not persistence["aof_enabled"])
    assert ("maxmemory-policy" in text) == (policy != "noeviction")


async def test_snapshots_open_by_url_and_live_beside_the_stream(
    redis_url: str, prefix: str, raw: Any
) -> None:
    """A snapshot store opened by URL keeps each snapshot in one hash per stream."""
    store = await open_snapshot_store(f"{redis_url}?prefix={prefix}")
    assert isinstance(store, RedisSnapshotStore)
    await store.save(Snapshot("a:b", 4, "Account", 2, b'{"balance":5}'))
    key = store.keys.snapshot_key("a:b")
    assert await raw.hgetall(key) == {
        b"v": b"4",
        b"a": b"Account",
        b"n": b"2",
        b"d": b'{"balance":5}',
    }
    assert await store.load("a:b") == Snapshot("a:b", 4, "Account", 2, b'{"balance":5}')
    await store.close()


async def test_large_appends_and_pages_cross_script_chunks(
    redis_url: str, prefix: str
) -> None:
    """Appends, retries and pages of more than 500 events keep every event in order."""
    async with await RedisEventStore.open(
        redis_url, prefix=prefix, page_size=1_200
    ) as store:
        events = [Marked(number=n) for n in range(1_203)]
        first = await store.append("big", events, expected_version=0)
        retried = await store.append("big", events, expected_version=0)
        assert retried == first
        assert first.positions == tuple(range(1, 1_204))
        assert [r.version async for r in store.read("big")] == list(range(1, 1_204))
        assert [r.id async for r in store.read_all(after_position=2)] == [
            e.id for e in events[2:]
        ]
        assert await store.stream_version("big") == 1_203


async def test_scripts_unknown_to_the_server_are_loaded_again(
    redis_url: str, prefix: str
) -> None:
    """A script the server no longer knows (restart, SCRIPT FLUSH) is loaded and run."""
    store = await RedisEventStore.open(redis_url, prefix=prefix)
    try:
        loaded = store._append_script.sha
        store._append_script.sha = "0" * 40  # a digest the server has never seen
        result = await store.append("s-1", [Marked(number=1)], expected_version=0)
        assert result.version == 1
        assert store._append_script.sha == loaded
        store._read_page.sha = "0" * 40
        assert [r.version async for r in store.read("s-1")] == [1]
    finally:
        await store.close()
