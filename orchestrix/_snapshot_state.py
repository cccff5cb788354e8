"""The default snapshot state of aggregates, and the checks stored beside it.

`orchestrix.aggregate.AggregateRoot` keeps the public snapshot methods and
delegates here (ADR 0030): `collect` takes the annotated instance attributes,
`restore` converts them back to their annotated types, `pack` and `unpack`
keep the state fingerprint and the last event id under a reserved key, and
`misfit` checks that id against the stream on a load. `check_reads_back`
proves, when a snapshot is taken in the default format, that the stored state
restores every attribute as the live aggregate holds it; it costs one decode,
one restore and one walk of the state per snapshot taken, and nothing on load.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import AsyncGenerator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeAlias, cast
from uuid import UUID

import msgspec

from orchestrix._fingerprint import annotated_fields
from orchestrix.codec import decode_state, encode_state
from orchestrix.errors import (
    ConfigurationError,
    InvalidArgumentError,
    SerializationError,
)
from orchestrix.messages import MAX_SCHEMA_VERSION

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Callable,
        Collection,
        Iterable,
        Mapping,
    )

    from orchestrix.aggregate import AggregateRoot
    from orchestrix.protocols import Recorded
    from orchestrix.records import Snapshot

__all__ = [
    "CUSTOM_FINGERPRINT",
    "OWN_ATTRIBUTES",
    "SNAPSHOT_KEY",
    "SnapshotParts",
    "check_reads_back",
    "check_snapshot_version",
    "collect",
    "misfit",
    "pack",
    "refuse_slots",
    "refuse_unsaved",
    "restore",
    "state_types",
    "unpack",
    "unusable",
]

# Key of the stored snapshot state under which orchestrix keeps its checks.
SNAPSHOT_KEY: Final = "__orchestrix__"
# The state fingerprint of classes that override snapshot_state/restore_state.
CUSTOM_FINGERPRINT: Final = "custom"
# Instance attributes AggregateRoot keeps for itself: never snapshot state.
OWN_ATTRIBUTES: Final = frozenset({"_id", "_version", "_pending", "_last_event_id"})

# A value of the live state, the restored one, the entry of the container
# holding them (None for an attribute), and the step there: a format and a key.
_Entry: TypeAlias = tuple[object, object, "_Entry | None", str, object]
# An item inside a container: the step's format and key, then both values.
_Item: TypeAlias = tuple[str, object, object, object]
_FIELD: Final = ".{}"
_INDEX: Final = "[{}]"
_KEY: Final = "[{!r}]"
_MEMBER: Final = "{{{!r}}}"
_COLLECTIONS: Final = frozenset({list, tuple, dict, set, frozenset})
# Levels of containers `_equal` recurses into before it walks instead.
_DEEP: Final = 100
_WIDTH: Final = 100  # of a value shown in an error
# Annotations spelt otherwise than by their name.
_SPELT: Final = ((Any, "Any"), (None, "None"), (type(None), "None"), (..., "..."))
_SUGGESTED: Final = 4  # levels of containers spelt out in a suggested annotation
_FIXED: Final = 8  # longest tuple of mixed items suggested item by item


class SnapshotParts(NamedTuple):
    """What a snapshot this class accepts holds besides its version."""

    event_id: str
    state: dict[str, Any]


def check_snapshot_version(cls: type[AggregateRoot]) -> None:
    """Refuse a class whose snapshot_version is no int from 1 to the maximum."""
    version = cls.snapshot_version
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= MAX_SCHEMA_VERSION
    ):
        msg = (
            f"{cls.__qualname__}.snapshot_version must be an int from 1 to "
            f"{MAX_SCHEMA_VERSION}, got {version!r}"
        )
        raise ConfigurationError(msg)


def state_types(cls: type[AggregateRoot]) -> dict[str, Any]:
    """Return the annotated types of *cls*'s state attributes, by name."""
    return {
        name: hint
        for name, hint in annotated_fields(cls).items()
        if name not in OWN_ATTRIBUTES
    }


