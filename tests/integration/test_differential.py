"""Differential test: random store operations behave alike on every backend.

Hypothesis generates sequences of event-store and snapshot-store operations
(appends with every kind of expected version, retries and reused event ids,
reads with offsets and limits, snapshots, and invalid arguments of every
kind), and each sequence runs on fresh memory, SQLite, PostgreSQL and Redis
stores. The in-memory backend is the oracle: after every operation each
backend must give its result or raise its error type, and at the end every
backend must hold the same data. The explicit examples are discrepancies
this test found and the shared front end (or a backend) now settles.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrix import Event, OrchestrixError
from orchestrix._utils import check_stream_id
from orchestrix.backends.memory import InMemoryEventStore, InMemorySnapshotStore
from orchestrix.backends.postgres import PostgresEventStore, PostgresSnapshotStore
from orchestrix.backends.redis import RedisEventStore, RedisSnapshotStore
from orchestrix.backends.sqlite import SQLiteEventStore, SQLiteSnapshotStore
from orchestrix.errors import (
    ConcurrencyError,
    DuplicateEventError,
    InvalidArgumentError,
)
from orchestrix.protocols import ANY, NO_STREAM, STREAM_EXISTS
from orchestrix.records import Snapshot
from orchestrix.testing._event_store import INVALID_STREAM_IDS, UNUSUAL_STREAM_IDS
from tests.contract.test_redis import delete_keys

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence
    from pathlib import Path

    from orchestrix.protocols import EventStore, SnapshotStore
    from orchestrix.records import Recorded

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

#: Longest generated sequence of operations.
MAX_OPERATIONS: Final = 15
#: Small pages, so short streams already cross page boundaries.
PAGE_SIZE: Final = 2
#: Every event's time: events built from one spec are equal on every backend.
T0: Final = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

HUGE: Final = (2**53 - 1, 2**53, 2**53 + 1, 2**63 - 2, 2**63 - 1, 2**63, 2**64)
BAD_STREAM_IDS: Final[tuple[Any, ...]] = tuple(p.values[0] for p in INVALID_STREAM_IDS)


@dataclass(frozen=True, kw_only=True, slots=True)
class Tick(Event, type="tests.differential.tick"):
    n: int
    text: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Tock(Event, type="tests.differential.tock", version=2):
    n: int


# --- operations -------------------------------------------------------------
# Plain frozen dataclasses: hypothesis prints a failing sequence as code that
# can be pasted into an @example.


@dataclass(frozen=True)
class Ev:
    """One event, built afresh for every backend from these fields."""

    id: str
    n: int = 0
    text: str = ""
    kind: str = "tick"

    def build(self) -> Event:
        if self.kind == "tock":
            return Tock(id=self.id, n=self.n, time=T0)
        return Tick(id=self.id, n=self.n, text=self.text, time=T0)


@dataclass(frozen=True)
class Current:
    """The stream's version in the oracle just before the operation, plus *delta*."""

    delta: int = 0


@dataclass(frozen=True)
class Append:
    """``append(stream_id, events, expected_version=expected)``.

    *form* is how the events are passed: ``list``, ``tuple``, ``generator``,
    ``single`` (the first event, not in a list), ``junk`` (a list ending with
    a non-event) or ``none``.
    """

    stream_id: Any
    events: tuple[Ev, ...]
    expected: Any = ANY
    form: str = "list"


@dataclass(frozen=True)
class Read:
    stream_id: Any
    after_version: Any = 0
    limit: Any = None


@dataclass(frozen=True)
class ReadAll:
    after_position: Any = 0
    limit: Any = None


@dataclass(frozen=True)
class Version:
    stream_id: Any


@dataclass(frozen=True)
class Save:
    """``save(Snapshot(...))``; *wrapped* False passes the fields as a tuple."""

    stream_id: Any
    version: Any = 1
    aggregate_type: Any = "account"
    schema_version: Any = 1
    state: Any = b"{}"
    wrapped: bool = True


@dataclass(frozen=True)
class Load:
    stream_id: Any


Operation = Append | Read | ReadAll | Version | Save | Load

