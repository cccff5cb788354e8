"""The ports: `EventStore`, `SnapshotStore` and `MessageBus`, as Protocols.

Backends satisfy these structurally; applications depend on them only. Each
docstring is the contract, and `orchestrix.testing` holds its executable copy.

Versions and positions (see ADR 0003):

* a stream's version is the number of events in it: the first event has
  version 1, an empty or missing stream has version 0;
* every stored event has a global position 1, 2, 3, ... in the order
  `EventStore.read_all` yields them, and once a reader has seen position p no
  event with a position <= p can appear later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar, final

import msgspec

from orchestrix.codec import EncodedMessage, _decoders, decode, decode_fields
from orchestrix.messages import Event, Message, _registry

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "ANY",
    "MAX_STREAM_ID_LENGTH",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "DeadLetter",
    "DurableMessageBus",
    "EventStore",
    "ExpectedVersion",
    "Handler",
    "MessageBus",
    "Recorded",
    "Snapshot",
    "SnapshotStore",
]

M = TypeVar("M", bound=Message)
T = TypeVar("T")
M_contra = TypeVar("M_contra", bound=Message, contravariant=True)

#: An int N (the stream must be at version N), or one of the constants below.
ExpectedVersion: TypeAlias = int | None
#: Append without checking the stream's version.
ANY: Final = None
#: The stream must not exist yet (version 0).
NO_STREAM: Final = 0
#: The stream must already hold at least one event.
STREAM_EXISTS: Final = -1
#: Longest stream id, in characters, every backend accepts.
MAX_STREAM_ID_LENGTH: Final = 255

#: An async callable that handles one message.
Handler: TypeAlias = Callable[[M], Awaitable[None]]


@final
@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append stored.

    Attributes:
        version: The stream's version after the append.
        positions: Global position of each appended event, in order.
    """

    version: int
    positions: tuple[int, ...]

    @property
    def first_position(self) -> int | None:
        """Position of the first appended event (None for an empty append)."""
        return self.positions[0] if self.positions else None

    @property
    def last_position(self) -> int | None:
        """Position of the last appended event (None for an empty append)."""
        return self.positions[-1] if self.positions else None


_new_record: Final = tuple.__new__
_new_object: Final = object.__new__


