"""The front end every backend shares: argument checks, encoding and bookkeeping.

A backend's public methods are written once, here. They check and normalise
what the caller gave, encode events, and only then call the backend's own
``_append``, ``_read``, ``_read_all``, ``_stream_version``, ``_save`` and
``_load``, so every backend rejects the same input with the same error and a
backend module holds only what its technology does differently.

Decisions taken here, once for every backend (each pinned by a contract test):

* ``append`` takes any ordered iterable of events and consumes it exactly
  once; a non-iterable, ``None``, a str, a set or a single message is an
  `InvalidArgumentError`.
* Arguments are checked when ``read``/``read_all`` is called, not when the
  iterator is first advanced.
* Versions, positions and limits beyond the 64-bit range every database can
  store are accepted where they have a meaning (a read after them yields
  nothing, a limit that large reads everything, an expected version that
  large is a `ConcurrencyError`) and rejected where they would be stored.
* After ``close``, every method raises `ResourceClosedError`; a read in
  progress raises it when it next fetches from the backend.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Final

from orchestrix._utils import AsyncResource, check_stream_id, storable_text
from orchestrix.codec import EncodedMessage, encode
from orchestrix.errors import ConcurrencyError, InvalidArgumentError
from orchestrix.messages import MAX_SCHEMA_VERSION, Event, Message
from orchestrix.protocols import (
    ANY,
    STREAM_EXISTS,
    CheckpointStore,
    EventStore,
    SnapshotStore,
)
from orchestrix.records import Snapshot

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from orchestrix.protocols import ExpectedVersion
    from orchestrix.records import AppendResult, Recorded

__all__ = [
    "MAX_INT64",
    "FrontCheckpointStore",
    "FrontEventStore",
    "FrontSnapshotStore",
    "check_after",
    "check_checkpoint_name",
    "check_expected_version",
    "check_limit",
    "check_snapshot",
    "encode_events",
]

#: The largest version, position or count a backend stores (a signed 64-bit int).
MAX_INT64: Final = 2**63 - 1

_SEQUENCES: Final = (list, tuple)


def check_after(name: str, value: object) -> int:
    """Return a read's starting point: an int >= 0, capped at `MAX_INT64`.

    Raises:
        InvalidArgumentError: Not an int, a bool, or negative.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{name} must be an int >= 0, got {value!r}"
        raise InvalidArgumentError(msg)
    return min(value, MAX_INT64)


def check_limit(limit: object) -> int | None:
    """Return a read's limit: None (no limit) or an int >= 0.

    A limit of `MAX_INT64` or more reads everything, so it becomes None.

    Raises:
        InvalidArgumentError: Not None, not an int, a bool, or negative.
    """
    if limit is None:
        return None
    count = check_after("limit", limit)
    return None if count >= MAX_INT64 else count


def check_expected_version(expected_version: object) -> ExpectedVersion:
    """Return *expected_version* if it is ANY, NO_STREAM, STREAM_EXISTS or a version.

    Raises:
        InvalidArgumentError: Anything else.
    """
    if expected_version is None:
        return None
    if (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < STREAM_EXISTS
    ):
        msg = (
            f"expected_version must be ANY (None), NO_STREAM (0), STREAM_EXISTS (-1) "
            f"or a version >= 1, got {expected_version!r}"
        )
        raise InvalidArgumentError(msg)
    return int(expected_version)


def _not_an_event(stream_id: str, item: object) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"append to {stream_id!r}: only Event instances can be stored, got "
        f"{type(item).__qualname__}"
    )


def _bad_event_id(stream_id: str, event_id: object) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"append to {stream_id!r}: event id {event_id!r} must be a non-empty str "
        f"without NUL characters or unpaired surrogates"
    )


def _storable_id(event_id: object) -> bool:
    # An id is a key in every backend: PostgreSQL refuses NUL in text, and
    # Redis and SQLite cannot encode a lone surrogate. Written for speed: the
    # common id (a UUID) is ASCII and passes the first three tests.
    return (
        type(event_id) is str
        and event_id != ""
        and "\x00" not in event_id
        and (event_id.isascii() or storable_text(event_id))
    )


def _items(stream_id: str, events: object) -> list[Any] | tuple[Any, ...]:
    """Return *events* as a list or tuple, consuming an iterator once."""
    if type(events) in _SEQUENCES:
        return events  # type: ignore[return-value]  # checked just above
    if (
        events is None
        or isinstance(events, str | bytes | bytearray | Message)
        or not hasattr(events, "__iter__")
    ):
        msg = (
            f"append to {stream_id!r}: events must be an iterable of Event "
            f"instances (a list, for example), got {type(events).__qualname__}; "
            f"to append one event, pass [event]"
        )
        raise InvalidArgumentError(msg)
    if isinstance(events, set | frozenset):
        msg = (
            f"append to {stream_id!r}: events must come in order, and a set has "
            f"none; pass a list"
        )
        raise InvalidArgumentError(msg)
    return list(events)