# --- the strategy -----------------------------------------------------------


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Draw from one of the strategies, picked in proportion to its weight.

    Shrinks towards the first strategy.
    """
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def _mostly(
    usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """*usual* nine times in ten, else *rare*; shrinks towards *usual*."""
    return _weighted((9, usual), (1, rare))


_COUNTS = st.integers(min_value=0, max_value=6)
_NOT_INTS = ("1", 1.0, 2.5)
_AFTER = _mostly(
    _mostly(_COUNTS, st.sampled_from(HUGE)),
    st.sampled_from((-1, -2, True, False, None, *_NOT_INTS)),
)
_LIMIT = _mostly(
    st.one_of(st.none(), _COUNTS, st.sampled_from(HUGE)),
    st.sampled_from((-1, True, False, *_NOT_INTS)),
)
_EXPECTED = _weighted(
    (6, st.sampled_from((ANY, Current(0)))),
    (2, st.sampled_from((NO_STREAM, STREAM_EXISTS))),
    (1, st.sampled_from((Current(1), Current(-1), Current(2), 1, 2, 3))),
    (1, st.sampled_from(HUGE)),
    (1, st.sampled_from((-2, -3, True, False, 0.0, *_NOT_INTS))),
)
_SNAPSHOT_VERSION = _mostly(
    st.sampled_from((Current(0), Current(0), 1, 2, 3, Current(1), Current(-1), *HUGE)),
    st.sampled_from((0, -1, 2**63, 2**64, True, *_NOT_INTS)),
)
_SCHEMA_VERSION = _mostly(
    st.sampled_from((1, 2, 2**31 - 1)),
    st.sampled_from((0, -1, 2**31, 2**63, True, *_NOT_INTS)),
)
_AGGREGATE_TYPE = _mostly(
    st.sampled_from(("account", "other", "é", "x" * 300)),
    st.sampled_from(("", 5, None, b"account", "a\x00b", "\ud800")),
)
_STATE = _mostly(
    st.sampled_from((b"{}", b'{"n":1}', b"", b"\x00\xff")),
    st.sampled_from(("{}", bytearray(b"{}"), None)),
)
_FORM = _mostly(
    st.sampled_from(("list", "list", "list", "tuple", "generator")),
    st.sampled_from(("single", "junk", "none")),
)
# Event id prefixes (a counter follows), a few of them no storable id.
_ID_PREFIXES = ("e", "e", "e", "", "é", "{e}:", "e'; --", "x" * 300, "a\x00", "\udc00")
_TEXTS = ("", "", "é", "\x00", 'a"b', "\U0001f600")
_KINDS: Final[tuple[str, ...]] = (
    ("append",) * 7 + ("read", "read_all", "save") * 2 + ("version", "load")
)


@st.composite
def operations(draw: st.DrawFn) -> list[Operation]:
    """A sequence of operations on a few streams, some of them unusual or invalid."""
    unusual = draw(
        st.lists(st.sampled_from(UNUSUAL_STREAM_IDS), max_size=2, unique=True)
    )
    streams = ("s", "t", *unusual)
    made: list[Ev] = []  # every event generated so far, for reuse
    batches: list[tuple[Ev, ...]] = []  # every batch appended so far, for retries

    def stream_id() -> Any:
        return draw(_mostly(st.sampled_from(streams), st.sampled_from(BAD_STREAM_IDS)))

    def new_event() -> Ev:
        prefix = draw(st.sampled_from(_ID_PREFIXES))
        event_id = f"{prefix}{len(made)}"
        if prefix == "" and all(ev.id for ev in made) and draw(st.booleans()):
            event_id = ""  # no storable id: every backend must refuse it alike
        event = Ev(
            event_id,
            len(made),
            draw(st.sampled_from(_TEXTS)),
            draw(st.sampled_from(("tick", "tick", "tick", "tock"))),
        )
        made.append(event)
        return event

    def events() -> tuple[Ev, ...]:
        if batches and draw(st.integers(0, 4)) == 0:
            # A retry: an earlier batch, whole or a slice of it.
            batch = draw(st.sampled_from(batches))
            if draw(st.booleans()):
                return batch
            start = draw(st.integers(0, len(batch)))
            return batch[start : draw(st.integers(start, len(batch)))]
        return tuple(
            draw(st.sampled_from(made))
            if made and draw(st.integers(0, 5)) == 0
            else new_event()
            for _ in range(draw(st.integers(0, 5)))
        )

    sequence: list[Operation] = []
    for _ in range(draw(st.integers(1, MAX_OPERATIONS))):
        kind = draw(st.sampled_from(_KINDS))
        op: Operation
        if kind == "append":
            batch = events()
            batches.append(batch)
            op = Append(stream_id(), batch, draw(_EXPECTED), draw(_FORM))
        elif kind == "read":
            op = Read(stream_id(), draw(_AFTER), draw(_LIMIT))
        elif kind == "read_all":
            op = ReadAll(draw(_AFTER), draw(_LIMIT))
        elif kind == "version":
            op = Version(stream_id())
        elif kind == "save":
            op = Save(
                stream_id(),
                draw(_SNAPSHOT_VERSION),
                draw(_AGGREGATE_TYPE),
                draw(_SCHEMA_VERSION),
                draw(_STATE),
                draw(_mostly(st.just(True), st.just(False))),
            )
        else:
            op = Load(stream_id())
        sequence.append(op)
    return sequence


# --- running a sequence everywhere ------------------------------------------


@dataclass(frozen=True)
class Servers:
    postgres_url: str
    redis_url: str
    directory: Path


@dataclass(frozen=True)
class Backend:
    name: str
    store: EventStore
    snapshots: SnapshotStore


async def _drop_schema(url: str, schema: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


@asynccontextmanager
async def _backends(servers: Servers) -> AsyncIterator[list[Backend]]:
    """Fresh, empty stores on every backend (memory first); removed afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    path = servers.directory / f"{name}.db"
    postgres = f"{servers.postgres_url}?schema={name}&min_size=1&max_size=2"
    async with AsyncExitStack() as stack:
        # Callbacks run last in, first out: the stores close before cleanup.
        stack.push_async_callback(_drop_schema, servers.postgres_url, name)
        stack.push_async_callback(delete_keys, servers.redis_url, name)
        stack.callback(_remove_database, path)
        enter = stack.enter_async_context
        yield [
            Backend("memory", InMemoryEventStore(), InMemorySnapshotStore()),
            Backend(
                "sqlite",
                await enter(await SQLiteEventStore.open(path)),
                await enter(await SQLiteSnapshotStore.open(path)),
            ),
            Backend(
                "postgres",
                await enter(
                    await PostgresEventStore.open(postgres, page_size=PAGE_SIZE)
                ),
                await enter(await PostgresSnapshotStore.open(postgres)),
            ),
            Backend(
                "redis",
                await enter(
                    await RedisEventStore.open(
                        servers.redis_url, prefix=name, page_size=PAGE_SIZE
                    )
                ),
                await enter(
                    await RedisSnapshotStore.open(servers.redis_url, prefix=name)
                ),
            ),
        ]


