"""A digest of an aggregate's state fields that every process computes alike.

`orchestrix.aggregate` stores it in snapshots (ADR 0030): adding, removing or
retyping a state field changes it, so snapshots of an older shape are replayed,
never misread. Nothing here uses ``hash()`` or memory addresses, which differ
between processes.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
import types
import typing
from typing import Any, ClassVar, Final

import msgspec

from orchestrix.errors import ConfigurationError

__all__ = ["annotated_fields", "state_digest"]

# Changing how types are spelt changes every digest: bump this with it.
_FORMAT: Final = "orchestrix snapshot state 1"


def state_digest(fields: dict[str, Any]) -> str:
    """Return 32 hex digits naming *fields* (attribute name -> annotated type)."""
    lines = [f"{name}: {_type_text(hint, ())}" for name, hint in sorted(fields.items())]
    text = "\n".join([_FORMAT, *lines])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def annotated_fields(cls: type) -> dict[str, Any]:
    """Return the resolved annotations of *cls* and its bases, but ClassVars."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError as exc:
        msg = (
            f"cannot resolve the annotations of {cls.__qualname__} ({exc}): "
            f"define the annotated types at module level, or override "
            f"snapshot_state() and restore_state()"
        )
        raise ConfigurationError(msg) from exc
    return {
        name: hint
        for name, hint in hints.items()
        if typing.get_origin(hint) is not ClassVar
    }


def _type_text(hint: object, expanding: tuple[type, ...]) -> str:
    """Spell *hint* the same way in every process: no hash(), no id().

    Unions and literals are order-free, as their equality is. Dataclasses,
    msgspec structs, named tuples and typed dicts are spelt with their fields,
    enums with their values, so a change inside them changes the text too.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return f"Union[{', '.join(sorted(_type_text(a, expanding) for a in args))}]"
    if origin is typing.Literal:
        return f"Literal[{', '.join(sorted(_stable_repr(a) for a in args))}]"
    if origin is not None:
        inner = ", ".join(_type_text(arg, expanding) for arg in args)
        return f"{_type_text(origin, expanding)}[{inner}]"
    if isinstance(hint, type):
        return _class_text(hint, expanding)
    return _stable_repr(hint)


def _class_text(cls: type, expanding: tuple[type, ...]) -> str:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if cls in expanding:  # a recursive type, already being spelt out
        return name
    if issubclass(cls, enum.Enum):
        values = ", ".join(
            f"{key}={_stable_repr(member.value)}"
            for key, member in cls.__members__.items()
        )
        return f"{name}{{{values}}}"
    if (
        dataclasses.is_dataclass(cls)
        or issubclass(cls, msgspec.Struct)
        or typing.is_typeddict(cls)
        or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    ):
        fields = ", ".join(
            f"{field}: {_type_text(hint, (*expanding, cls))}"
            for field, hint in annotated_fields(cls).items()
        )
        return f"{name}{{{fields}}}"
    return name


def _stable_repr(value: object) -> str:
    # A default repr holds a memory address, which differs in every process.
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))
