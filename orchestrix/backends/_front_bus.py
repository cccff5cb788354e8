"""The front end every message bus shares: checks, subscriptions and options.

A bus's public methods are written once, here (ADR 0033). They check what the
caller gave and keep the subscriptions, and only then call the backend's own
``_publish``, ``_start``, ``_close``, ``_dead_letters`` and
``_replay_dead_letter``, so every bus rejects the same input with the same
error and a backend module holds only what its technology does differently.

Decisions taken here, once for every bus (each pinned by a contract test):

* ``subscribe`` takes a `Message` subclass, a callable and a group that is
  None or 1 to `MAX_GROUP_LENGTH` characters, neither blank nor padded with
  whitespace and free of NUL and unpaired surrogates; anything else is an
  `InvalidArgumentError`. Closed comes first (`ResourceClosedError`), then the
  arguments, then started and a second handler of a command type
  (`HandlerRegistrationError`).
* ``publish`` of anything but a `Message` instance is an `InvalidArgumentError`.
* ``start`` is idempotent, also when called concurrently; ``close`` is
  idempotent, and a second call returns only once the first has finished. It
  waits up to `close_timeout` for running handlers, then cancels them; their
  deliveries are not acknowledged, so a durable bus redelivers them.
* The four bus options have one type, range, default and error message,
  whether given as numbers or as URL text.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeGuard, final
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from orchestrix._utils import (
    AsyncResource,
    default_group,
    message_type_names,
    storable_text,
)
from orchestrix.backends._front import check_after
from orchestrix.errors import (
    ConfigurationError,
    HandlerRegistrationError,
    InvalidArgumentError,
)
from orchestrix.messages import Command, Message
from orchestrix.protocols import DurableMessageBus, MessageBus

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from orchestrix.protocols import Handler, M
    from orchestrix.records import DeadLetter

__all__ = [
    "BUS_OPTIONS",
    "MAX_CLOSE_WAIT",
    "MAX_GROUP_LENGTH",
    "BusOptions",
    "FrontDurableMessageBus",
    "FrontMessageBus",
    "Subscription",
    "Subscriptions",
    "check_bus_option",
    "check_group",
    "check_message_id",
    "drain",
    "not_a_message",
    "parse_bus_options",
    "split_bus_options",
]

#: Longest group name, in characters, that every backend stores.
MAX_GROUP_LENGTH: Final = 255
#: Longest wait, in seconds, of ``close`` for running handlers.
MAX_CLOSE_WAIT: Final = 10.0
#: The options every durable bus takes, as keywords or URL query parameters.
BUS_OPTIONS: Final = (
    "visibility_timeout",
    "max_attempts",
    "poll_interval",
    "concurrency",
)

_INT_TEXT: Final = re.compile(r"[0-9]+")
_FLOAT_TEXT: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# name -> (minimum, maximum, integer); the defaults are BusOptions'.
_RANGES: Final[dict[str, tuple[float, float, bool]]] = {
    "visibility_timeout": (0.001, 31_536_000.0, False),
    "max_attempts": (1, 1_000_000, True),
    "poll_interval": (0.001, 31_536_000.0, False),
    "concurrency": (1, 1_000, True),
}


def _group_problem(group: str) -> str | None:
    if not group or group.isspace():
        return "it is empty or blank"
    if len(group) > MAX_GROUP_LENGTH:
        return f"it has {len(group)} characters, more than {MAX_GROUP_LENGTH}"
    if group != group.strip():
        return "it starts or ends with whitespace, so it would name another group"
    if not storable_text(group):
        return "it holds a NUL character or an unpaired surrogate"
    return None


def check_group(group: object) -> str:
    """Return *group* if it is a group name every backend stores, else raise.

    Raises:
        InvalidArgumentError: Not a str, empty, blank, padded with whitespace,
            longer than `MAX_GROUP_LENGTH`, or holding NUL or a lone surrogate.
    """
    if not isinstance(group, str):
        msg = f"group must be a str, got {type(group).__qualname__}"
        raise InvalidArgumentError(msg)
    group = str.__str__(group)
    problem = _group_problem(group)
    if problem is not None:
        msg = f"group {group[:40]!r} cannot be used: {problem}"
        raise InvalidArgumentError(msg)
    return group


def check_message_id(message_id: object) -> str:
    """Return *message_id* if some backend could hold it, else raise.

    Raises:
        InvalidArgumentError: Not a str, empty, or holding NUL or a surrogate.
    """
    if (
        not isinstance(message_id, str)
        or not message_id
        or not storable_text(message_id)
    ):
        msg = (
            f"message id must be a non-empty str without NUL or unpaired "
            f"surrogates, got {message_id!r:.60}"
        )
        raise InvalidArgumentError(msg)
    return str.__str__(message_id)


def not_a_message(message: object) -> InvalidArgumentError:
    """Return the error for publishing *message*, which is no Message."""
    return InvalidArgumentError(
        f"publish() takes a Message instance, got {type(message).__qualname__}"
    )


@final
@dataclass(frozen=True, slots=True)
class Subscription:
    """One ``subscribe`` call, checked: what it takes, who handles, which group."""

    message_type: type[Message]
    type_name: str
    handler: Handler[Any]
    group: str


def _is_async_callable(handler: object) -> TypeGuard[Handler[Any]]:
    """Return whether calling *handler* gives an awaitable, as far as it shows.

    Coroutine functions, `functools.partial`s of them, and objects whose
    class's ``__call__`` is one (AsyncMock included) pass; plain functions do
    not.
    """
    # The class's __call__, looked up on the type: an instance attribute
    # named __call__ is not what a call runs.
    call = inspect.getattr_static(type(handler), "__call__", None)
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


@final
class Subscriptions:
    """The subscriptions of one bus, and the routes from message classes to them."""

    __slots__ = ("_commands", "_group_routes", "_list", "cached_routes")

    def __init__(self) -> None:
        self._list: list[Subscription] = []
        self._commands: dict[str, Subscription] = {}
        #: The routes found so far, by message class: a hot path may look
        #: here first and call `routes` only on a miss.
        self.cached_routes: dict[type[Message], tuple[Subscription, ...]] = {}
        self._group_routes: dict[tuple[str, type[Message]], tuple[Subscription, ...]]
        self._group_routes = {}

    @staticmethod
    def check(message_type: object, handler: object, group: object) -> Subscription:
        """Return the subscription the arguments describe.

        Raises:
            InvalidArgumentError: A bad type, handler or group.
        """
        if not (isinstance(message_type, type) and issubclass(message_type, Message)):
            msg = f"subscribe() takes a Message subclass, got {message_type!r:.80}"
            raise InvalidArgumentError(msg)
        if not _is_async_callable(handler):
            msg = (
                f"subscribe() takes an async handler (an async def function or an "
                f"object with an async __call__), got {handler!r:.80}; a plain "
                f"function would run, then fail every delivery"
            )
            raise InvalidArgumentError(msg)
        chosen = default_group(handler) if group is None else check_group(group)
        if group is None and _group_problem(chosen) is not None:
            msg = (
                f"the default group of handler {chosen[:40]!r} cannot be stored; "
                f"give the subscription a group"
            )
            raise InvalidArgumentError(msg)
        return Subscription(message_type, message_type.type_name(), handler, chosen)

    def add(self, subscription: Subscription) -> None:
        """Record *subscription*.

        Raises:
            HandlerRegistrationError: Its type is a command type that already
                has a handler.
        """
        name = subscription.type_name
        if issubclass(subscription.message_type, Command):
            existing = self._commands.get(name)
            if existing is not None:
                msg = (
                    f"command {name!r} already has a handler "
                    f"({default_group(existing.handler)}); a command has exactly "
                    f"one handler per process, so "
                    f"{default_group(subscription.handler)} cannot subscribe too"
                )
                raise HandlerRegistrationError(msg)
            self._commands[name] = subscription
        self._list.append(subscription)
        self.cached_routes.clear()
        self._group_routes.clear()

    def __iter__(self) -> Iterator[Subscription]:
        return iter(self._list)

    def groups(self) -> dict[str, tuple[Subscription, ...]]:
        """Return each group's subscriptions, groups in order of first use."""
        found: dict[str, list[Subscription]] = {}
        for subscription in self._list:
            found.setdefault(subscription.group, []).append(subscription)
        return {group: tuple(subs) for group, subs in found.items()}

    def type_names(self, group: str) -> tuple[str, ...]:
        """Return the type names *group* subscribes to here, sorted."""
        return tuple(sorted({s.type_name for s in self._list if s.group == group}))

    def routes(self, cls: type[Message]) -> tuple[Subscription, ...]:
        """Return the subscriptions a message of *cls* goes to, in order."""
        found = self.cached_routes.get(cls)
        if found is None:
            names = set(message_type_names(cls))
            found = tuple(s for s in self._list if s.type_name in names)
            self.cached_routes[cls] = found
        return found

    def group_routes(self, group: str, cls: type[Message]) -> tuple[Subscription, ...]:
        """Return the subscriptions of *group* a message of *cls* goes to."""
        key = (group, cls)
        found = self._group_routes.get(key)
        if found is None:
            found = tuple(s for s in self.routes(cls) if s.group == group)
            self._group_routes[key] = found
        return found