async def _resolve(op: Operation, oracle: EventStore) -> Operation:
    """Replace `Current` by a number, from the oracle's state before *op*."""
    if isinstance(op, Append) and isinstance(op.expected, Current):
        version = await _version_or_zero(oracle, op.stream_id)
        return dataclasses.replace(op, expected=version + op.expected.delta)
    if isinstance(op, Save) and isinstance(op.version, Current):
        version = await _version_or_zero(oracle, op.stream_id)
        return dataclasses.replace(op, version=version + op.version.delta)
    return op


async def _version_or_zero(store: EventStore, stream_id: Any) -> int:
    try:
        return await store.stream_version(stream_id)
    except InvalidArgumentError:
        return 0


def _rows(records: Iterable[Recorded]) -> list[tuple[object, ...]]:
    """What must match across backends; recorded_at only has to be in UTC."""
    return [
        (
            r.stream_id,
            r.version,
            r.position,
            r.id,
            r.type,
            r.record.schema_version,
            r.record.payload,
            r.recorded_at.utcoffset() == timedelta(0),
        )
        for r in records
    ]


def _passed(events: list[Event], form: str) -> Any:
    if form == "tuple":
        return tuple(events)
    if form == "generator":
        return (event for event in events)
    if form == "single":
        return events[0] if events else None
    if form == "junk":
        return [*events, "not an event"]
    if form == "none":
        return None
    return list(events)


