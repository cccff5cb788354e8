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
from typing import Final, Protocol, TypeAlias, TypeVar, runtime_checkable

from orchestrix.messages import Event, Message

# The records the ports exchange moved to `orchestrix.records` (ADR 0031);
# importing them from here keeps working (explicit re-exports, needed at run time).
from orchestrix.records import AppendResult as AppendResult  # noqa: PLC0414, TC001
from orchestrix.records import DeadLetter as DeadLetter  # noqa: PLC0414, TC001
from orchestrix.records import Recorded as Recorded  # noqa: PLC0414, TC001
from orchestrix.records import Snapshot as Snapshot  # noqa: PLC0414, TC001

__all__ = [
    "ANY",
    "MAX_STREAM_ID_LENGTH",
    "NO_STREAM",
    "STREAM_EXISTS",
    "CheckpointStore",
    "DurableMessageBus",
    "EventStore",
    "ExpectedVersion",
    "Handler",
    "LiveEventStore",
    "MessageBus",
    "SnapshotStore",
]

M = TypeVar("M", bound=Message)
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
        append whose acknowledgement was lost is safe. Only the ids are
        compared: the events stored first stand.

        Args:
            stream_id: The stream to append to; created by its first append.
            events: The events, in order. Their ids must be unique in the store.
                The built-in backends accept any iterable and consume it once;
                a backend that takes only sequences must reject others with
                `InvalidArgumentError`, never store nothing and succeed.
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
        """Release the store's resources. Idempotent.

        Afterwards every method but `close` raises `ResourceClosedError`. An
        append already running completes or fails as a whole, never in part.
        A read in progress raises `ResourceClosedError` when it next needs the
        store: it may finish the page of events it holds, but it never ends as
        if the stream had no more events.
        """
        ...


@runtime_checkable
class LiveEventStore(EventStore, Protocol):
    """An event store that tells waiting readers when an append commits.

    `orchestrix.subscriptions.Subscription` uses it to follow the log without
    polling; stores without it are polled. Checked with ``isinstance``
    each time a subscription or a projection runner waits.
    """

    async def wait_for_append(self, after_position: int) -> None:
        """Return once an event after *after_position* may be readable.

        Returns at once if the log already holds one. A wake-up is a hint:
        the caller reads again to see what, if anything, is new. Bound the
        wait with ``asyncio.timeout``; cancelling it leaves nothing behind.

        Args:
            after_position: The position the caller has read up to.

        Raises:
            InvalidArgumentError: A negative position.
            ResourceClosedError: The store is closed, or closes while waiting.
        """
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
            InvalidArgumentError: Not a `Snapshot`, a bad stream id, a version
                outside 1 to 2**63 - 1, a schema version outside 1 to 2**31 - 1,
                an aggregate type that is empty or holds NUL or a lone
                surrogate, or state that is not bytes.
        """
        ...

    async def load(self, stream_id: str) -> Snapshot | None:
        """Return the stream's latest snapshot, or None.

        Raises:
            InvalidArgumentError: Bad stream id.
        """
        ...

    async def close(self) -> None:
        """Release the store's resources. Idempotent.

        Afterwards `save` and `load` raise `ResourceClosedError`; a save already
        running completes or fails as a whole.
        """
        ...


class CheckpointStore(Protocol):
    """Named positions in the global log: where each subscriber resumes.

    A subscriber (a projection, a relay) saves the position it has handled up
    to under its name, and starts its next run after it. Names are 1 to
    `MAX_STREAM_ID_LENGTH` characters, like stream ids. Checkpoints live in
    the same backend as the events (its own table or keys), opened from the
    same URL. After `close`, every method but `close` raises
    `ResourceClosedError`.
    """

    async def load(self, name: str) -> int | None:
        """Return the position saved under *name*, or None if none is.

        Raises:
            InvalidArgumentError: A bad name.
        """
        ...

    async def save(self, name: str, position: int) -> None:
        """Save *position* under *name*, replacing what was saved.

        A save moves the checkpoint backwards too (a rebuild starts again
        from 0); processes sharing a name must agree on who saves.

        Raises:
            InvalidArgumentError: A bad name, or a position that is not an int
                from 0 to 2**63 - 1.
        """
        ...

    async def delete(self, name: str) -> None:
        """Forget the checkpoint of *name*; nothing happens if there is none.

        Raises:
            InvalidArgumentError: A bad name.
        """
        ...

    async def load_all(self) -> dict[str, int]:
        """Return every saved checkpoint: name -> position, sorted by name."""
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
            InvalidArgumentError: *message_type* is no Message class, *handler*
                is not async (an ``async def`` function, or an object whose
                ``__call__`` is one), or *group* is not None or a storable name
                of 1 to 255 characters.
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