def collect(aggregate: AggregateRoot, types: Mapping[str, Any]) -> dict[str, Any]:
    """Return the default snapshot state of *aggregate*: see `snapshot_state`."""
    cls = type(aggregate)
    state: dict[str, Any] = {}
    for name, value in vars(aggregate).items():
        if name in OWN_ATTRIBUTES:
            continue
        if name not in types:
            msg = (
                f"{cls.__qualname__}.{name} has no annotation on the class, so a "
                f"snapshot could not restore it: annotate it in the class body "
                f"({name}: <type>), or override snapshot_state() and "
                f"restore_state()"
            )
            raise ConfigurationError(msg)
        state[name] = value
    try:
        return cast("dict[str, Any]", msgspec.to_builtins(state))
    except RecursionError as exc:
        msg = (
            f"cannot snapshot {cls.__qualname__} {aggregate.id!r}: its state nests "
            f"deeper than the recursion limit; keep a flatter state, or override "
            f"snapshot_state() and restore_state()"
        )
        raise SerializationError(msg) from exc
    except (TypeError, msgspec.EncodeError) as exc:
        msg = f"cannot snapshot {cls.__qualname__} {aggregate.id!r}: {exc}"
        raise SerializationError(msg) from exc


def restore(
    aggregate: AggregateRoot, state: Mapping[str, Any], types: Mapping[str, Any]
) -> None:
    """Set the default snapshot state on *aggregate*: see `restore_state`."""
    cls = type(aggregate)
    converted: dict[str, Any] = {}
    for name, value in state.items():
        if name not in types:
            msg = (
                f"snapshot state of {cls.__qualname__} holds {name!r}, which "
                f"the class does not annotate; bump "
                f"{cls.__qualname__}.snapshot_version whenever the state's "
                f"shape changes"
            )
            raise SerializationError(msg)
        try:
            converted[name] = msgspec.convert(value, types[name], str_keys=True)
        except msgspec.ValidationError as exc:
            msg = (
                f"snapshot state of {cls.__qualname__}: {name!r} does not fit "
                f"{types[name]!r}: {exc}; bump {cls.__qualname__}.snapshot_version "
                f"whenever the state's shape changes"
            )
            raise SerializationError(msg) from exc
    missing = sorted(set(vars(aggregate)) - OWN_ATTRIBUTES - converted.keys())
    if missing:
        msg = (
            f"snapshot state of {cls.__qualname__} lacks {missing[0]!r}, which "
            f"{cls.__qualname__}() sets; bump {cls.__qualname__}.snapshot_version "
            f"whenever the state's shape changes"
        )
        raise SerializationError(msg)
    for name, value in converted.items():
        setattr(aggregate, name, value)


def refuse_unsaved(aggregate: AggregateRoot, pending: int) -> None:
    """Refuse to snapshot an aggregate with *pending* events or none stored."""
    if pending or aggregate.version == 0:
        msg = (
            f"cannot snapshot {type(aggregate).__qualname__} {aggregate.id!r}: a "
            f"snapshot holds stored events only, and it has {pending} pending "
            f"event(s) at version {aggregate.version}; save it first"
        )
        raise InvalidArgumentError(msg)


def pack(cls: type[AggregateRoot], state: dict[str, Any], event_id: str) -> bytes:
    """Return the stored form of *state*, with the checks under the reserved key.

    Raises:
        ConfigurationError: *state* uses the reserved key.
        SerializationError: See `encode_state`.
    """
    if SNAPSHOT_KEY in state:
        msg = (
            f"{cls.__qualname__}.snapshot_state() returned the key "
            f"{SNAPSHOT_KEY!r}, which is reserved for orchestrix: rename it"
        )
        raise ConfigurationError(msg)
    checks = {"fingerprint": cls.state_fingerprint(), "event_id": event_id}
    return encode_state({SNAPSHOT_KEY: checks, **state})