@final
@dataclass(frozen=True, slots=True)
class BusOptions:
    """The options every durable bus takes, checked.

    Attributes:
        visibility_timeout: Seconds before an unacknowledged delivery is
            delivered again.
        max_attempts: Deliveries before a message becomes a dead letter.
        poll_interval: Longest idle wait, in seconds, before looking again.
        concurrency: Handlers of one group running at once in this process.
    """

    visibility_timeout: float = 30.0
    max_attempts: int = 5
    poll_interval: float = 1.0
    concurrency: int = 1

    @property
    def close_timeout(self) -> float:
        """Longest wait of ``close`` for running handlers, in seconds.

        The visibility timeout, since a delivery is redelivered after it
        anyway, but at most `MAX_CLOSE_WAIT`, so a process stops in time.
        """
        return min(self.visibility_timeout, MAX_CLOSE_WAIT)


def check_bus_option(name: str, value: object) -> int | float:
    """Return bus option *name* checked: an int or float, from a number or its text.

    Raises:
        ConfigurationError: Not a number of the option's kind and range.
    """
    low, high, integer = _RANGES[name]
    number: object = value
    if isinstance(value, str):
        text = value.strip()
        pattern = _INT_TEXT if integer else _FLOAT_TEXT
        number = (int if integer else float)(text) if pattern.fullmatch(text) else None
    if isinstance(number, bool) or not isinstance(number, int | float):
        number = None
    elif integer:
        if not isinstance(number, int) or not low <= number <= high:
            number = None
    elif not (math.isfinite(number) and low <= number <= high):
        number = None
    if number is None:
        kind = (
            f"an int from {int(low)} to {int(high)}"
            if integer
            else f"a number of seconds from {low} to {high:.0f}"
        )
        msg = f"bus option {name!r} must be {kind}, got {value!r}"
        raise ConfigurationError(msg)
    return int(number) if integer else float(number)


