"""Proof that an encoded message reads back equal: the checks behind `codec.encode`.

`orchestrix.codec.encode` calls `prepare` once per message class, then, for each
message, the fast check it returned (field values of exactly the declared,
simple types) and, when that cannot decide, `verify` (decode again and
compare). Every refusal is a `SerializationError` naming the class, the id,
the field path and the fix.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import sys
import types
import typing
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, Flag
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, cast
from uuid import UUID

import msgspec

from orchestrix.errors import SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from orchestrix.messages import Message

__all__ = [
    "ENCODE_ERRORS",
    "NAN_FIX",
    "encode_problem",
    "encodes",
    "plans",
    "prepare",
    "simple_checks",
    "unencodable",
    "verify",
    "walk",
]

_encode: Final = msgspec.json.Encoder().encode

# What msgspec's encoder raises for a value it cannot write; ValueError covers
# UnicodeEncodeError (lone surrogates) and ints too long to convert to text.
ENCODE_ERRORS: Final = (TypeError, ValueError, msgspec.EncodeError, RecursionError)
# Most arrays and objects one payload may nest, so that any reader, however deep
# its own stack, decodes it within Python's recursion limit (orjson allows 254).
_MAX_DEPTH: Final = 256
NAN_FIX: Final = "use a finite float, or None in an optional field"
_TYPE_FIX: Final = "give a value of the type the field declares"
_FLAT_FIX: Final = "store a flatter value"


class _Plan(NamedTuple):
    """What proving that a message of one class reads back equal needs."""

    decode: Callable[[bytes], Any]
    values: Callable[[Any], tuple[Any, ...]]
    names: tuple[str, ...]
    # The fields whose type may hold a datetime, which must not be naive.
    dated: tuple[str, ...]


# message class -> True if a message's field values alone prove it reads back equal
simple_checks: dict[type[Message], Callable[[Any], bool]] = {}
plans: dict[type[Message], _Plan] = {}


# --- proving that an encoded message reads back equal -------------------------

# The location msgspec appends to a DecodeError: "... - at `$.lines[0].sku`".
_AT: Final = re.compile(r" - at (`key` in )?`\$([^`]*)`$")
_STEP: Final = re.compile(r"\.(\w+)|\[(\d+)\]|\[\.\.\.\]")
_UNKNOWN: Final = object()
# Types whose values read back equal whenever ``type(value) is T``.
_EXACT: Final = (str, int, bool, date, timedelta, UUID, bytes, bytearray)


def prepare(
    cls: type[Message], decoder: Callable[[bytes], Any]
) -> Callable[[Any], bool]:
    """Plan the checks of *cls*, whose typed *decoder* is given; return the fast one."""
    names = tuple(field.name for field in dataclasses.fields(cls))
    simple: Callable[[Any], bool] = _never
    dated = names
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
        dated = tuple(n for n in names if _may_hold_datetime(hints.get(n), set()))
        simple = _simple_check(cls, hints)
    except Exception:  # noqa: BLE001 -- msgspec read the hints; here only speed is lost
        dated, simple = names, _never
    plans[cls] = _Plan(decoder, attrgetter(*names), names, dated)
    simple_checks[cls] = simple
    return simple


def _never(message: object) -> bool:  # noqa: ARG001 -- the signature of a check
    return False


def _may_hold_datetime(hint: object, seen: set[type]) -> bool:
    """Tell whether a value of type *hint* may hold a datetime that reads back."""
    if not isinstance(hint, type):
        inner: Iterable[object] = typing.get_args(hint)  # unions, list[X], ...
    elif issubclass(hint, datetime):
        return True
    elif hint in seen or hint.__module__ == "builtins":
        return False
    else:  # a dataclass, Struct, NamedTuple...: its fields
        seen.add(hint)
        inner = typing.get_type_hints(hint).values()
    return any(_may_hold_datetime(arg, seen) for arg in inner)


def _simple_check(cls: type[Message], hints: dict[str, Any]) -> Callable[[Any], bool]:
    """Compile a test telling whether a message's values alone prove it reads back.

    It covers the field types whose values read back equal whenever they have
    exactly the declared type (and are finite, or in a timezone JSON keeps),
    containers of them and dataclasses of them; for any other class it is
    `_never`, and every message is decoded again instead.

    The test is one function of plain statements per dataclass: each container
    is walked once by a ``for`` loop that tests its items inline, because a
    function call or a generator step per item would cost more than msgspec
    spends encoding the item (ADR 0034).
    """
    namespace: dict[str, Any] = {
        "UTC": UTC,
        "ZONES": _zones,
        "keeps": _keeps,
        "timezone": timezone,
        **{kind.__name__: kind for kind in _SCALAR_TESTS},
    }
    name = _record_check(cls, hints, namespace, {})
    return _never if name is None else cast("Callable[[Any], bool]", namespace[name])


class _Scope(NamedTuple):
    """Where the check of one dataclass is being written."""

    namespace: dict[str, Any]
    # dataclass -> the name of its compiled check; None while being built
    built: dict[type, str | None]
    # fresh local variable names
    fresh: Iterator[str]


def _record_check(
    cls: type,
    hints: dict[str, Any] | None,
    namespace: dict[str, Any],
    built: dict[type, str | None],
) -> str | None:
    """Compile a check of every field of dataclass *cls*; return its name, or None."""
    if cls in built:
        return built[cls]  # None while being built: a recursive type
    built[cls] = None
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.eq or hasattr(cls, "__post_init__"):
        return None  # decoding would not give an equal instance back
    scope = _Scope(namespace, built, map("v{}".format, itertools.count()))
    lines = _fields_check(cls, hints, "m", scope, 0)
    if lines is None:
        return None
    name = f"f{len(namespace)}"
    source = "\n    ".join([f"def {name}(m):", *lines, "return True"])
    exec(source, namespace)  # noqa: S102 -- built from identifiers and constants
    built[cls] = name
    return name


def _fields_check(
    cls: type, hints: dict[str, Any] | None, obj: str, scope: _Scope, depth: int
) -> list[str] | None:
    """Return `_check` statements for every field of dataclass instance *obj*."""
    hints = hints or typing.get_type_hints(cls, include_extras=True)
    lines = []
    for item in dataclasses.fields(cls):
        var = next(scope.fresh)
        body = _check(hints.get(item.name), var, scope, depth)
        if body is None or not item.name.isidentifier():
            return None
        lines += [f"{var} = {obj}.{item.name}", *body]
    return lines


def _alias(namespace: dict[str, Any], value: object) -> str:
    name = f"t{len(namespace)}"
    namespace[name] = value
    return name


# A timezone JSON keeps exactly: a fixed offset of whole minutes (see _keeps).
_ZONE: Final = (
    "((z := {v}.tzinfo) is UTC or (type(z) is timezone and (z in ZONES or keeps(z))))"
)
_MINUTE: Final = timedelta(minutes=1)
# The fixed-offset timezones _keeps has accepted; at most one per minute of offset.
_zones: set[timezone] = {UTC}


def _keeps(zone: timezone) -> bool:
    if zone.utcoffset(None) % _MINUTE:
        return False
    _zones.add(zone)
    return True


# Tests proving that the value of variable {v} reads back equal, by its type.
_SCALAR_TESTS: Final[dict[type, str]] = {
    **{kind: f"type({{v}}) is {kind.__name__}" for kind in _EXACT},
    float: "type({v}) is float and {v} - {v} == 0.0",  # false for NaN and infinities
    Decimal: "type({v}) is Decimal and {v}.is_finite()",
    datetime: "type({v}) is datetime and " + _ZONE,
    time: "type({v}) is time and ({v}.tzinfo is None or " + _ZONE + ")",
}
# Containers nested deeper than this are decoded again instead: CPython compiles
# at most 20 nested loops in one function.
_MAX_NESTING: Final = 12
# Lines of a nested dataclass's check copied in place of a call to it.
_MAX_INLINE: Final = 60


def _check(hint: object, var: str, scope: _Scope, depth: int) -> list[str] | None:
    """Return statements returning False unless *var* holds a provable *hint* value.

    None if a value of type *hint* is never proven by its type alone.
    """
    test = _scalar_test(hint, var, scope.namespace)
    if test is not None:
        return [f"if not ({test}): return False"]
    if depth >= _MAX_NESTING:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        inner = _check(rest[0], var, scope, depth + 1) if len(rest) == 1 else None
        return None if inner is None else [f"if {var} is not None:", *_indent(inner)]
    return _container_check(hint, var, scope, depth + 1)


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" for line in lines]


def _scalar_test(hint: object, var: str, namespace: dict[str, Any]) -> str | None:
    """Return an expression proving the value of *var* reads back equal, or None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type):
        if hint in _SCALAR_TESTS:
            return _SCALAR_TESTS[hint].format(v=var)
        if issubclass(hint, Enum) and not issubclass(hint, Flag):
            return f"type({var}) is {_alias(namespace, hint)}"
    elif origin is Literal and all(type(arg) in (str, int) for arg in args):
        choices = _alias(namespace, frozenset(args))
        return f"type({var}) in (str, int) and {var} in {choices}"
    elif origin in (typing.Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        inner = _scalar_test(rest[0], var, namespace) if len(rest) == 1 else None
        return None if inner is None else f"{var} is None or ({inner})"
    return None


def _container_check(
    hint: object, var: str, scope: _Scope, depth: int
) -> list[str] | None:
    """Return `_check` for a collection or dataclass type, or None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if (origin in (list, set, frozenset) and len(args) == 1) or (
        origin is tuple and args[1:] == (...,)
    ):
        item = next(scope.fresh)
        inner = _check(args[0], item, scope, depth)
        kind = cast("type", origin).__name__
        lines = [f"if type({var}) is not {kind}: return False", f"for {item} in {var}:"]
    elif origin is dict and args[:1] == (str,):
        key, item = next(scope.fresh), next(scope.fresh)
        inner = _check(args[1], item, scope, depth)
        lines = [
            f"if type({var}) is not dict: return False",
            f"for {key}, {item} in {var}.items():",
            f"    if type({key}) is not str: return False",
        ]
    elif origin is tuple:  # a fixed shape, such as tuple[int, str]
        items = [next(scope.fresh) for _ in args]
        checks = [
            _check(arg, name, scope, depth)
            for arg, name in zip(args, items, strict=True)
        ]
        if None in checks:
            return None
        lines = [
            f"if type({var}) is not tuple or len({var}) != {len(args)}: return False"
        ]
        if items:
            lines.append(f"{', '.join(items)}, = {var}")
        return lines + [line for check in checks for line in check or ()]
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_check(hint, var, scope, depth)
    else:
        return None
    return None if inner is None else [*lines, *_indent(inner)]


def _dataclass_check(
    hint: type, var: str, scope: _Scope, depth: int
) -> list[str] | None:
    """Return `_check` for a dataclass: its fields in place, or a call to its check."""
    # Compiled on its own first, which also tells that it contains no cycle.
    name = _record_check(hint, None, scope.namespace, scope.built)
    if name is None:
        return None
    kind = _alias(scope.namespace, hint)
    inline = _fields_check(hint, None, var, scope, depth)
    if inline is not None and len(inline) <= _MAX_INLINE:
        return [f"if type({var}) is not {kind}: return False", *inline]
    return [f"if type({var}) is not {kind} or not {name}({var}): return False"]


def verify(message: Message, plan: _Plan, payload: bytes) -> None:
    """Raise SerializationError unless *payload* decodes to *message*."""
    # Each array or object opens with one of these bytes (strings may hold more).
    if (
        payload.count(b"[") + payload.count(b"{") > _MAX_DEPTH
        and _depth(message, _MAX_DEPTH) > _MAX_DEPTH
    ):
        raise _too_deep(message, plan)
    try:
        decoded = plan.decode(payload)
    except msgspec.DecodeError as exc:
        raise _misread(message, exc) from exc
    try:
        same = plan.values(decoded) == plan.values(message)
    except ArithmeticError:  # Decimal("sNaN") refuses to be compared
        same = False
    if not same:
        raise _difference(message, decoded)
    for name in plan.dated:
        value = getattr(message, name)
        found = (
            [(f".{name}", value)]  # a datetime field: no need to walk
            if isinstance(value, datetime)
            else walk(value, f".{name}")
        )
        for path, item in found:
            if isinstance(item, datetime) and item.utcoffset() is None:
                raise _refuse(
                    message,
                    path,
                    f"datetime {item.isoformat()} has no timezone",
                    "give an aware datetime, e.g. datetime.now(UTC)",
                )


def _refuse(message: Message, path: str, problem: str, fix: str) -> SerializationError:
    name = type(message).__qualname__
    where = f"{name}{path}: " if path else ""
    return SerializationError(
        f"cannot encode {name} {message.id!r}: {where}{problem}; {fix}"
    )


def encodes(value: object) -> bool:
    try:
        _encode(value)
    except ENCODE_ERRORS:
        return False
    return True


def encode_problem(exc: BaseException) -> tuple[str, str]:
    """Return what is wrong with a value msgspec could not encode, and the fix."""
    if isinstance(exc, RecursionError):
        limit = sys.getrecursionlimit()
        return f"nested deeper than the recursion limit ({limit})", _FLAT_FIX
    if isinstance(exc, UnicodeEncodeError):
        return str(exc), "strings must be valid Unicode, without lone surrogates"
    return str(exc), "use a field type the codec supports (see the codec reference)"


def unencodable(
    message: Message, plan: _Plan, exc: BaseException
) -> SerializationError:
    if isinstance(exc, RecursionError):
        return _too_deep(message, plan)
    path = next((f".{n}" for n in plan.names if not encodes(getattr(message, n))), "")
    return _refuse(message, path, *encode_problem(exc))


def _too_deep(message: Message, plan: _Plan) -> SerializationError:
    depths = {name: _depth(getattr(message, name), _MAX_DEPTH) for name in plan.names}
    deepest = max(depths, key=depths.__getitem__)
    problem = f"nested more than {_MAX_DEPTH} levels deep"
    return _refuse(message, f".{deepest}", problem, _FLAT_FIX)


def _misread(message: Message, exc: msgspec.DecodeError) -> SerializationError:
    text = str(exc)
    found = _AT.search(text)
    reason, path = (text[: found.start()], found.group(2)) if found else (text, "")
    if found and found.group(1):
        return _refuse(message, path, f"a key would not read back: {reason}", _TYPE_FIX)
    # NaN and Infinity are written as null: look for one where null was found.
    wanted = _is_nan if "got `null`" in reason else None
    where, value = _follow(message, list(_STEP.finditer(path)), "", wanted)
    if _is_nan(value):
        problem = f"NaN/Infinity cannot be stored in JSON (got {value!r})"
        return _refuse(message, where, problem, NAN_FIX)
    if value is _UNKNOWN:
        return _refuse(message, path, f"{reason} when read back", _TYPE_FIX)
    return _refuse(
        message, where, f"{reason} when read back (got {_show(value)})", _TYPE_FIX
    )


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _follow(
    value: object,
    steps: list[re.Match[str]],
    path: str,
    wanted: Callable[[object], bool] | None,
) -> tuple[str, object]:
    """Return the path and value at msgspec error *steps* inside *value*.

    A ``[...]`` step (a dict value, key unknown) is resolved to the first value
    that is *wanted*. The value is _UNKNOWN where the steps cannot be followed.
    """
    for at, step in enumerate(steps):
        name, index = step.groups()
        try:
            if name is not None:
                value = value[name] if isinstance(value, dict) else getattr(value, name)
                path += f".{name}"
            elif index is not None:
                value = list(value)[int(index)]  # type: ignore[call-overload]  # arrays only
                path += f"[{index}]"
            elif wanted is not None and isinstance(value, dict):
                for key, item in value.items():
                    inner = _follow(item, steps[at + 1 :], f"{path}[{key!r}]", wanted)
                    if wanted(inner[1]):
                        return inner
                return path, _UNKNOWN
            else:
                return path, _UNKNOWN
        except (LookupError, AttributeError, TypeError):
            return path, _UNKNOWN
    return path, value


def _difference(message: Message, decoded: Message) -> SerializationError:
    path, given, back = "", cast("object", message), cast("object", decoded)
    # Descend to the innermost value that differs (at most _MAX_DEPTH levels).
    while True:
        pairs = _pairs(given, back)
        differing = next((p for p in pairs if not _equal(p[1], p[2])), None)
        if differing is None:
            break
        step, given, back = differing
        path += step
    return _refuse(message, path, *_explain(given, back))


def _pairs(given: object, back: object) -> list[tuple[str, object, object]]:
    """Return the children of two values of one shape (not sets), or none."""
    if type(given) is not type(back) or isinstance(given, (set, frozenset)):
        return []
    ours, theirs = _children(given) or [], _children(back) or []
    if [step for step, _ in ours] != [step for step, _ in theirs]:
        return []
    return [(s, a, b) for (s, a), (_, b) in zip(ours, theirs, strict=True)]


def _equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 -- a value that cannot be compared differs
        return False


def _explain(given: object, back: object) -> tuple[str, str]:
    """Return what is wrong with *given*, read back as *back*, and the fix."""
    if _is_nan(given):
        return f"NaN/Infinity cannot be stored in JSON (got {given!r})", NAN_FIX
    if isinstance(given, Decimal) and given.is_nan():
        return (
            f"Decimal {given} cannot be read back equal (NaN never equals itself)",
            "use a number, or None in an optional field",
        )
    if (
        isinstance(given, (datetime, time))
        and type(back) is type(given)
        and given.utcoffset() != back.utcoffset()
    ):
        problem = (
            f"the UTC offset of {given.isoformat()} is not a whole number of "
            f"minutes, which is all JSON keeps"
        )
        return problem, "use an offset of whole minutes, or value.astimezone(UTC)"
    fix = _TYPE_FIX
    if type(given) is not type(back):
        if isinstance(given, (tuple, set, frozenset)):
            fix = f"give a list, or declare the field {type(given).__name__}[...]"
        elif isinstance(back, (str, int, float, list, dict, type(None))):
            fix = f"{_TYPE_FIX}: a field typed Any reads back JSON values only"
    return f"{_show(given)} reads back as {_show(back)}", fix


def _show(value: object) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else f"{text[:57]}..."  # noqa: PLR2004 -- width
    return f"{type(value).__name__} {text}"


def _children(value: object) -> list[tuple[str, object]] | None:
    """Return the items of a value JSON writes as an array or object, else None."""
    if isinstance(value, dict):
        return [(f"[{k!r}]", v) for k, v in value.items()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [(f"[{i}]", v) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            (f".{f.name}", getattr(value, f.name)) for f in dataclasses.fields(value)
        ]
    if isinstance(value, msgspec.Struct):
        return [(f".{n}", getattr(value, n)) for n in value.__struct_fields__]
    return None


def walk(value: object, path: str) -> Iterator[tuple[str, object]]:
    """Yield *value* and everything inside it, depth first, with their paths."""
    stack = [(path, value)]
    while stack:
        path, value = stack.pop()
        yield path, value
        children = _children(value) or ()
        stack.extend((path + step, child) for step, child in reversed(children))


def _depth(value: object, limit: int) -> int:
    """Return how many arrays and objects deep *value* is, up to just over *limit*."""
    deepest = 0
    stack = [(value, 1)]
    while stack and deepest <= limit:  # the limit also stops at cycles
        value, depth = stack.pop()
        children = _children(value)
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for _, child in children)
    return deepest