async def _call(op: Operation, backend: Backend) -> object:
    store, snapshots = backend.store, backend.snapshots
    if isinstance(op, Append):
        events = [ev.build() for ev in op.events]
        return await store.append(
            op.stream_id, _passed(events, op.form), expected_version=op.expected
        )
    if isinstance(op, Read):
        reader = store.read(
            op.stream_id, after_version=op.after_version, limit=op.limit
        )
        return _rows([r async for r in reader])
    if isinstance(op, ReadAll):
        reader = store.read_all(after_position=op.after_position, limit=op.limit)
        return _rows([r async for r in reader])
    if isinstance(op, Version):
        return await store.stream_version(op.stream_id)
    if isinstance(op, Save):
        fields = [op.stream_id, op.version, op.aggregate_type, op.schema_version]
        fields.append(op.state)
        given: Any = Snapshot(*fields) if op.wrapped else tuple(fields)
        await snapshots.save(given)
        return None
    return await snapshots.load(op.stream_id)


async def _outcome(op: Operation, backend: Backend) -> tuple[object, ...]:
    """The result of *op*, or the type of its error (with what must match)."""
    try:
        return ("returned", await _call(op, backend))
    except ConcurrencyError as exc:
        return ("raised", "ConcurrencyError", exc.stream_id, exc.expected, exc.actual)
    except DuplicateEventError as exc:
        return ("raised", "DuplicateEventError", exc.stream_id)
    except OrchestrixError as exc:  # any other documented error, by type
        return ("raised", type(exc).__name__)


async def _contents(backend: Backend, stream_ids: list[str]) -> tuple[object, ...]:
    """Everything the backend stores for *stream_ids*, and its global log."""
    store, snapshots = backend.store, backend.snapshots
    streams = [
        (s, await store.stream_version(s), _rows([r async for r in store.read(s)]))
        for s in stream_ids
    ]
    return (
        _rows([r async for r in store.read_all()]),
        streams,
        [(s, await snapshots.load(s)) for s in stream_ids],
    )


def _check_same(what: str, backends: list[Backend], outcomes: Sequence[object]) -> None:
    oracle, *others = outcomes
    wrong = [
        f"{backend.name} gives {outcome!r}"
        for backend, outcome in zip(backends[1:], others, strict=True)
        if outcome != oracle
    ]
    assert not wrong, f"{what}: memory gives {oracle!r}, but " + "; ".join(wrong)


def _valid_stream_ids(sequence: list[Operation]) -> list[str]:
    found = {"s", "t"}
    for op in sequence:
        stream_id = getattr(op, "stream_id", None)
        try:
            found.add(check_stream_id(stream_id))
        except InvalidArgumentError:
            continue
    return sorted(found)


async def _run_everywhere(sequence: list[Operation], servers: Servers) -> None:
    async with _backends(servers) as backends:
        oracle = backends[0].store
        for index, op in enumerate(sequence):
            concrete = await _resolve(op, oracle)
            outcomes = [await _outcome(concrete, backend) for backend in backends]
            _check_same(f"operation {index} {concrete!r}", backends, outcomes)
        stream_ids = _valid_stream_ids(sequence)
        contents = [await _contents(backend, stream_ids) for backend in backends]
        _check_same("stored data at the end", backends, contents)


@pytest.fixture(scope="module")
def servers(
    postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Servers:
    """Where the durable backends keep their data (module-scoped for hypothesis)."""
    return Servers(postgres_url, redis_url, tmp_path_factory.mktemp("differential"))


# --- the test ---------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(sequence=operations())
# Redis compared snapshot versions as Lua numbers (doubles), so beyond 2**53
# a lower version replaced a higher one.
@example(sequence=[Save("s", 2**63 - 1), Save("s", 2**63 - 2, state=b"older")])
@example(sequence=[Append("s", (Ev("a\x00b"),))])
@example(sequence=[Append("s", (Ev(""),))])
@example(sequence=[Save("s", 1, "account", 2**31)])
@example(sequence=[Save("s", 1, "a\x00b")])
@example(sequence=[Save("s", 1, "\ud800")])
@example(sequence=[Append("s", (Ev("e0"),)), Append("s", (Ev("e0", text="other"),))])
@example(sequence=[Save("s", 2**53 + 1), Save("s", 2**53, state=b"older")])
def test_every_backend_behaves_like_memory(
    servers: Servers, sequence: list[Operation]
) -> None:
    """Any sequence of store operations gives the same outcome on every backend.

    After each operation, SQLite, PostgreSQL and Redis return what the memory
    backend returns (append results, records but for their commit time, stream
    versions, snapshots) or raise the error type it raises (a conflict with
    the same expected and actual version), and at the end they hold the same
    events, streams and snapshots.
    """
    asyncio.run(_run_everywhere(sequence, servers))
