"""The values the ports exchange: `Recorded`, `AppendResult`, `Snapshot`, `DeadLetter`.

These are plain, immutable records built by backends and read by applications
and tools. The ports that produce and take them live in `orchestrix.protocols`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar, final

from orchestrix.codec import EncodedMessage, decode, decode_fields
from orchestrix.errors import SerializationError
from orchestrix.messages import Event

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from orchestrix.messages import Message

__all__ = ["AppendResult", "DeadLetter", "Recorded", "Snapshot"]

T = TypeVar("T")


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
            decoded = decode_fields(
                self.id, self.type, self._schema_version, self._payload
            )
            if not isinstance(decoded, Event):
                msg = (
                    f"stored record {self.id!r} of type {self.type!r} decodes to a "
                    f"{type(decoded).__qualname__}, not an Event"
                )
                raise SerializationError(msg)
            event = self._event = decoded
        return event

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