def parse_bus_options(values: Mapping[str, object]) -> BusOptions:
    """Return the bus options in *values*; None or a missing name is the default.

    Raises:
        ConfigurationError: An unknown name or a bad value (the message names it).
    """
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in _RANGES:
            msg = f"unknown bus option {name!r}; known: {', '.join(BUS_OPTIONS)}"
            raise ConfigurationError(msg)
        if value is not None:
            checked[name] = check_bus_option(name, value)
    return BusOptions(**checked)


def split_bus_options(url: str) -> tuple[str, dict[str, str]]:
    """Return *url* without the bus options of its query, and those options' text.

    A *url* that is no str, or does not split, is returned as it is: the
    backend's URL parser then reports what is wrong with it.
    """
    given: object = url  # typed callers pass a str; others get parse_url's error
    if not isinstance(given, str):
        return url, {}
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, {}
    found: dict[str, str] = {}
    kept: list[str] = []
    # The other pairs stay exactly as written, so the backend's parser still
    # sees (and reports) whatever is wrong with them.
    for pair in parts.query.split("&") if parts.query else ():
        key, _, value = pair.partition("=")
        name = unquote_plus(key)
        if name not in _RANGES:
            kept.append(pair)
            continue
        if name in found:
            msg = f"bus option {name!r} is given twice"
            raise ConfigurationError(msg)
        found[name] = unquote_plus(value)
    if not found:
        return url, {}
    return urlunsplit(parts._replace(query="&".join(kept))), found


async def drain(tasks: Iterable[asyncio.Task[Any]], within: float) -> None:
    """Wait up to *within* seconds for *tasks*, then cancel those still running.

    The calling task is left out, so a handler may close its own bus.
    """
    pending = set(tasks) - {asyncio.current_task()}
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=within)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)