def unpack(cls: type[AggregateRoot], snapshot: Snapshot) -> SnapshotParts | str:
    """Return the parts of *snapshot* to restore, or why *cls* must not.

    Raises:
        SerializationError: The state is not a JSON object.
        ConfigurationError: See `state_fingerprint`.
    """
    if snapshot.aggregate_type != cls.aggregate_type:
        return f"it was taken by aggregate type {snapshot.aggregate_type!r}"
    if snapshot.schema_version != cls.snapshot_version:
        return f"it has schema version {snapshot.schema_version}"
    state = decode_state(snapshot.state)
    checks = state.pop(SNAPSHOT_KEY, None)
    if not isinstance(checks, dict):
        return "it has no state fingerprint (taken by an older orchestrix)"
    fingerprint = checks.get("fingerprint")
    event_id = checks.get("event_id")
    expected = cls.state_fingerprint()
    if fingerprint != expected:
        return (
            f"its state fingerprint {fingerprint!r} is not {expected!r}: the "
            f"state's attributes or their types changed since it was taken"
        )
    if not isinstance(event_id, str) or not event_id or snapshot.version < 1:
        return "it does not name the last event it reflects"
    return SnapshotParts(event_id, state)


def unusable(
    cls: type[AggregateRoot], snapshot: Snapshot, reason: str
) -> InvalidArgumentError:
    """Return the error of `from_snapshot` for a snapshot `unpack` set aside."""
    return InvalidArgumentError(
        f"{cls.__qualname__} (type {cls.aggregate_type!r}, snapshot_version "
        f"{cls.snapshot_version}) cannot restore the snapshot of "
        f"{snapshot.stream_id!r} at version {snapshot.version}: {reason}; "
        f"replay the stream instead"
    )


async def misfit(
    records: AsyncIterator[Recorded], version: int, event_id: str
) -> str | None:
    """Read the first of *records*; return why it is not the snapshot's last event.

    That event is at the snapshot's *version* with id *event_id*. On a misfit,
    *records* is closed; otherwise the events after it are left to fold.
    """
    first = await anext(records, None)
    if first is None:
        return f"the stream ends before version {version}"
    if first.version != version or first.id != event_id:
        if isinstance(records, AsyncGenerator):
            await records.aclose()
        return (
            f"its event at version {first.version} is {first.id!r}, not "
            f"{event_id!r}, which the snapshot was taken after"
        )
    return None


def refuse_slots(cls: type[AggregateRoot]) -> None:
    """Refuse a class keeping state in slots, which snapshot_state cannot see."""
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names = [slots] if isinstance(slots, str) else list(slots)
        kept = [name for name in names if name not in {"__dict__", "__weakref__"}]
        if kept:
            where = "" if klass is cls else f" (declared by {klass.__qualname__})"
            msg = (
                f"{cls.__qualname__} keeps {', '.join(map(repr, kept))} in "
                f"__slots__{where}, where its snapshots would not see them: "
                f"remove __slots__ (aggregates keep their state in the instance "
                f"__dict__), or override snapshot_state() and restore_state()"
            )
            raise ConfigurationError(msg)


# --- proving that a snapshot restores the live state --------------------------


def check_reads_back(
    aggregate: AggregateRoot, packed: bytes, types: Mapping[str, Any]
) -> None:
    """Raise SerializationError unless *packed* restores *aggregate*'s state.

    The state is decoded and restored as a load restores it (a new instance,
    then `restore_state`), and every attribute is compared with the live one,
    down to the items of containers and the fields of dataclasses, by type and
    by value: a tuple that comes back a list, a Decimal that comes back a str,
    or a datetime that comes back in another time zone, differs.
    """
    cls = type(aggregate)
    state = decode_state(packed)
    del state[SNAPSHOT_KEY]
    restored = cls(aggregate.id)
    try:
        restored.restore_state(state)
    except (TypeError, ValueError) as exc:  # msgspec's errors are among them
        msg = (
            f"cannot snapshot {cls.__qualname__} {aggregate.id!r}: its state "
            f"would not restore: {exc}"
        )
        raise SerializationError(msg) from exc
    back = vars(restored)
    for name, value in vars(aggregate).items():
        if name in OWN_ATTRIBUTES:
            continue
        theirs = back[name]
        if not _equal(value, theirs, 0):
            found = _first_difference(value, theirs, name)
            top: _Entry = (value, theirs, None, _FIELD, name)
            raise _misread(aggregate, name, types[name], found or top)