@final
class Recorded:
    """A stored event with its place in the store.

    The event is decoded on first access of `event`, so tools without the
    application's classes can read every record through `record`.

    Backends reading many rows may build records with `Recorded.from_row`,
    which keeps the row's fields as they are and builds `record`, parses
    `recorded_at` and decodes `event` only when asked.

    Attributes:
        stream_id: The stream holding the event.
        version: The event's version in its stream (1 for the first).
        position: The event's global position in the store.
        id: The event id.
        type: The event type name.
    """

    __slots__ = (
        "_event",
        "_parse_time",
        "_payload",
        "_record",
        "_recorded_at",
        "_schema_version",
        "id",
        "position",
        "stream_id",
        "type",
        "version",
    )

    def __init__(
        self,
        stream_id: str,
        version: int,
        position: int,
        recorded_at: datetime,
        record: EncodedMessage,
    ) -> None:
        self.stream_id = stream_id
        self.version = version
        self.position = position
        self._recorded_at: object = recorded_at
        self._parse_time: Callable[[Any], datetime] | None = None
        self._record: EncodedMessage | None = record
        self.id, self.type, self._schema_version, self._payload = record
        self._event: Event | None = None

    @classmethod
    def from_row(  # noqa: PLR0917 -- one positional argument per stored column
        cls,
        stream_id: str,
        version: int,
        position: int,
        recorded_at: T,
        event_id: str,
        type_name: str,
        schema_version: int,
        payload: bytes,
        parse_time: Callable[[T], datetime] | None = None,
    ) -> Recorded:
        """Return a record from the columns a backend stores, without copying.

        Equal to ``Recorded(stream_id, version, position, parse_time(recorded_at),
        EncodedMessage(event_id, type_name, schema_version, payload))``, but the
        `EncodedMessage` is built and ``parse_time`` is called only when
        `record` or `recorded_at` is first read, so a read that only decodes
        events allocates one object per row.

        Args:
            stream_id: The stream holding the event.
            version: The event's version in its stream.
            position: The event's global position.
            recorded_at: The commit time: an aware datetime, or the stored value
                *parse_time* turns into one.
            event_id: The event id.
            type_name: The event type name.
            schema_version: The schema version it was written with.
            payload: The stored JSON payload.
            parse_time: Turns *recorded_at* into an aware datetime; None when
                *recorded_at* already is one.
        """
        self = _new_object(cls)
        self.stream_id = stream_id
        self.version = version
        self.position = position
        self._recorded_at = recorded_at
        self._parse_time = parse_time
        self._record = None
        self.id = event_id
        self.type = type_name
        self._schema_version = schema_version
        self._payload = payload
        self._event = None
        return self

    @property
    def recorded_at(self) -> datetime:
        """When the store committed the event (UTC)."""
        parse = self._parse_time
        if parse is not None:
            self._recorded_at = parse(self._recorded_at)
            self._parse_time = None
        return self._recorded_at  # type: ignore[return-value]  # parsed just above

    @property
    def record(self) -> EncodedMessage:
        """The stored, undecoded form."""
        record = self._record
        if record is None:
            record = self._record = _new_record(
                EncodedMessage,
                (self.id, self.type, self._schema_version, self._payload),
            )
        return record

    @property
    def event(self) -> Event:
        """The decoded event.

        Raises:
            UnknownMessageType: If no class is registered for the record's type.
            SerializationError: If the record cannot be decoded into its class.
        """
        event = self._event
        if event is None:
            # codec.decode_fields inlined for a known type at its current
            # version; anything else (and every error) takes the full path.
            cls = _registry.get(self.type)
            decoder = None if cls is None else _decoders.get(cls)
            if (
                decoder is None
                or cls is None
                or self._schema_version != cls.__message_version__
            ):
                decoded = self._decode()
            else:
                try:
                    decoded = decoder(self._payload)
                except msgspec.DecodeError:
                    decoded = self._decode()  # raises, naming the record
            if not isinstance(decoded, Event):
                msg = f"record {self.id!r} is a {self.type!r}, no Event"
                raise TypeError(msg)
            event = self._event = decoded
        return event

    def _decode(self) -> Message:
        return decode_fields(self.id, self.type, self._schema_version, self._payload)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recorded):
            return NotImplemented
        return (
            self.stream_id == other.stream_id
            and self.version == other.version
            and self.position == other.position
            and self.recorded_at == other.recorded_at
            and self.record == other.record
        )

    def __hash__(self) -> int:
        return hash((self.position, self.id))

    def __repr__(self) -> str:
        return (
            f"Recorded(stream_id={self.stream_id!r}, version={self.version}, "
            f"position={self.position}, type={self.type!r}, "
            f"id={self.id!r})"
        )


@final
@dataclass(frozen=True, slots=True)
class Snapshot:
    """An aggregate's state at one version of its stream.

    Attributes:
        stream_id: The aggregate's stream.
        version: The stream version the state reflects.
        aggregate_type: Name of the aggregate class that took it.
        schema_version: The aggregate class's state schema version then.
        state: The state as JSON bytes (see `orchestrix.codec.encode_state`).
    """

    stream_id: str
    version: int
    aggregate_type: str
    schema_version: int
    state: bytes


