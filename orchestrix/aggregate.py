"""Aggregates: consistency boundaries whose state is a fold of their events.

An aggregate is a class deriving from `AggregateRoot`. Its commands are
ordinary methods that check invariants and record events with `_record`; its
state changes only in *apply methods*, one per event type, declared with
`applies`::

    class Account(AggregateRoot, type="bank.account"):
        balance: Decimal

        def __init__(self, aggregate_id: str) -> None:
            super().__init__(aggregate_id)
            self.balance = Decimal(0)

        def deposit(self, amount: Decimal) -> None:
            if amount <= 0:
                raise ValueError("deposit a positive amount")
            self._record(Deposited(account_id=self.id, amount=amount))

        @applies(Deposited)
        def _deposited(self, event: Deposited) -> None:
            self.balance += event.amount

Versions follow the stores (ADR 0003): `AggregateRoot.version` counts the
events loaded from or saved to the store, so it is 0 for a new aggregate and
equals the stream's version after a load; recorded events stay pending until a
repository stores them. See ADR 0009 for how apply methods are dispatched.
"""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self, TypeVar, cast

import msgspec

from orchestrix._utils import check_stream_id
from orchestrix.codec import decode_state, encode_state
from orchestrix.errors import (
    ConfigurationError,
    InvalidArgumentError,
    SerializationError,
)
from orchestrix.messages import Event
from orchestrix.protocols import Snapshot

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Callable, Iterable, Mapping

    from orchestrix.protocols import Recorded

__all__ = ["AggregateRoot", "applies"]

F = TypeVar("F", bound="Callable[..., object]")
E = TypeVar("E", bound=Event)

# Attribute set on functions decorated with @applies: the event classes handled.
_MARK: Final = "__orchestrix_applies__"


def applies(*event_types: type[Event]) -> Callable[[F], F]:
    """Declare the decorated method as the apply method for *event_types*.

    The method takes the event and changes the aggregate's state; it must not
    check invariants (commands do) and must not fail for a stored event. An
    event is dispatched to the method declared for its class or, failing
    that, for its nearest base class that has one. Decorators may be stacked.

    Args:
        event_types: One or more `Event` subclasses the method applies.

    Returns:
        A decorator that marks the method and returns it unchanged.

    Raises:
        ConfigurationError: No event class was given, an argument is not an
            `Event` subclass, or the decorated object is not a function.
    """
    if not event_types:
        msg = "@applies needs at least one Event class, e.g. @applies(Deposited)"
        raise ConfigurationError(msg)
    checked: tuple[object, ...] = event_types  # callers may pass anything
    for event_type in checked:
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            msg = (
                f"@applies takes Event subclasses, got {event_type!r}: pass the "
                f"event class itself, e.g. @applies(Deposited)"
            )
            raise ConfigurationError(msg)

    def decorate(function: F) -> F:
        if not inspect.isfunction(function):
            msg = (
                f"@applies decorates a method defined with def, got "
                f"{type(function).__qualname__}"
            )
            raise ConfigurationError(msg)
        handled: tuple[type[Event], ...] = getattr(function, _MARK, ())
        cast("Any", function).__orchestrix_applies__ = handled + event_types
        return function

    return decorate


def _event_label(event_type: type[Event]) -> str:
    return f"{event_type.type_name()!r} ({event_type.__qualname__})"