def _equal(given: object, back: object, depth: int) -> bool:
    """Tell whether *back* is *given*, restored: the same types, the same values.

    The quick test of a whole attribute: `_first_difference` finds where it
    fails, and takes over below `_DEEP` levels, where recursion could fail.
    """
    kind = type(given)
    if kind is not type(back):
        return False
    compare = _COMPARE.get(kind)
    if compare is not None:
        return compare(given, back)
    if depth > _DEEP:
        return _first_difference(given, back, "") is None
    if kind is list or kind is tuple or kind is dict:
        return _equal_items(given, back, depth + 1)  # type: ignore[arg-type]  # as kind says
    inner = _inner(given, back)
    return inner is not None and all(_equal(a, b, depth + 1) for _, _, a, b in inner)


def _equal_items(
    given: list[object] | tuple[object, ...] | dict[object, object],
    back: list[object] | tuple[object, ...] | dict[object, object],
    depth: int,
) -> bool:
    if len(given) != len(back):
        return False
    levels = repeat(depth)
    if isinstance(given, dict) and isinstance(back, dict):
        return all(map(_same, given, back)) and all(
            map(_equal, given.values(), back.values(), levels)
        )
    return all(map(_equal, given, back, levels))


def _first_difference(given: object, back: object, name: str) -> _Entry | None:
    """Return the first entry inside attribute *name* whose values differ.

    Depth first, without recursion, so that any state the encoder accepted
    can be walked; the path of an entry is only spelt out for an error.
    """
    stack: list[_Entry] = [(given, back, None, _FIELD, name)]
    while stack:
        entry = stack.pop()
        mine, theirs = entry[0], entry[1]
        kind = type(mine)
        if kind is not type(theirs):
            return entry
        compare = _COMPARE.get(kind)
        if compare is not None:
            if not compare(mine, theirs):
                return entry
            continue
        if kind in _COLLECTIONS:
            inner = _collection_items(mine, theirs)  # type: ignore[arg-type]  # one of _COLLECTIONS
        else:
            inner = _inner(mine, theirs)
        if inner is None:
            return entry
        stack.extend((a, b, entry, style, key) for style, key, a, b in reversed(inner))
    return None


def _inner(given: object, back: object) -> list[_Item] | None:
    """Return the items to compare inside two values of one type, or None.

    None means they differ. Values that hold no items are compared here: the
    list is then empty.
    """
    if isinstance(given, (dict, list, tuple, set, frozenset)):
        return _collection_items(given, cast("Collection[object]", back))
    if dataclasses.is_dataclass(given) or isinstance(given, msgspec.Struct):
        names = _field_names(given)
        return [(_FIELD, n, getattr(given, n), getattr(back, n)) for n in names]
    return [] if _same(given, back) else None


def _collection_items(
    given: Collection[object], back: Collection[object]
) -> list[_Item] | None:
    """Return `_inner` of two collections of one type."""
    if len(given) != len(back):
        return None
    if isinstance(given, dict):
        back = cast("dict[object, object]", back)
        if not all(map(_same, given, back)):
            return None
        items = zip(given.items(), back.values(), strict=True)
        return [(_KEY, key, mine, theirs) for (key, mine), theirs in items]
    if isinstance(given, (set, frozenset)):
        # Equal items hash alike: pair each item with the one it equals.
        twins = {item: item for item in back}
        if any(item not in twins for item in given):
            return None
        return [(_MEMBER, item, item, twins[item]) for item in given]
    pairs = enumerate(zip(given, back, strict=True))
    return [(_INDEX, index, mine, theirs) for index, (mine, theirs) in pairs]


def _field_names(value: object) -> Iterable[str]:
    if isinstance(value, msgspec.Struct):
        return value.__struct_fields__
    return [field.name for field in dataclasses.fields(cast("Any", value))]


def _same(given: object, back: object) -> bool:
    """Tell whether two values without items are the same value of one type."""
    kind = type(given)
    return kind is type(back) and _COMPARE.get(kind, _same_repr)(given, back)