def encode_events(stream_id: str, events: object) -> list[EncodedMessage]:
    """Return the stored form of *events*, an iterable consumed exactly once.

    Raises:
        InvalidArgumentError: *events* is not an iterable of Event instances,
            holds an id no backend can store, or holds one event id twice.
        SerializationError: An event cannot be stored losslessly.
    """
    items = _items(stream_id, events)
    if len(items) == 1:
        # A single event (the common command) needs no search for repeats.
        event = items[0]
        if isinstance(event, Event) and _storable_id(event.id):
            return [encode(event)]
    for event in items:
        if not isinstance(event, Event):
            raise _not_an_event(stream_id, event)
        if not _storable_id(event.id):
            raise _bad_event_id(stream_id, event.id)
    if len(items) > 1 and len({event.id for event in items}) < len(items):
        seen: set[str] = set()
        for event in items:  # pragma: no branch -- a repeat is known to exist
            if event.id in seen:
                msg = f"append to {stream_id!r}: event id {event.id!r} is given twice"
                raise InvalidArgumentError(msg)
            seen.add(event.id)
    return [encode(event) for event in items]


def check_snapshot(snapshot: object) -> Snapshot:
    """Return *snapshot* if every backend can store it as it is.

    Raises:
        InvalidArgumentError: Not a `Snapshot`, or a field out of range.
    """
    if not isinstance(snapshot, Snapshot):
        msg = f"save() takes a Snapshot, got {type(snapshot).__qualname__}"
        raise InvalidArgumentError(msg)
    stream_id = check_stream_id(snapshot.stream_id)
    for name, largest in (
        ("version", MAX_INT64),
        ("schema_version", MAX_SCHEMA_VERSION),
    ):
        value: object = getattr(snapshot, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= largest
        ):
            msg = (
                f"snapshot of {stream_id!r}: {name} must be an int from 1 to "
                f"{largest}, got {value!r}"
            )
            raise InvalidArgumentError(msg)
    kind: object = snapshot.aggregate_type
    if not isinstance(kind, str) or not kind or not storable_text(kind):
        msg = (
            f"snapshot of {stream_id!r}: aggregate_type must be a non-empty str "
            f"without NUL characters or unpaired surrogates, got {kind!r}"
        )
        raise InvalidArgumentError(msg)
    state: object = snapshot.state
    if type(state) is not bytes:
        msg = (
            f"snapshot of {stream_id!r}: state must be bytes "
            f"(orchestrix.codec.encode_state), got {type(state).__name__}"
        )
        raise InvalidArgumentError(msg)
    return snapshot


