"""SQLite specifics of the durable bus: idle cost, wake-ups, dead letters on disk."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from orchestrix import Event
from orchestrix.backends.sqlite import SQLiteMessageBus
from orchestrix.backends.sqlite.bus import _claim
from orchestrix.codec import encode

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path


@dataclass(frozen=True, kw_only=True, slots=True)
class Pinged(Event, type="tests.sqlite.bus.pinged"):
    n: int


async def _wait(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"gave up after {timeout} s waiting for: {what}")


def _recorder(into: list[int]) -> Callable[[Pinged], Awaitable[None]]:
    async def record(event: Pinged) -> None:
        into.append(event.n)

    return record


async def test_idle_poll_takes_no_write_lock(tmp_path: Path) -> None:
    """With nothing due, a claim only reads, so a held write lock cannot block it."""
    path = tmp_path / "bus.db"
    bus = await SQLiteMessageBus.open(path)
    await bus.close()
    with (
        closing(sqlite3.connect(path, isolation_level=None, timeout=0)) as writer,
        closing(sqlite3.connect(path, isolation_level=None, timeout=0)) as poller,
    ):
        writer.execute("BEGIN IMMEDIATE")
        assert _claim(poller, "group", 10, 30.0, 5) == []
        writer.execute("ROLLBACK")


async def test_publish_wakes_idle_buses_of_this_process(tmp_path: Path) -> None:
    """A publish on one bus wakes the consumers of every local bus on the file."""
    seen: list[int] = []
    consumer = await SQLiteMessageBus.open(tmp_path / "bus.db", poll_interval=60)
    publisher = await SQLiteMessageBus.open(tmp_path / "bus.db", poll_interval=60)
    try:
        consumer.subscribe(Pinged, _recorder(seen), group="g")
        await consumer.start()
        wakeup = consumer._wakeups["g"]
        wakeup.clear()
        await publisher.publish(Pinged(n=1))
        assert wakeup.is_set()
        await _wait(lambda: seen == [1], "delivery")
    finally:
        await publisher.close()
        await consumer.close()


async def test_memory_bus_delivers_to_itself() -> None:
    """A bus on sqlite:///:memory: works, privately, within one bus object."""
    seen: list[int] = []
    bus = await SQLiteMessageBus.open(":memory:")
    try:
        bus.subscribe(Pinged, _recorder(seen), group="g")
        await bus.start()
        await bus.publish(Pinged(n=7))
        await _wait(lambda: seen == [7], "delivery")
    finally:
        await bus.close()


async def test_dead_letters_survive_a_restart(tmp_path: Path) -> None:
    """Dead letters are on disk: a later bus lists them and replays one."""
    path = tmp_path / "bus.db"

    async def fail(event: Pinged) -> None:
        msg = f"cannot handle {event.n}"
        raise RuntimeError(msg)

    first = await SQLiteMessageBus.open(path, max_attempts=1, poll_interval=0.05)
    try:
        first.subscribe(Pinged, fail, group="g")
        await first.start()
        ping = Pinged(n=3)
        await first.publish(ping)
        letters: list[object] = []

        async def dead() -> None:
            async with asyncio.timeout(30):
                while not letters:
                    letters.extend(await first.dead_letters(group="g"))
                    await asyncio.sleep(0.02)

        await dead()
    finally:
        await first.close()

    seen: list[int] = []
    second = await SQLiteMessageBus.open(path, poll_interval=0.05)
    try:
        second.subscribe(Pinged, _recorder(seen), group="g")
        await second.start()
        [letter] = await second.dead_letters()
        assert (letter.message_id, letter.group, letter.attempts) == (ping.id, "g", 1)
        assert "RuntimeError: cannot handle 3" in letter.error
        assert letter.message == ping
        assert await second.replay_dead_letter(ping.id, group="g")
        assert not await second.replay_dead_letter(ping.id, group="g")
        await _wait(lambda: seen == [3], "replayed delivery")
        assert await second.dead_letters() == []
    finally:
        await second.close()


def _enqueue(path: Path, type_name: str, group: str, attempts: int = 0) -> str:
    """Store a message of *type_name* with one due delivery for *group*, raw."""
    record = encode(Pinged(n=1))
    message_id, payload = f"raw-{type_name}", record.payload
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        seq = raw.execute(
            "INSERT INTO orchestrix_bus_messages (message_id, type, schema_version, "
            "payload, published_at) VALUES (?, ?, 1, ?, "
            "'2026-01-01T00:00:00.000000+00:00')",
            (message_id, type_name, payload),
        ).lastrowid
        raw.execute(
            "INSERT INTO orchestrix_bus_deliveries (group_name, message_seq, "
            "available_at, attempts) VALUES (?, ?, 0, ?)",
            (group, seq, attempts),
        )
    return message_id


