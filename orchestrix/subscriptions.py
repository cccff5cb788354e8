"""Catch-up subscriptions: read a store's global log from a position, then follow it.

A `Subscription` yields every event of an `EventStore` with a position after
the one it starts from, in position order, and then keeps yielding new events
as they are committed. It never skips a committed event and never yields one
twice: it only ever reads after the last position it has seen, and the store
guarantees that no event appears behind a reader (``read_all``).

It works on every `EventStore`. A store that is also a `LiveEventStore` wakes
it as soon as an append commits; any other store is polled every
*poll_interval* seconds once the subscription has caught up, and the live
stores wait at most that long too, as a floor against a lost wake-up.

Filters select events by class (base classes included: ``Event`` means every
event) and by stream-id prefix; events they leave out still move
`Subscription.position` on, so a checkpoint taken from it never reads them
again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Self, final

from orchestrix._utils import check_number, check_stream_id
from orchestrix._waits import wait_for_new
from orchestrix.errors import InvalidArgumentError
from orchestrix.messages import Event, message_class

if TYPE_CHECKING:
    from types import TracebackType

    from orchestrix.protocols import EventStore
    from orchestrix.records import Recorded

__all__ = ["Subscription", "subscribe"]

#: Events read per round trip while catching up.
DEFAULT_BATCH_SIZE: Final = 500
#: Longest wait, in seconds, before looking for new events without a wake-up.
DEFAULT_POLL_INTERVAL: Final = 1.0
_MAX_BATCH_SIZE: Final = 100_000
_MAX_POLL_INTERVAL: Final = 3_600.0


def _event_classes(types: object) -> tuple[type[Event], ...] | None:
    """Return the classes to keep, or None for every event."""
    if types is None:
        return None
    given: object = (types,) if isinstance(types, type) else types
    classes: tuple[object, ...] = (
        tuple(given) if isinstance(given, Iterable) else (given,)
    )
    if not classes or not all(
        isinstance(cls, type) and issubclass(cls, Event) for cls in classes
    ):
        msg = (
            f"types must be an Event subclass or an iterable of them (Event for "
            f"every event), got {types!r:.80}"
        )
        raise InvalidArgumentError(msg)
    return None if Event in classes else classes  # type: ignore[return-value]  # checked above


@final
class Subscription:
    """Every event of a store after a position, in order: first the stored, then new.

    Iterate it with ``async for``; it ends when closed (`close`, or leaving
    ``async with``), or, created with ``follow=False``, once it has caught
    up. Errors of the store (a closed store, a lost server) are raised from
    the iteration; create a new subscription from `position` to resume.

    Create it with `subscribe`.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        after_position: int = 0,
        types: type[Event] | Iterable[type[Event]] | None = None,
        stream_prefix: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        follow: bool = True,
    ) -> None:
        """See `subscribe`."""
        self._position = int(
            check_number("after_position", after_position, 0, 2**63 - 1, integer=True)
        )
        self._classes = _event_classes(types)
        if stream_prefix is not None:
            stream_prefix = check_stream_id(stream_prefix)
        self._prefix = stream_prefix
        self._batch = int(
            check_number("batch_size", batch_size, 1, _MAX_BATCH_SIZE, integer=True)
        )
        self._poll = float(
            check_number(
                "poll_interval", poll_interval, 0.001, _MAX_POLL_INTERVAL, integer=False
            )
        )
        flag: object = follow  # typed callers cannot get it wrong; others can
        if not isinstance(flag, bool):
            msg = f"follow must be True or False, got {follow!r}"
            raise InvalidArgumentError(msg)
        self._follow = follow
        self._store = store
        self._buffer: deque[Recorded] = deque()
        # Position of the last event read from the store, kept or not.
        self._scanned = self._position
        self._caught_up = False
        self._closed = False
        self._woken = asyncio.Event()
        self._matches: dict[str, bool] = {}

    @property
    def position(self) -> int:
        """Position up to which every event was yielded or left out by the filters.

        A subscription created with ``after_position=position`` later goes on
        exactly where this one stopped: use it as the checkpoint.
        """
        return self._position

    @property
    def caught_up(self) -> bool:
        """Whether the subscription has yielded every event stored so far.

        True once a read found nothing newer; it stays true while the
        subscription follows new events live.
        """
        return self._caught_up and not self._buffer

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Recorded:
        while not self._closed:
            if self._buffer:
                recorded = self._buffer.popleft()
                self._position = (
                    self._scanned if not self._buffer else recorded.position
                )
                return recorded
            if await self._read_batch():
                continue
            self._caught_up = True
            if not self._follow:
                break
            await self._wait()
        raise StopAsyncIteration

    async def _read_batch(self) -> bool:
        """Read the next batch after `_scanned`; return whether anything was read."""
        read = 0
        async for recorded in self._store.read_all(
            after_position=self._scanned, limit=self._batch
        ):
            read += 1
            self._scanned = recorded.position
            if self._keeps(recorded):
                self._buffer.append(recorded)
        if read and not self._buffer:
            self._position = self._scanned  # a whole batch left out by the filters
        return read > 0

    def _keeps(self, recorded: Recorded) -> bool:
        prefix = self._prefix
        if prefix is not None and not recorded.stream_id.startswith(prefix):
            return False
        classes = self._classes
        if classes is None:
            return True
        kept = self._matches.get(recorded.type)
        if kept is None:
            # Looked up once per type name, when it is first seen, so classes
            # defined after the subscription started are recognised too.
            cls = message_class(recorded.type)
            kept = self._matches[recorded.type] = cls is not None and issubclass(
                cls, classes
            )
        return kept

    async def _wait(self) -> None:
        """Wait for a new event, a close, or at most one poll interval."""
        await wait_for_new(self._store, self._scanned, self._poll, self._woken)

    async def close(self) -> None:
        """Stop the subscription: iteration ends, even one waiting now. Idempotent."""
        self._closed = True
        self._buffer.clear()
        self._woken.set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = (
            "closed" if self._closed else "live" if self.caught_up else "catching up"
        )
        return f"Subscription(position={self._position}, {state})"


def subscribe(
    store: EventStore,
    *,
    after_position: int = 0,
    types: type[Event] | Iterable[type[Event]] | None = None,
    stream_prefix: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    follow: bool = True,
) -> Subscription:
    """Return a subscription to *store*'s events after *after_position*.

    Args:
        store: Any event store; a `LiveEventStore` is woken by its appends.
        after_position: Yield events with a position after this one (0: all).
        types: Event classes to keep, base classes included (None or
            ``Event``: every event). Events of other types, and events whose
            type has no class in this process, are left out.
        stream_prefix: Keep only events of streams whose id starts with it.
        batch_size: Events read per round trip while catching up.
        poll_interval: Longest wait, in seconds, before looking for new events
            when no wake-up came.
        follow: Keep following new events (True), or end the iteration once
            every event stored so far was yielded (False: catch up and stop,
            for scripts, tests and tools).

    Raises:
        InvalidArgumentError: A bad argument (the message names it).
    """
    return Subscription(
        store,
        after_position=after_position,
        types=types,
        stream_prefix=stream_prefix,
        batch_size=batch_size,
        poll_interval=poll_interval,
        follow=follow,
    )
