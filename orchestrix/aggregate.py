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

A snapshot holds every instance attribute the class annotates, private ones
included, with a fingerprint of those attributes' names and types and the id
of the last event it reflects, so that a snapshot taken by another shape of the
class, or from another history of the stream, is never restored (ADR 0030).
Nor is one taken whose state would restore other values than it holds.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self, TypeVar, cast

from orchestrix import _snapshot_state
from orchestrix._dispatch import collect_methods, method_for
from orchestrix._fingerprint import state_digest
from orchestrix._snapshot_state import CUSTOM_FINGERPRINT, SnapshotParts
from orchestrix._utils import check_stream_id
from orchestrix.errors import (
    ConfigurationError,
    InvalidArgumentError,
    SerializationError,
)
from orchestrix.messages import Event
from orchestrix.records import Snapshot

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterable,
        AsyncIterator,
        Callable,
        Iterable,
        Mapping,
    )

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
    its snapshots (default: the class's qualified name). Snapshots hold every
    annotated instance attribute, and a change to those attributes' names or
    types makes older snapshots unusable by itself (see `state_fingerprint`).
    Set the class attribute `snapshot_version` to a new number when what the
    state means changes otherwise (an apply method computes something else),
    or when the class overrides `snapshot_state` and `restore_state`: older
    snapshots are then ignored.

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
    # what state_fingerprint returns, once computed
    _fingerprint_cache: ClassVar[str | None] = None

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
        _snapshot_state.check_snapshot_version(cls)
        cls._apply_methods = collect_methods(
            cls,
            (b._apply_methods for b in cls.__bases__ if issubclass(b, AggregateRoot)),
            _MARK,
            "apply methods",
        )
        cls._dispatch_cache = {}
        cls._state_types_cache = None
        cls._fingerprint_cache = None
        if not _has_custom_state(cls):
            _snapshot_state.refuse_slots(cls)

    def __init__(self, aggregate_id: str) -> None:
        """Create an aggregate with no events.

        Raises:
            InvalidArgumentError: *aggregate_id* is not a valid stream id.
        """
        self._id = check_stream_id(aggregate_id)
        self._version = 0
        self._pending: list[Event] = []
        # Id of the last stored event folded in: snapshots record it.
        self._last_event_id = ""

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
        self._last_event_id = event.id

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
        if committed:
            self._last_event_id = committed[-1].id
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
        return method_for(cls._apply_methods, cls._dispatch_cache, event_type)

    # --- snapshots ---------------------------------------------------------

    def snapshot_state(self) -> dict[str, Any]:
        """Return the state to keep in a snapshot, as a JSON-able mapping.

        The default takes every instance attribute, private (``_name``) ones
        included, except the id, version and pending events `AggregateRoot`
        keeps itself. Each must be annotated in the class body, so that
        `restore_state` can rebuild its exact type (datetime, Decimal, tuples,
        dataclasses, ...); see ADR 0030. Override this together with
        `restore_state` for anything else, and bump `snapshot_version`
        whenever the shape of what they exchange changes.

        Raises:
            ConfigurationError: An attribute has no class annotation.
            SerializationError: A value cannot be represented in JSON.
        """
        return _snapshot_state.collect(self, type(self)._state_types())

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Set the aggregate's state from a mapping made by `snapshot_state`.

        It is called on a freshly constructed aggregate. The default converts
        each value to the type annotated on the class and sets the attribute;
        the state must hold every attribute the constructor sets, so that no
        default is ever left standing for a value the snapshot lacks.

        Raises:
            SerializationError: The state names an attribute the class does not
                annotate, lacks one the constructor sets, or a value does not
                fit its annotated type.
        """
        _snapshot_state.restore(self, state, type(self)._state_types())

    @classmethod
    def _state_types(cls) -> dict[str, Any]:
        types = cls.__dict__.get("_state_types_cache")
        if types is None:
            types = _snapshot_state.state_types(cls)
            cls._state_types_cache = types
        return types

    @classmethod
    def state_fingerprint(cls) -> str:
        """Return the fingerprint of the class's snapshot state, stored in snapshots.

        With the default `snapshot_state` and `restore_state`, it is a digest
        of the state's attribute names and annotated types, spelt out down to
        the fields of dataclasses, structs and named tuples and the values of
        enums: adding, removing or retyping an attribute changes it, and
        snapshots taken before are then ignored, as if `snapshot_version` had
        been bumped. It depends on no hash seed or memory address, so every
        process computes the same one. A class that overrides either method
        owns the state's format: its fingerprint is ``"custom"``, and
        `snapshot_version` alone tells its formats apart.

        Returns:
            32 hexadecimal digits, or ``"custom"``.

        Raises:
            ConfigurationError: The annotations cannot be resolved.
        """
        fingerprint = cls.__dict__.get("_fingerprint_cache")
        if fingerprint is None:
            custom = _has_custom_state(cls)
            fingerprint = (
                CUSTOM_FINGERPRINT if custom else state_digest(cls._state_types())
            )
            cls._fingerprint_cache = fingerprint
        return fingerprint

    def to_snapshot(self) -> Snapshot:
        """Return a `Snapshot` of the current state at the current version.

        Besides `snapshot_state`, the stored state holds, under the reserved
        key ``"__orchestrix__"``, the class's `state_fingerprint` and the id of
        the last event the state reflects, which `Repository.get` compares
        with the stream.

        With the default `snapshot_state` and `restore_state`, the stored state
        is first restored as a load restores it and compared with this
        aggregate, by type and value: no snapshot is taken that would load
        another state. Custom formats own their correctness: not checked.

        Raises:
            InvalidArgumentError: The aggregate has pending events or no events.
            ConfigurationError: See `snapshot_state`, or the state uses the
                reserved key.
            SerializationError: See `snapshot_state`; or, with the default
                format, a value would be restored as another (a tuple in a
                ``list[Any]`` attribute as a list): the message names the
                attribute, the path of the value and the fix.
        """
        cls = type(self)
        _snapshot_state.refuse_unsaved(self, len(self._pending))
        packed = _snapshot_state.pack(cls, self.snapshot_state(), self._last_event_id)
        if not _has_custom_state(cls):
            _snapshot_state.check_reads_back(self, packed, cls._state_types())
        return Snapshot(
            stream_id=self._id,
            version=self._version,
            aggregate_type=cls.aggregate_type,
            schema_version=cls.snapshot_version,
            state=packed,
        )

    @classmethod
    def accepts_snapshot(cls, snapshot: Snapshot) -> bool:
        """Return True if this class can restore *snapshot*.

        It can if the snapshot was taken by this `aggregate_type`, with this
        `snapshot_version` and this `state_fingerprint`. Other snapshots are
        never restored; the repository replays the whole stream instead.

        Raises:
            ConfigurationError: See `state_fingerprint`.
        """
        try:
            return isinstance(cls._open_snapshot(snapshot), SnapshotParts)
        except SerializationError:
            return False

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Self:
        """Rebuild an aggregate from *snapshot*, at the snapshot's version.

        Fold the events after ``snapshot.version`` with `replay` to bring it up
        to date.

        Raises:
            InvalidArgumentError: `accepts_snapshot` is False for *snapshot*.
            SerializationError: The state cannot be restored.
            ConfigurationError: See `state_fingerprint`.
        """
        parts = cls._open_snapshot(snapshot)
        if isinstance(parts, str):
            raise _snapshot_state.unusable(cls, snapshot, parts)
        return cls._restore_snapshot(snapshot, parts)

    @classmethod
    def _open_snapshot(cls, snapshot: Snapshot) -> SnapshotParts | str:
        """Return the parts of *snapshot* to restore, or why this class must not.

        Raises:
            SerializationError: The state is not a JSON object.
            ConfigurationError: See `state_fingerprint`.
        """
        return _snapshot_state.unpack(cls, snapshot)

    @classmethod
    def _restore_snapshot(cls, snapshot: Snapshot, parts: SnapshotParts) -> Self:
        aggregate = cls(snapshot.stream_id)
        aggregate.restore_state(parts.state)
        aggregate._version = snapshot.version
        aggregate._last_event_id = parts.event_id
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
    event: Event | None = None
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
    if event is not None:
        aggregate._last_event_id = event.id


async def _fold_after_snapshot(
    aggregate: AggregateRoot, records: AsyncIterator[Recorded]
) -> str | None:
    """Fold *records* onto an aggregate just restored from a snapshot.

    *records* start at the snapshot's own version: their first event must be
    the one the snapshot was taken after (same version, same id), and the
    others are folded as `_fold` does.

    Returns:
        None, or why the snapshot does not fit the stream; nothing is folded
        then.
    """
    misfit = await _snapshot_state.misfit(
        records, aggregate.version, aggregate._last_event_id
    )
    if misfit is None:
        await _fold(aggregate, records)
    return misfit


def _has_custom_state(cls: type[AggregateRoot]) -> bool:
    return (
        cls.snapshot_state is not AggregateRoot.snapshot_state
        or cls.restore_state is not AggregateRoot.restore_state
    )