class AggregateRoot:
    """Base class of aggregates: pending events, a version and a folded state.

    Construct a new aggregate with its id, which is also its stream id. A
    subclass that defines ``__init__`` must keep that signature (the
    repository calls ``cls(aggregate_id)`` before folding) and set the initial
    state there.

    Class keyword ``type=`` gives the aggregate a stable type name, stored in
    its snapshots (default: the class's qualified name). Set the class
    attribute `snapshot_version` to a new number whenever the shape of the
    snapshot state changes: older snapshots are then ignored.

    Attributes:
        aggregate_type: The aggregate's type name, stored in its snapshots.
        snapshot_version: Schema version of the snapshot state (default 1).
    """

    aggregate_type: ClassVar[str] = "orchestrix.AggregateRoot"
    snapshot_version: ClassVar[int] = 1

    # event class -> name of its apply method, for this class and its bases
    _apply_methods: ClassVar[dict[type[Event], str]] = {}
    # event class -> name of the method that handles it (nearest handled base)
    _dispatch_cache: ClassVar[dict[type[Event], str | None]] = {}
    # instance attribute name -> type, from the class annotations
    _state_types_cache: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(
        cls,
        *,
        type: str | None = None,  # noqa: A002 -- the same class keyword as messages
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if type is not None:
            if not isinstance(type, str) or not type:
                msg = f"{cls.__qualname__}: type= must be a non-empty str, got {type!r}"
                raise ConfigurationError(msg)
            cls.aggregate_type = type
        elif "aggregate_type" not in own:
            cls.aggregate_type = cls.__qualname__
        version = cls.snapshot_version
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            msg = (
                f"{cls.__qualname__}.snapshot_version must be an int >= 1, "
                f"got {version!r}"
            )
            raise ConfigurationError(msg)
        cls._apply_methods = _collect_apply_methods(cls)
        cls._dispatch_cache = {}
        cls._state_types_cache = None

    def __init__(self, aggregate_id: str) -> None:
        """Create an aggregate with no events.

        Raises:
            InvalidArgumentError: *aggregate_id* is not a valid stream id.
        """
        self._id = check_stream_id(aggregate_id)
        self._version = 0
        self._pending: list[Event] = []

    @property
    def id(self) -> str:
        """The aggregate's id, which is its stream id."""
        return self._id

    @property
    def version(self) -> int:
        """Number of stored events applied: the stream's version (0 when new).

        Pending events do not count until a repository stores them.
        """
        return self._version

    @property
    def pending_events(self) -> tuple[Event, ...]:
        """Events recorded since the aggregate was loaded or last saved."""
        return tuple(self._pending)

    def _record(self, event: E) -> E:
        """Apply *event* to the state and keep it pending until saved.

        Call this from command methods once the invariants hold.

        Returns:
            The event, for convenience.

        Raises:
            InvalidArgumentError: *event* is not an `Event`.
            ConfigurationError: The aggregate has no apply method for it.
        """
        if not isinstance(cast("object", event), Event):
            msg = (
                f"{type(self).__qualname__} {self._id!r} can only record Event "
                f"instances, got {type(event).__qualname__}"
            )
            raise InvalidArgumentError(msg)
        self._apply(event)
        self._pending.append(event)
        return event

    def replay(self, event: Event) -> None:
        """Apply one event read from the store and advance `version` by one.

        Repositories fold streams with it; commands use `_record` instead.

        Raises:
            InvalidArgumentError: The aggregate has pending events, which stored
                events must never follow.
            ConfigurationError: The aggregate has no apply method for it.
        """
        if self._pending:
            msg = (
                f"cannot replay stored events onto {type(self).__qualname__} "
                f"{self._id!r}: it has {len(self._pending)} pending event(s); "
                f"replay into a freshly loaded aggregate"
            )
            raise InvalidArgumentError(msg)
        # _apply inlined for the cached case: repositories call this per event.
        name = type(self)._dispatch_cache.get(type(event))
        if name is None:
            self._apply(event)
        else:
            getattr(self, name)(event)
        self._version += 1

    def mark_committed(self, count: int | None = None) -> tuple[Event, ...]:
        """Mark pending events as stored and return them.

        `version` grows by their number and they leave the pending list.
        Repositories call it after a successful append; application code
        normally has no reason to.

        Args:
            count: How many of the oldest pending events were stored (None:
                all). Events recorded while the append was awaited stay
                pending.

        Raises:
            InvalidArgumentError: *count* is negative or more than are pending.
        """
        pending = self._pending
        if count is None:
            count = len(pending)
        elif isinstance(count, bool) or not 0 <= count <= len(pending):
            msg = (
                f"cannot commit {count!r} event(s) of {type(self).__qualname__} "
                f"{self._id!r}: {len(pending)} are pending"
            )
            raise InvalidArgumentError(msg)
        committed = tuple(pending[:count])
        del pending[:count]
        self._version += count
        return committed

    @classmethod
    def from_events(cls, aggregate_id: str, events: Iterable[Event]) -> Self:
        """Rebuild an aggregate by folding stored *events* (the stream, in order).

        Raises:
            InvalidArgumentError: *aggregate_id* is not a valid stream id.
            ConfigurationError: An event has no apply method in this class.
        """
        aggregate = cls(aggregate_id)
        for event in events:
            aggregate.replay(event)
        return aggregate

    def _apply(self, event: Event) -> None:
        name = type(self)._apply_method_for(type(event))
        if name is None:
            cls = type(self)
            label = _event_label(type(event))
            msg = (
                f"{cls.__qualname__} {self._id!r} has no apply method for event "
                f"type {label}: add a method decorated with "
                f"@applies({type(event).__qualname__}) to {cls.__qualname__}"
            )
            raise ConfigurationError(msg)
        getattr(self, name)(event)

    @classmethod
    def _apply_method_for(cls, event_type: type[Event]) -> str | None:
        cache = cls._dispatch_cache
        if event_type in cache:
            return cache[event_type]
        methods = cls._apply_methods
        name = next(
            (methods[base] for base in event_type.__mro__ if base in methods), None
        )
        cache[event_type] = name
        return name

    # --- snapshots ---------------------------------------------------------

    def snapshot_state(self) -> dict[str, Any]:
        """Return the state to keep in a snapshot, as a JSON-able mapping.

        The default takes every public instance attribute (names not starting
        with ``_``); each must be annotated on the class, so that
        `restore_state` can rebuild its exact type (datetime, Decimal, tuples,
        dataclasses, ...). Override this together with `restore_state` for
        anything else, and bump `snapshot_version` when the shape changes.

        Raises:
            ConfigurationError: A public attribute has no class annotation.
            SerializationError: A value cannot be represented in JSON.
        """
        cls = type(self)
        types = cls._state_types()
        state: dict[str, Any] = {}
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            if name not in types:
                msg = (
                    f"{cls.__qualname__}.{name} has no annotation on the class, so a "
                    f"snapshot could not restore its type: annotate it in the class "
                    f"body ({name}: <type>), make it private (_{name}), or override "
                    f"snapshot_state() and restore_state()"
                )
                raise ConfigurationError(msg)
            state[name] = value
        try:
            return cast("dict[str, Any]", msgspec.to_builtins(state))
        except (TypeError, msgspec.EncodeError) as exc:
            msg = f"cannot snapshot {cls.__qualname__} {self._id!r}: {exc}"
            raise SerializationError(msg) from exc

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Set the aggregate's state from a mapping made by `snapshot_state`.

        It is called on a freshly constructed aggregate. The default converts
        each value to the type annotated on the class and sets the attribute.

        Raises:
            SerializationError: The state names an attribute the class does not
                annotate, or a value does not fit its annotated type.
        """
        cls = type(self)
        types = cls._state_types()
        for name, value in state.items():
            if name.startswith("_") or name not in types:
                msg = (
                    f"snapshot state of {cls.__qualname__} holds {name!r}, which "
                    f"the class does not annotate; bump "
                    f"{cls.__qualname__}.snapshot_version whenever the state's "
                    f"shape changes"
                )
                raise SerializationError(msg)
            try:
                converted = msgspec.convert(value, types[name], str_keys=True)
            except msgspec.ValidationError as exc:
                msg = (
                    f"snapshot state of {cls.__qualname__}: {name!r} does not fit "
                    f"{types[name]!r}: {exc}; bump {cls.__qualname__}.snapshot_version "
                    f"whenever the state's shape changes"
                )
                raise SerializationError(msg) from exc
            setattr(self, name, converted)

    @classmethod
    def _state_types(cls) -> dict[str, Any]:
        types = cls.__dict__.get("_state_types_cache")
        if types is None:
            try:
                hints = typing.get_type_hints(cls)
            except NameError as exc:
                msg = (
                    f"cannot resolve the annotations of {cls.__qualname__} ({exc}): "
                    f"define the annotated types at module level, or override "
                    f"snapshot_state() and restore_state()"
                )
                raise ConfigurationError(msg) from exc
            types = {
                name: hint
                for name, hint in hints.items()
                if not name.startswith("_") and typing.get_origin(hint) is not ClassVar
            }
            cls._state_types_cache = types
        return types

    def to_snapshot(self) -> Snapshot:
        """Return a `Snapshot` of the current state at the current version.

        Raises:
            InvalidArgumentError: The aggregate has pending events or no events.
            ConfigurationError: See `snapshot_state`.
            SerializationError: See `snapshot_state`.
        """
        cls = type(self)
        if self._pending or self._version == 0:
            msg = (
                f"cannot snapshot {cls.__qualname__} {self._id!r}: a snapshot holds "
                f"stored events only, and it has {len(self._pending)} pending "
                f"event(s) at version {self._version}; save it first"
            )
            raise InvalidArgumentError(msg)
        return Snapshot(
            stream_id=self._id,
            version=self._version,
            aggregate_type=cls.aggregate_type,
            schema_version=cls.snapshot_version,
            state=encode_state(self.snapshot_state()),
        )

    @classmethod
    def accepts_snapshot(cls, snapshot: Snapshot) -> bool:
        """Return True if *snapshot* was taken by this aggregate type and state schema.

        Snapshots of another `aggregate_type` or `snapshot_version` are never
        restored; the repository replays the whole stream instead.
        """
        return (
            snapshot.aggregate_type == cls.aggregate_type
            and snapshot.schema_version == cls.snapshot_version
        )

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Self:
        """Rebuild an aggregate from *snapshot*, at the snapshot's version.

        Fold the events after ``snapshot.version`` with `replay` to bring it up
        to date.

        Raises:
            InvalidArgumentError: `accepts_snapshot` is False for *snapshot*.
            SerializationError: The state cannot be restored.
        """
        if not cls.accepts_snapshot(snapshot):
            msg = (
                f"{cls.__qualname__} (type {cls.aggregate_type!r}, snapshot_version "
                f"{cls.snapshot_version}) cannot restore a snapshot of "
                f"{snapshot.aggregate_type!r} with schema version "
                f"{snapshot.schema_version}; replay the stream instead"
            )
            raise InvalidArgumentError(msg)
        aggregate = cls(snapshot.stream_id)
        aggregate.restore_state(decode_state(snapshot.state))
        aggregate._version = snapshot.version
        return aggregate

    def __repr__(self) -> str:
        return (
            f"{type(self).__qualname__}(id={self._id!r}, version={self._version}, "
            f"pending={len(self._pending)})"
        )


async def _fold(aggregate: AggregateRoot, records: AsyncIterable[Recorded]) -> None:
    """Replay the events of *records* onto *aggregate*, in order.

    The same as ``aggregate.replay(recorded.event)`` for each record, with
    the same errors, but the apply method of each event type is looked up
    once: `Repository.get` folds whole streams through it.

    Raises:
        InvalidArgumentError: The aggregate has pending events.
        ConfigurationError: An event has no apply method in the aggregate.
    """
    replay = aggregate.replay
    dispatch = type(aggregate)._dispatch_cache
    pending = aggregate._pending
    bound: dict[type[Event], Callable[[Event], object]] = {}
    async for recorded in records:
        event = recorded.event
        apply = bound.get(type(event))
        if apply is None or pending:
            # The checked path, once per event type: errors, cache filling.
            replay(event)
            name = dispatch.get(type(event))
            if name is not None:
                bound[type(event)] = getattr(aggregate, name)
        else:
            apply(event)
            aggregate._version += 1


def _collect_apply_methods(cls: type[AggregateRoot]) -> dict[type[Event], str]:
    methods: dict[type[Event], str] = {}
    for base in reversed(cls.__bases__):
        if issubclass(base, AggregateRoot):
            methods.update(base._apply_methods)
    own: dict[type[Event], str] = {}
    for name, value in cls.__dict__.items():
        handled: tuple[type[Event], ...] | None = (
            getattr(value, _MARK, None) if inspect.isfunction(value) else None
        )
        if handled is None:
            continue
        # A redecorated method replaces what its name applied in the bases.
        methods = {event: method for event, method in methods.items() if method != name}
        for event_type in handled:
            previous = own.get(event_type)
            if previous is not None and previous != name:
                msg = (
                    f"{cls.__qualname__} declares two apply methods for "
                    f"{_event_label(event_type)}: {previous} and {name}; keep one"
                )
                raise ConfigurationError(msg)
            own[event_type] = name
    methods.update(own)
    return methods