class FrontEventStore(AsyncResource, EventStore):
    """The `EventStore` methods, checked once for every backend.

    Subclasses implement the underscored methods, which receive checked
    arguments and encoded events.
    """

    async def append(
        self,
        stream_id: str,
        events: Iterable[Event],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append *events* to the end of a stream, atomically.

        See `orchestrix.protocols.EventStore.append`; *events* may be any
        iterable of events, consumed exactly once.

        Raises:
            ConcurrencyError: The stream is not at *expected_version*.
            DuplicateEventError: An event id is already stored, other than as
                an exact retry of this append.
            SerializationError: An event cannot be stored losslessly.
            InvalidArgumentError: Bad stream id, expected version or events.
            ResourceClosedError: The store is closed.
        """
        if self._closed:  # tested inline: this is the hot path
            self._check_open()
        stream_id = check_stream_id(stream_id)
        expected = check_expected_version(expected_version)
        records = encode_events(stream_id, events)
        if expected is None or expected <= MAX_INT64:
            return await self._append(stream_id, records, expected)
        # No stream reaches this version; ask the backend with the largest
        # version it can compare, so an exact retry is still recognised.
        try:
            return await self._append(stream_id, records, MAX_INT64)
        except ConcurrencyError as exc:
            raise ConcurrencyError(stream_id, expected, exc.actual) from None

    def read(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        limit: int | None = None,
    ) -> AsyncIterator[Recorded]:
        """Yield a stream's events with version > *after_version*, in order.

        See `orchestrix.protocols.EventStore.read`. Arguments are checked
        when called, before iteration starts.

        Raises:
            InvalidArgumentError: Bad stream id, negative version or limit.
            ResourceClosedError: The store is closed (also raised by a read in
                progress at its next page).
        """
        if self._closed:
            self._check_open()
        return self._read(
            check_stream_id(stream_id),
            check_after("after_version", after_version),
            check_limit(limit),
        )

    def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int | None = None,
    ) -> AsyncIterator[Recorded]:
        """Yield every event with position > *after_position*, by position.

        See `orchestrix.protocols.EventStore.read_all`. Arguments are checked
        when called, before iteration starts.

        Raises:
            InvalidArgumentError: Negative position or limit.
            ResourceClosedError: The store is closed (also raised by a read in
                progress at its next page).
        """
        if self._closed:
            self._check_open()
        return self._read_all(
            check_after("after_position", after_position), check_limit(limit)
        )

    async def stream_version(self, stream_id: str) -> int:
        """Return the stream's version: its number of events (0 when missing).

        Raises:
            InvalidArgumentError: Bad stream id.
            ResourceClosedError: The store is closed.
        """
        if self._closed:
            self._check_open()
        return await self._stream_version(check_stream_id(stream_id))

    @abstractmethod
    async def _append(
        self,
        stream_id: str,
        records: list[EncodedMessage],
        expected_version: int | None,
    ) -> AppendResult:
        """Store *records* as `append` promises; arguments are checked."""

    @abstractmethod
    def _read(
        self, stream_id: str, after: int, limit: int | None
    ) -> AsyncIterator[Recorded]:
        """Yield the stream's records after version *after*, at most *limit*."""

    @abstractmethod
    def _read_all(self, after: int, limit: int | None) -> AsyncIterator[Recorded]:
        """Yield the records after position *after*, at most *limit*."""

    @abstractmethod
    async def _stream_version(self, stream_id: str) -> int:
        """Return the stream's number of events."""


class FrontSnapshotStore(AsyncResource, SnapshotStore):
    """The `SnapshotStore` methods, checked once for every backend."""

    async def save(self, snapshot: Snapshot) -> None:
        """Keep *snapshot* as its stream's latest, unless a newer one is stored.

        See `orchestrix.protocols.SnapshotStore.save`.

        Raises:
            InvalidArgumentError: Not a Snapshot, a bad stream id, a version
                outside 1 to 2**63 - 1, a schema version outside 1 to
                2**31 - 1, an aggregate type that is empty or holds NUL or a
                lone surrogate, or state that is not bytes.
            ResourceClosedError: The store is closed.
        """
        self._check_open()
        await self._save(check_snapshot(snapshot))

    async def load(self, stream_id: str) -> Snapshot | None:
        """Return the stream's latest snapshot, or None.

        Raises:
            InvalidArgumentError: Bad stream id.
            ResourceClosedError: The store is closed.
        """
        self._check_open()
        return await self._load(check_stream_id(stream_id))

    @abstractmethod
    async def _save(self, snapshot: Snapshot) -> None:
        """Store *snapshot* unless a newer one is stored; it is checked."""

    @abstractmethod
    async def _load(self, stream_id: str) -> Snapshot | None:
        """Return the stream's latest snapshot, or None."""


def check_checkpoint_name(name: object) -> str:
    """Return *name* if every backend can keep it (the rules of stream ids).

    Raises:
        InvalidArgumentError: Not a str, empty, too long, or holding NUL or an
            unpaired surrogate.
    """
    try:
        return check_stream_id(name)
    except InvalidArgumentError as exc:
        msg = str(exc).replace("stream id", "checkpoint name")
        raise InvalidArgumentError(msg) from None


class FrontCheckpointStore(AsyncResource, CheckpointStore):
    """The `CheckpointStore` methods, checked once for every backend."""

    async def load(self, name: str) -> int | None:
        """Return the position saved under *name*, or None.

        Raises:
            InvalidArgumentError: A bad name.
            ResourceClosedError: The store is closed.
        """
        self._check_open()
        return await self._load(check_checkpoint_name(name))

    async def save(self, name: str, position: int) -> None:
        """Save *position* under *name* (see `CheckpointStore.save`).

        Raises:
            InvalidArgumentError: A bad name, or a position that is not an int
                from 0 to 2**63 - 1.
            ResourceClosedError: The store is closed.
        """
        self._check_open()
        name = check_checkpoint_name(name)
        value: object = position
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (0 <= value <= MAX_INT64)
        ):
            msg = (
                f"checkpoint {name!r}: position must be an int from 0 to 2**63 - 1, "
                f"got {position!r}"
            )
            raise InvalidArgumentError(msg)
        await self._save(name, position)

    async def delete(self, name: str) -> None:
        """Forget the checkpoint of *name*, if there is one.

        Raises:
            InvalidArgumentError: A bad name.
            ResourceClosedError: The store is closed.
        """
        self._check_open()
        await self._delete(check_checkpoint_name(name))

    async def load_all(self) -> dict[str, int]:
        """Return every checkpoint, name -> position, sorted by name.

        Raises:
            ResourceClosedError: The store is closed.
        """
        self._check_open()
        return dict(sorted((await self._load_all()).items()))

    @abstractmethod
    async def _load(self, name: str) -> int | None:
        """Return the position saved under the checked *name*, or None."""

    @abstractmethod
    async def _save(self, name: str, position: int) -> None:
        """Save the checked *position* under the checked *name*."""

    @abstractmethod
    async def _delete(self, name: str) -> None:
        """Forget the checkpoint of the checked *name*."""

    @abstractmethod
    async def _load_all(self) -> dict[str, int]:
        """Return every checkpoint, in any order."""