async def test_delivery_of_a_dead_consumer_is_dead_lettered_at_claim(
    tmp_path: Path,
) -> None:
    """A delivery whose last attempt never settled becomes a dead letter."""
    path = tmp_path / "bus.db"
    bus = await SQLiteMessageBus.open(path, max_attempts=2)
    try:
        message_id = _enqueue(path, Pinged.type_name(), "g", attempts=2)
        with closing(sqlite3.connect(path, isolation_level=None)) as raw:
            assert _claim(raw, "g", 10, 30.0, 2) == []
        [letter] = await bus.dead_letters(group="g")
        assert (letter.message_id, letter.attempts) == (message_id, 2)
        assert "visibility timeout expired" in letter.error
    finally:
        await bus.close()


def _delivery(path: Path) -> tuple[float, int, str | None, int]:
    """Return the one delivery's available_at, attempts, lease and dead flag."""
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        row: tuple[float, int, str | None, int] = raw.execute(
            "SELECT available_at, attempts, lease, dead FROM orchestrix_bus_deliveries"
        ).fetchone()
        return row


async def test_claims_skip_types_no_local_handler_takes(tmp_path: Path) -> None:
    """A delivery whose type names no local handler takes is left untouched."""
    path = tmp_path / "bus.db"
    bus = await SQLiteMessageBus.open(path)
    try:
        _enqueue(path, Pinged.type_name(), "g")
        with closing(sqlite3.connect(path, isolation_level=None)) as raw:
            raw.execute(
                "UPDATE orchestrix_bus_messages SET type_names = ? WHERE type = ?",
                (f'["{Pinged.type_name()}", "orchestrix.Event"]', Pinged.type_name()),
            )
            assert _claim(raw, "g", 10, 30.0, 1, names='["tests.other"]') == []
            assert _delivery(path) == (0, 0, None, 0)
            [claimed] = _claim(raw, "g", 10, 30.0, 1, names='["orchestrix.Event"]')
            assert claimed[2] == 1
    finally:
        await bus.close()


async def test_unhandled_message_without_type_names_is_released(
    tmp_path: Path,
) -> None:
    """A legacy delivery no local handler takes returns uncounted (ADR 0033).

    Messages stored before the type names were kept are claimed by any
    consumer of the group; one that finds no handler for it releases it.
    """
    path = tmp_path / "bus.db"

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Other(Event, type="tests.sqlite.bus.other-released"):
        pass

    async def ignore(event: Other) -> None:
        raise AssertionError(event)

    bus = await SQLiteMessageBus.open(path, max_attempts=1, poll_interval=0.05)
    try:
        bus.subscribe(Other, ignore, group="g")
        await bus.start()
        _enqueue(path, Pinged.type_name(), "g")
        await _wait(lambda: _delivery(path)[0] > 0, "the claim and its release")
        _, attempts, lease, dead = _delivery(path)
        assert (attempts, lease, dead) == (0, None, 0)
        assert await bus.dead_letters() == []
    finally:
        await bus.close()


async def test_undecodable_messages_are_dead_lettered(tmp_path: Path) -> None:
    """A message of a type this process does not know fails, then is dead."""
    path = tmp_path / "bus.db"
    type_name, needle = "tests.sqlite.bus.nobody-knows", "UnknownMessageType"

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Other(Event, type="tests.sqlite.bus.other"):
        pass

    async def ignore(event: Other) -> None:
        raise AssertionError(event)

    bus = await SQLiteMessageBus.open(path, max_attempts=1, poll_interval=0.05)
    try:
        bus.subscribe(Other, ignore, group="g")
        await bus.start()
        message_id = _enqueue(path, type_name, "g")
        letters: list[str] = []

        async def dead() -> None:
            while not letters:
                letters.extend(d.error for d in await bus.dead_letters(group="g"))
                await asyncio.sleep(0.02)

        async with asyncio.timeout(30):
            await dead()
        assert needle in letters[0]
        assert [d.message_id for d in await bus.dead_letters()] == [message_id]
    finally:
        await bus.close()