class EventStore(Protocol):
    """Append-only store of event streams with a global order.

    Stream ids are opaque strings of 1 to `MAX_STREAM_ID_LENGTH` characters
    (any Unicode except NUL and unpaired surrogates); others raise
    `InvalidArgumentError` before anything is read or written. After `close`,
    every method but `close` raises `ResourceClosedError`; `close` is idempotent.
    """

    async def append(
        self,
        stream_id: str,
        events: Sequence[Event],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append *events* to the end of a stream, atomically.

        All events are stored, with consecutive versions and increasing global
        positions, or none is. Appending no events stores nothing, still checks
        *expected_version*, and returns the current version with no positions.

        Idempotency: if every event (by id) is already stored in this stream,
        consecutively and in this order, nothing is written and the original
        result is returned, whatever *expected_version* says, so retrying an
        append whose acknowledgement was lost is safe.

        Args:
            stream_id: The stream to append to; created by its first append.
            events: The events, in order. Their ids must be unique in the store.
            expected_version: ``ANY`` (None) for no check; an int N: the stream
                must be at version N (``NO_STREAM``, 0: must not exist);
                ``STREAM_EXISTS``: must hold at least one event.

        Returns:
            The new stream version and the events' global positions.

        Raises:
            ConcurrencyError: The stream is not at *expected_version*.
            DuplicateEventError: An event id is already stored, other than as
                an exact retry of this append.
            SerializationError: An event cannot be encoded.
            InvalidArgumentError: Bad stream id, expected version or event list.
        """
        ...

    def read(
        self,
        stream_id: str,
        *,
        after_version: int = 0,
        limit: int | None = None,
    ) -> AsyncIterator[Recorded]:
        """Yield a stream's events with version > *after_version*, in order.

        Lazy: events are fetched in pages as the iterator is consumed. A missing
        stream yields nothing.

        Args:
            stream_id: The stream to read.
            after_version: Skip events up to and including this version.
            limit: Yield at most this many events (None: all).

        Raises:
            InvalidArgumentError: Bad stream id, negative version or limit.
        """
        ...

    def read_all(
        self,
        *,
        after_position: int = 0,
        limit: int | None = None,
    ) -> AsyncIterator[Recorded]:
        """Yield every event with position > *after_position*, by position.

        Positions are gap-free and a reader never sees an event appear behind
        one it has already read, even with concurrent writers.

        Args:
            after_position: Skip events up to and including this position.
            limit: Yield at most this many events (None: all).

        Raises:
            InvalidArgumentError: Negative position or limit.
        """
        ...

    async def stream_version(self, stream_id: str) -> int:
        """Return the stream's version: its number of events (0 when missing).

        Raises:
            InvalidArgumentError: Bad stream id.
        """
        ...

    async def close(self) -> None:
        """Release the store's resources. Idempotent."""
        ...


class SnapshotStore(Protocol):
    """Latest aggregate snapshot per stream.

    After `close`, `save` and `load` raise `ResourceClosedError`.
    """

    async def save(self, snapshot: Snapshot) -> None:
        """Keep *snapshot* as its stream's latest, unless a newer one is stored.

        A snapshot with a lower version than the stored one is ignored, so
        racing writers never move a stream's snapshot backwards.

        Raises:
            InvalidArgumentError: Bad stream id or a version < 1.
        """
        ...

    async def load(self, stream_id: str) -> Snapshot | None:
        """Return the stream's latest snapshot, or None."""
        ...

    async def close(self) -> None:
        """Release the store's resources. Idempotent."""
        ...


class MessageBus(Protocol):
    """Publishes messages to subscribed handlers.

    Events fan out to every handler subscribed to their class or a base class
    (subscribing to `Event` receives every event). A command type has exactly
    one handler. Handlers subscribed with the same *group* in several
    processes compete for messages; different groups each receive every
    message. With ``group=None`` the group is the handler's qualified name, so
    one handler run by many processes competes, and distinct handlers fan out.
    """

    def subscribe(
        self,
        message_type: type[M],
        handler: Handler[M],
        *,
        group: str | None = None,
    ) -> None:
        """Call *handler* for every published message of *message_type*.

        Raises:
            HandlerRegistrationError: A command type already has a handler in
                this process, or the bus is already started and cannot take
                new subscriptions.
        """
        ...

    async def publish(self, message: Message) -> None:
        """Publish *message* to its subscribers.

        The in-memory bus returns after every handler has run, in subscription
        order; if any raised, it raises one `HandlerError` after all ran.
        Durable buses return once the message is stored; handlers run in the
        workers started by `start`, at least once each.

        Raises:
            NoHandlerError: *message* is a command and no handler subscribes
                to its type (in any process, for durable buses).
            SerializationError: *message* cannot be encoded.
        """
        ...

    async def start(self) -> None:
        """Begin delivering messages to this process's handlers. Idempotent."""
        ...

    async def close(self) -> None:
        """Stop delivering, wait for running handlers, release resources. Idempotent."""
        ...


@final
@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message a group's handler failed on too many times.

    Attributes:
        message_id: The message id.
        group: The consumer group that gave up on it.
        attempts: How many deliveries were tried.
        error: The last handler error, as text.
        failed_at: When it was dead-lettered.
        record: The message in stored form.
    """

    message_id: str
    group: str
    attempts: int
    error: str
    failed_at: datetime
    record: EncodedMessage

    @property
    def message(self) -> Message:
        """The decoded message (see `orchestrix.codec.decode` for errors)."""
        return decode(self.record)


class DurableMessageBus(MessageBus, Protocol):
    """A bus that stores messages and delivers them at least once.

    A delivery is acknowledged when its handler returns; a handler that raises
    or a consumer that dies leaves the message to be redelivered after the
    visibility timeout. After the maximum number of attempts the message moves
    to the group's dead letters, which can be listed and replayed. Messages
    survive process restarts. The message id is the idempotency key: handlers
    must tolerate a redelivery of the same id.
    """

    async def dead_letters(
        self, *, group: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Return up to *limit* dead letters, oldest first (one group, or all)."""
        ...

    async def replay_dead_letter(self, message_id: str, *, group: str) -> bool:
        """Move a dead letter back to its group's queue with fresh attempts.

        Returns:
            True if it was found and requeued, False if there was none.
        """
        ...
