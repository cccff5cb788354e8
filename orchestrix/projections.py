"""Projections: read models built from the global log, at least once.

A `Projection` declares one async handler per event class with `handles`;
a `ProjectionRunner` feeds it every stored event after its checkpoint, in
position order, and saves the checkpoint in a `CheckpointStore`::

    class Balances(Projection):
        name = "balances"

        def __init__(self) -> None:
            self.balances: dict[str, int] = {}

        @handles(Deposited)
        async def _deposited(self, event: Deposited, recorded: Recorded) -> None:
            self.balances[recorded.stream_id] = (
                self.balances.get(recorded.stream_id, 0) + event.amount
            )

    async with ProjectionRunner(Balances(), store, checkpoints) as runner:
        await runner.catch_up()

Delivery is at least once: the checkpoint is saved after the handler returns,
so a process that dies between the two handles that event again on its next
run. Handlers get the event's `Recorded` (stream id, version, global position,
commit time) and can deduplicate by position. A failing handler is retried
with exponential backoff, then the runner stops, keeps its checkpoint at the
last handled event and raises `ProjectionError`: no event is skipped silently
(ADR 0038). Parking failed events and exactly-once read models written in the
checkpoint's SQL transaction are later steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self, TypeVar, cast
from typing import final as final_class

from orchestrix._dispatch import collect_methods, method_for
from orchestrix._projection_runner import event_at, find_head
from orchestrix._utils import check_number, check_stream_id
from orchestrix._waits import sleep_unless, wait_for_new
from orchestrix.errors import (
    ConfigurationError,
    InvalidArgumentError,
    ProjectionError,
    ResourceClosedError,
)
from orchestrix.messages import Event, message_class
from orchestrix.subscriptions import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_POLL_INTERVAL,
    subscribe,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from types import TracebackType

    from orchestrix.protocols import CheckpointStore, EventStore
    from orchestrix.records import Recorded

__all__ = ["Projection", "ProjectionRunner", "ProjectionStatus", "handles"]

P = TypeVar("P", bound="Projection")
E = TypeVar("E", bound=Event)

# Attribute set on functions decorated with @handles: the event classes handled.
_MARK: Final = "__orchestrix_handles__"

State = Literal["idle", "catching up", "live", "stopped", "failed"]


def handles(
    *event_types: type[E],
) -> Callable[
    [Callable[[P, E, Recorded], Awaitable[None]]],
    Callable[[P, E, Recorded], Awaitable[None]],
]:
    """Declare the decorated ``async def`` method as the handler of *event_types*.

    The method is called as ``await handler(event, recorded)`` for every stored
    event of those classes or their subclasses; an event goes to the handler of
    its own class or, failing that, of its nearest base class that has one.
    Decorators may be stacked.

    Args:
        event_types: One or more `Event` subclasses the method handles.

    Returns:
        A decorator that marks the method and returns it unchanged.

    Raises:
        ConfigurationError: No event class was given, an argument is not an
            `Event` subclass, or the decorated object is not an ``async def``
            function.
    """
    if not event_types:
        msg = "@handles needs at least one Event class, e.g. @handles(Deposited)"
        raise ConfigurationError(msg)
    checked: tuple[object, ...] = event_types  # callers may pass anything
    for event_type in checked:
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            msg = (
                f"@handles takes Event subclasses, got {event_type!r}: pass the "
                f"event class itself, e.g. @handles(Deposited)"
            )
            raise ConfigurationError(msg)

    def decorate(
        function: Callable[[P, E, Recorded], Awaitable[None]],
    ) -> Callable[[P, E, Recorded], Awaitable[None]]:
        if not inspect.iscoroutinefunction(function):
            msg = (
                f"@handles decorates a method defined with async def, got "
                f"{function!r:.80}"
            )
            raise ConfigurationError(msg)
        handled: tuple[type[Event], ...] = getattr(function, _MARK, ())
        cast("Any", function).__orchestrix_handles__ = handled + event_types
        return function

    return decorate


class Projection:
    """Base class of projections: one async handler per event class.

    Subclasses set the class attribute `name`, the checkpoint name (1 to 255
    characters, no NUL or lone surrogate), and declare handlers with
    `handles`. Events without a handler are skipped, and the runner's
    subscription only reads the handled classes (`handled_types`). A class
    created with the keyword ``abstract=True`` is a base for other projections
    and needs no name.

    Attributes:
        name: The projection's checkpoint name.
    """

    name: ClassVar[str]

    # event class -> name of its handler, for this class and its bases
    _handlers: ClassVar[dict[type[Event], str]] = {}
    # event class -> name of the handler it goes to (nearest handled base)
    _dispatch_cache: ClassVar[dict[type[Event], str | None]] = {}

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            name: object = cls.__dict__.get("name")
            try:
                check_stream_id(name)
            except InvalidArgumentError as exc:
                detail = str(exc).replace("stream id", "name")
                msg = (
                    f"projection {cls.__qualname__} needs its own class attribute "
                    f"name, a checkpoint name of 1 to 255 storable characters "
                    f"(e.g. name = 'balances'): {detail}"
                )
                raise ConfigurationError(msg) from None
        cls._handlers = collect_methods(
            cls,
            # The bases' own tables, read by their class.
            (b._handlers for b in cls.__bases__ if issubclass(b, Projection)),  # noqa: SLF001
            _MARK,
            "handlers",
        )
        cls._dispatch_cache = {}

    @classmethod
    def handled_types(cls) -> tuple[type[Event], ...]:
        """Return the event classes this projection has handlers for."""
        return tuple(cls._handlers)

    @classmethod
    def handler_for(cls, event_type: type[Event]) -> str | None:
        """Return the name of the method handling *event_type*, or None."""
        return method_for(cls._handlers, cls._dispatch_cache, event_type)

    async def reset(self) -> None:
        """Empty the read model before a rebuild (override it).

        `ProjectionRunner.rebuild` calls it after deleting the checkpoint and
        before handling every event again from position 0. The default raises,
        so a projection that cannot reset is never replayed onto its old state.

        Raises:
            ConfigurationError: The projection does not override `reset`.
        """
        msg = (
            f"projection {type(self).__qualname__} cannot be rebuilt: override "
            f"'async def reset(self)' to empty its read model first"
        )
        raise ConfigurationError(msg)


@final_class
@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """What a `ProjectionRunner` reports about its projection.

    Attributes:
        name: The projection's checkpoint name.
        checkpoint: Position up to which every event was handled or skipped
            (the saved checkpoint lags it by fewer than *checkpoint_every*
            events until the next save).
        head: The last position in the log the runner knows of: probed when
            each catch-up starts, then raised by every event it reads. It is
            not re-read on each call, so it may be behind a log that grew since.
        lag: ``head - checkpoint``: events still to read (0 when caught up).
        state: "idle" (not running), "catching up", "live" (caught up and
            following), "stopped" (closed) or "failed" (a handler kept failing).
        last_error: The last failure, as text, or None.
        events_handled: Events passed to a handler successfully by this runner.
        events_per_second: Handled events per second of running time.
    """

    name: str
    checkpoint: int
    head: int
    lag: int
    state: State
    last_error: str | None
    events_handled: int
    events_per_second: float


@final_class
class ProjectionRunner:
    """Feed a projection every stored event after its checkpoint, at least once.

    `catch_up` handles what is stored and returns; `run` goes on following new
    events until `close`. Only one of `catch_up`, `run` and `rebuild` runs at
    a time. The checkpoint is saved every *checkpoint_every* handled events,
    at the end of every catch-up, on failure and on close.

    A handler that raises is called again after *backoff* seconds, doubling up
    to *max_backoff*, *retries* times; then the runner stops in state "failed"
    and raises `ProjectionError`, with the checkpoint at the last handled
    event, so the next run starts with the failed event.
    """

    def __init__(
        self,
        projection: Projection,
        store: EventStore,
        checkpoints: CheckpointStore,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        checkpoint_every: int = 1,
        retries: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
    ) -> None:
        """Prepare a runner; nothing is read until `catch_up` or `run`.

        Args:
            projection: The projection to feed.
            store: The event store whose global log it reads.
            checkpoints: Where its checkpoint is kept (beside the events).
            batch_size: Events read per round trip.
            poll_interval: Longest wait, in seconds, for new events when the
                store gives no wake-up (`run` only).
            checkpoint_every: Save the checkpoint after this many handled events.
            retries: Further attempts after a handler's first failure.
            backoff: Seconds before the first retry; doubled on each retry.
            max_backoff: Longest wait between two attempts, in seconds.

        Raises:
            InvalidArgumentError: A bad argument (the message names it).
        """
        if not isinstance(cast("object", projection), Projection):
            msg = f"projection must be a Projection instance, got {projection!r:.80}"
            raise InvalidArgumentError(msg)
        # Build (and drop) a subscription so its own checks run now, not at start.
        subscribe(store, batch_size=batch_size, poll_interval=poll_interval)
        self._every = int(
            check_number("checkpoint_every", checkpoint_every, 1, 1e9, integer=True)
        )
        self._retries = int(check_number("retries", retries, 0, 1_000, integer=True))
        self._backoff = check_number("backoff", backoff, 0, 3_600, integer=False)
        self._max_backoff = check_number(
            "max_backoff", max_backoff, 0, 3_600, integer=False
        )
        self._projection = projection
        self._store = store
        self._checkpoints = checkpoints
        self._batch = batch_size
        self._poll = poll_interval
        self._name = type(projection).name
        self._types = type(projection).handled_types()
        self._position = 0  # handled (or skipped) up to here
        self._saved: int | None = None  # what the checkpoint store holds
        self._loaded = False
        self._head = 0
        self._state: State = "idle"
        self._last_error: str | None = None
        self._handled = 0
        self._unsaved = 0
        self._running_time = 0.0
        self._started: float | None = None
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def projection(self) -> Projection:
        """The projection this runner feeds."""
        return self._projection

    async def catch_up(self) -> None:
        """Handle every event stored after the checkpoint, save it, and return.

        Raises:
            ProjectionError: A handler kept failing; the state is "failed".
            ResourceClosedError: The runner is closed.
            InvalidArgumentError: The runner is already running.
        """
        async with self._running():
            await self._pass()
            if not self._stop.is_set():
                self._state = "idle"

    async def run(self) -> None:
        """Catch up, then handle new events as they are stored, until `close`.

        Raises:
            ProjectionError: A handler kept failing; the state is "failed".
            ResourceClosedError: The runner is closed.
            InvalidArgumentError: The runner is already running.
        """
        async with self._running():
            while not self._stop.is_set():
                await self._pass()
                self._state = "live"
                await wait_for_new(self._store, self._position, self._poll, self._stop)

    async def rebuild(self) -> None:
        """Delete the checkpoint, call the projection's `reset`, then catch up from 0.

        The checkpoint goes first, so a crash between the steps replays too
        much (at least once), never too little.

        Raises:
            ConfigurationError: The projection does not override `reset`.
            ProjectionError: A handler kept failing; the state is "failed".
            ResourceClosedError: The runner is closed.
            InvalidArgumentError: The runner is already running.
        """
        if type(self._projection).reset is Projection.reset:
            # Checked before anything changes: the checkpoint must survive.
            await self._projection.reset()
        async with self._running():
            await self._checkpoints.delete(self._name)
            self._position, self._saved, self._head = 0, None, 0
            self._loaded = True
            await self._projection.reset()
            await self._pass()
            if not self._stop.is_set():
                self._state = "idle"

    def status(self) -> ProjectionStatus:
        """Return the projection's checkpoint, head, lag, state and counters."""
        running = self._running_time
        if self._started is not None:
            running += time.monotonic() - self._started
        head = max(self._head, self._position)
        return ProjectionStatus(
            name=self._name,
            checkpoint=self._position,
            head=head,
            lag=head - self._position,
            state=self._state,
            last_error=self._last_error,
            events_handled=self._handled,
            events_per_second=self._handled / running if running > 0 else 0.0,
        )

    async def close(self) -> None:
        """Stop after the event in hand, save the checkpoint, and wait. Idempotent.

        A running `run` or `catch_up` returns normally; a handler waiting
        between retries is not called again. Later calls of `run`, `catch_up`
        and `rebuild` raise `ResourceClosedError`. Call it from another task,
        never from a handler, which `close` would wait for.
        """
        self._closed = True
        self._stop.set()
        await self._idle.wait()  # the running loop ends after its event
        await self._save()
        if self._state != "failed":
            self._state = "stopped"

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
        return f"ProjectionRunner({self._name!r}, {self._state}, at {self._position})"

    # --- internals -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """Mark the runner as running; record how it stopped."""
        if self._closed:
            msg = f"projection runner {self._name!r} is closed"
            raise ResourceClosedError(msg)
        if self._started is not None:
            msg = f"projection runner {self._name!r} is already running"
            raise InvalidArgumentError(msg)
        started = self._started = time.monotonic()
        self._idle.clear()
        self._last_error = None
        try:
            with contextlib.suppress(_Closing):
                yield
        except ProjectionError:
            raise
        except asyncio.CancelledError:
            # The task running the runner was cancelled instead of closed:
            # keep what was handled (the position only covers handled events).
            with contextlib.suppress(Exception):
                await asyncio.shield(self._save())
            raise
        except Exception as exc:
            self._state, self._last_error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._running_time += time.monotonic() - started
            self._started = None
            self._idle.set()
            if self._state in ("catching up", "live"):
                self._state = "stopped" if self._stop.is_set() else "idle"
            elif self._stop.is_set() and self._state != "failed":
                self._state = "stopped"

    async def _pass(self) -> None:
        """Read from the checkpoint to the head once, handling what is kept."""
        if not self._loaded:
            saved = await self._checkpoints.load(self._name)
            if saved and not await event_at(self._store, saved):
                head = await find_head(self._store, 0)
                msg = (
                    f"the checkpoint of projection {self._name!r} is at position "
                    f"{saved}, but the store's last event is at {head}: the "
                    f"checkpoints and the events do not belong together (restored "
                    f"from different backups, or another URL); nothing was handled. "
                    f"Rebuild the projection, or save the right checkpoint"
                )
                raise ConfigurationError(msg)
            self._saved = saved
            self._position = saved or 0
            self._loaded = True
        self._state = "catching up"
        self._head = await find_head(self._store, max(self._head, self._position))
        async with subscribe(
            self._store,
            after_position=self._position,
            types=self._types or None,
            batch_size=self._batch,
            follow=False,
        ) as subscription:
            async for recorded in subscription:
                self._head = max(self._head, recorded.position)
                await self._handle(recorded)
                self._position = subscription.position
                self._unsaved += 1
                if self._unsaved >= self._every:
                    await self._save()
                if self._stop.is_set():
                    break
            else:
                self._position = subscription.position  # past skipped events too
        self._head = max(self._head, self._position)
        await self._save()

    async def _handle(self, recorded: Recorded) -> None:
        cls = message_class(recorded.type)
        name = (
            type(self._projection).handler_for(cls)
            if cls is not None and issubclass(cls, Event)
            else None
        )
        if name is None:
            return  # no handler: skipped, and the checkpoint moves past it
        handler: Callable[[Event, Recorded], Awaitable[None]] = getattr(
            self._projection, name
        )
        attempt = 0
        while True:
            try:
                await handler(recorded.event, recorded)
            except Exception as exc:  # noqa: BLE001 -- any handler error is retried, then re-raised as ProjectionError
                failure: Exception = exc
            else:
                self._handled += 1
                return
            if attempt >= self._retries or self._stop.is_set():
                break
            await sleep_unless(
                self._stop, min(self._backoff * 2**attempt, self._max_backoff)
            )
            if self._stop.is_set():
                break  # closed while waiting: the handler is not called again
            attempt += 1
        if self._stop.is_set():
            # Closing: the event stays unhandled, and the checkpoint before it.
            await self._save()
            raise _Closing
        error = ProjectionError(
            self._name, recorded.id, recorded.type, recorded.position, failure
        )
        self._state = "failed"
        self._last_error = str(error)
        await self._save()
        raise error from failure

    async def _save(self) -> None:
        if self._loaded and self._position != self._saved:
            await self._checkpoints.save(self._name, self._position)
            self._saved = self._position
        self._unsaved = 0


class _Closing(Exception):  # noqa: N818 -- internal signal, never escapes the runner
    """The runner was closed while a handler waited to be retried."""