class FrontMessageBus(AsyncResource, MessageBus):
    """The `MessageBus` methods, checked once for every bus.

    Subclasses call ``super().__init__()`` and implement ``_publish`` (given a
    checked message), ``_start`` and ``_close``; they read their subscriptions
    from ``self._subscriptions``.
    """

    def __init__(self) -> None:
        self._subscriptions = Subscriptions()
        self._started = False
        self._start_lock = asyncio.Lock()
        self._closing: asyncio.Event | None = None

    def subscribe(
        self,
        message_type: type[M],
        handler: Handler[M],
        *,
        group: str | None = None,
    ) -> None:
        """Call *handler* for every message of *message_type* or a subclass.

        Handlers of one group compete for a message (on a durable bus, across
        processes); different groups each receive it. With ``group=None`` the
        group is the handler's qualified name. A command type takes one handler
        per process, whatever its group.

        Raises:
            ResourceClosedError: The bus is closed (checked first).
            InvalidArgumentError: *message_type* is no Message subclass,
                *handler* is not callable, or *group* is not None or 1 to 255
                characters without NUL, lone surrogates or surrounding
                whitespace.
            HandlerRegistrationError: ``start`` was called, or the command type
                already has a handler here.
        """
        if self._closed:
            self._check_open()
        subscription = Subscriptions.check(message_type, handler, group)
        if self._started:
            msg = (
                f"cannot subscribe {default_group(handler)} to "
                f"{subscription.type_name!r}: the bus is already started; subscribe "
                f"every handler before start()"
            )
            raise HandlerRegistrationError(msg)
        self._subscriptions.add(subscription)

    async def publish(self, message: Message) -> None:
        """Publish *message* to the handlers subscribed to its class or a base.

        See `orchestrix.protocols.MessageBus.publish` for when handlers run.
        Publishing needs no ``start``.

        Raises:
            ResourceClosedError: The bus is closed (checked first).
            InvalidArgumentError: *message* is not a Message instance.
            NoHandlerError: *message* is a command nobody subscribes to.
            SerializationError: *message* cannot be encoded; nothing is sent.
            HandlerError: In-memory bus only: handlers raised (all of them ran).
        """
        if self._closed:  # tested inline: this is the hot path
            self._check_open()
        if not isinstance(message, Message):
            raise not_a_message(message)
        await self._publish(message)

    async def start(self) -> None:
        """Close the list of subscriptions and start delivering to them.

        Idempotent: a second call, also one made while the first runs,
        returns once the bus is started. If starting fails, the bus is as
        before and ``start`` may be called again.

        Raises:
            ResourceClosedError: The bus is closed.
        """
        self._check_open()
        async with self._start_lock:
            self._check_open()
            if self._started:
                return
            self._started = True
            try:
                await self._start()
            except BaseException:
                self._started = False
                raise

    async def close(self) -> None:
        """Stop delivering, let running handlers finish, release resources.

        A durable bus waits for its running handlers up to its visibility
        timeout, at most 10 s, then cancels them; their deliveries are not
        acknowledged and are redelivered after the visibility timeout. The
        in-memory bus waits up to 10 s for handlers running in other tasks'
        ``publish`` calls and never cancels them. A handler may close its own
        bus: its own run is not waited for (on a durable bus its delivery is
        then not acknowledged, and comes back after the visibility timeout).
        Idempotent: a call made while another runs returns once the bus is
        closed. Later ``subscribe``, ``publish`` and ``start`` calls raise
        `ResourceClosedError`.
        """
        closing = self._closing
        if closing is not None:
            await closing.wait()
            return
        closing = self._closing = asyncio.Event()
        self._closed = True
        try:
            async with self._start_lock:  # a start in progress finishes first
                await self._close()
        finally:
            closing.set()

    @property
    def _released(self) -> bool:
        """Whether ``close`` has finished, so the backend must not be called."""
        closing = self._closing
        return closing is not None and closing.is_set()

    @abstractmethod
    async def _publish(self, message: Message) -> None:
        """Publish a checked *message*."""

    @abstractmethod
    async def _start(self) -> None:
        """Start delivering to ``self._subscriptions``; called once."""

    @abstractmethod
    async def _close(self) -> None:
        """Stop, wait for running handlers (bounded), release resources."""


class FrontDurableMessageBus(FrontMessageBus, DurableMessageBus):
    """The `DurableMessageBus` methods, checked once for every durable bus.

    A delivery that no handler of its group in this process subscribes to is
    not an attempt: the backend leaves it, without counting, for a consumer of
    the group that handles it.
    """

    def __init__(self, options: BusOptions) -> None:
        super().__init__()
        self._bus_options = options

    async def dead_letters(
        self, *, group: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Return up to *limit* dead letters, oldest first (one group, or all).

        A *limit* of 0 returns none; one beyond 64 bits returns every letter.

        Raises:
            InvalidArgumentError: *limit* is not an int >= 0, or *group* is not
                None or a valid group name.
            ResourceClosedError: The bus is closed.
        """
        self._check_open()
        checked = check_after("limit", limit)
        name = None if group is None else check_group(group)
        return await self._dead_letters(name, checked)

    async def replay_dead_letter(self, message_id: str, *, group: str) -> bool:
        """Move a dead letter back to its group's queue with fresh attempts.

        Returns:
            True if it was found and requeued, False if there was none.

        Raises:
            InvalidArgumentError: *message_id* is not a non-empty str, or
                *group* is not a valid group name.
            ResourceClosedError: The bus is closed.
        """
        self._check_open()
        checked = check_message_id(message_id)
        return await self._replay_dead_letter(checked, check_group(group))

    @abstractmethod
    async def _dead_letters(self, group: str | None, limit: int) -> list[DeadLetter]:
        """Return up to *limit* dead letters of *group* (or all), oldest first."""

    @abstractmethod
    async def _replay_dead_letter(self, message_id: str, group: str) -> bool:
        """Requeue the dead letter; False if there is none."""
