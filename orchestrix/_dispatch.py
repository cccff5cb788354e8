"""Methods chosen by event class: the tables behind `@applies` and `@handles`.

Aggregates and projections both mark methods with the event classes they take,
inherit their bases' tables, and pick the method of an event's most specific
class. Both use these two functions; no compatibility promise.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from orchestrix.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orchestrix.messages import Event

__all__ = ["collect_methods", "method_for"]


def collect_methods(
    cls: type,
    inherited: Iterable[dict[type[Event], str]],
    mark: str,
    kind: str,
) -> dict[type[Event], str]:
    """Return *cls*'s table: event class -> name of the method marked for it.

    The tables of the bases come first (in order); a method of *cls* marked
    with attribute *mark* takes its event classes over, and a redecorated
    method drops what its name took in the bases.

    Raises:
        ConfigurationError: Two methods of *cls* take one event class (*kind*
            names them in the message, such as "apply methods").
    """
    methods: dict[type[Event], str] = {}
    for table in inherited:
        methods.update(table)
    own: dict[type[Event], str] = {}
    for name, value in cls.__dict__.items():
        taken: tuple[type[Event], ...] | None = (
            getattr(value, mark, None) if inspect.isfunction(value) else None
        )
        if taken is None:
            continue
        methods = {event: method for event, method in methods.items() if method != name}
        for event_type in taken:
            previous = own.get(event_type)
            if previous is not None and previous != name:
                msg = (
                    f"{cls.__qualname__} declares two {kind} for "
                    f"{event_type.type_name()!r} ({event_type.__qualname__}): "
                    f"{previous} and {name}; keep one"
                )
                raise ConfigurationError(msg)
            own[event_type] = name
    methods.update(own)
    return methods


def method_for(
    methods: dict[type[Event], str],
    cache: dict[type[Event], str | None],
    event_type: type[Event],
) -> str | None:
    """Return the method of *event_type*'s most specific class in *methods*.

    Answers are kept in *cache*, one entry per concrete event class.
    """
    if event_type in cache:
        return cache[event_type]
    found = next(
        (methods[base] for base in event_type.__mro__ if base in methods), None
    )
    cache[event_type] = found
    return found