def _same_repr(given: object, back: object) -> bool:
    # Reprs tell apart what == does not: -0.0, time zones, a datetime's fold.
    try:
        return repr(given) == repr(back) and (
            isinstance(given, float) or bool(given == back)
        )
    except Exception:  # noqa: BLE001 -- a value that cannot be compared differs
        return False


def _same_decimal(given: Decimal, back: Decimal) -> bool:
    # Exact: tells 1.10 from 1.1 and -0 from 0, and NaN equals NaN.
    return not given.compare_total(back)


def _same_datetime(given: datetime, back: datetime) -> bool:
    if given.tzinfo is back.tzinfo and given.fold == back.fold:
        return given == back  # the common case, without the cost of reprs
    return _same_repr(given, back)


# How values of a type without items are compared, once their types are equal.
_COMPARE: Final[dict[type, Callable[[Any, Any], bool]]] = {
    **dict.fromkeys((str, int, bool, bytes, type(None)), operator.eq),
    **dict.fromkeys((float, date, time, timedelta, UUID), _same_repr),
    Decimal: _same_decimal,
    datetime: _same_datetime,
}


def _path(entry: _Entry | None) -> str:
    steps = []
    while entry is not None:
        _, _, entry, style, key = entry
        steps.append(style.format(key))
    return "".join(reversed(steps))


def _misread(
    aggregate: AggregateRoot, name: str, hint: object, found: _Entry
) -> SerializationError:
    cls = type(aggregate).__qualname__
    path, given, back = _path(found), found[0], found[1]
    if isinstance(given, (datetime, time)) and type(given) is type(back):
        fix = (
            "keep values JSON holds exactly (JSON keeps the UTC offset of a "
            "datetime, not its time zone: use value.astimezone(UTC))"
        )
    else:
        value = getattr(aggregate, name)
        fix = (
            f"annotate {cls}.{name} with the type it holds, such as "
            f"{name}: {_suggest(value)} (Any and object restore plain JSON values "
            f"only)"
        )
    return SerializationError(
        f"cannot snapshot {cls} {aggregate.id!r}: {cls}{path} is {_show(given)}, "
        f"which its snapshot would restore as {_show(back)}, since {cls}.{name} "
        f"is annotated {_spell(hint)}; {fix}, or override snapshot_state() and "
        f"restore_state()"
    )


def _show(value: object) -> str:
    text = repr(value)
    if len(text) > _WIDTH:  # the end shows too: a time zone, a last item
        text = f"{text[: _WIDTH * 2 // 3]}...{text[-(_WIDTH // 3) :]}"
    return f"{type(value).__name__} {text}"


def _spell(hint: object) -> str:
    """Spell a type annotation as it is written in a class body."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    special = next((text for key, text in _SPELT if hint is key), None)
    if special is not None:
        return special
    if origin in (typing.Union, types.UnionType):
        return " | ".join(map(_spell, args))
    if origin is not None and args:
        return f"{_spell(origin)}[{', '.join(map(_spell, args))}]"
    return hint.__qualname__ if isinstance(hint, type) else repr(hint)


def _suggest(value: object, depth: int = 0) -> str:
    """Return an annotation that would restore *value* as it is."""
    kind = type(value)
    if kind not in {tuple, dict, list, set, frozenset}:
        return "None" if value is None else kind.__qualname__
    if depth > _SUGGESTED:
        return "..."  # deeper than anyone reads, or than recursion allows
    if kind is tuple:
        items = cast("tuple[object, ...]", value)
        kinds = [_suggest(item, depth + 1) for item in items[:_FIXED]]
        if len(set(kinds)) > 1 and len(items) <= _FIXED:
            return f"tuple[{', '.join(kinds)}]"
        return f"tuple[{_union(items, depth)}, ...]"
    if isinstance(value, dict):
        return f"dict[{_union(value, depth)}, {_union(value.values(), depth)}]"
    return f"{kind.__name__}[{_union(cast('Iterable[object]', value), depth)}]"


def _union(items: Iterable[object], depth: int) -> str:
    kinds = sorted({_suggest(item, depth + 1) for item in islice(items, 100)})
    return " | ".join(kinds) or "Any"
