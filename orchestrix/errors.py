"""The exceptions orchestrix raises, in one hierarchy.

Every error a user can catch derives from `OrchestrixError`; several also derive
from the builtin a caller would naturally catch (`LookupError`, `ValueError`,
`ConnectionError`, `TimeoutError`, `ImportError`)::

    OrchestrixError
    ├── ConcurrencyError                     stream not at the expected version
    ├── DuplicateEventError                  an event id is already stored elsewhere
    ├── AggregateNotFound (LookupError)      no stream for this aggregate id
    ├── InvalidArgumentError (ValueError)    a bad stream id, version, limit, ...
    ├── SerializationError (ValueError)      a message cannot be encoded or decoded
    │   ├── UnknownMessageType               no class registered for a type name
    │   └── CloudEventsFormatError           a CloudEvent breaks a rule of the spec
    ├── ConfigurationError (ValueError)      bad URL, option or declaration
    │   └── DuplicateTypeNameError (TypeError)
    ├── MissingDependencyError (ImportError) a backend's driver is not installed
    ├── BackendError                         the storage or transport failed
    │   ├── BackendUnavailable (ConnectionError)
    │   ├── BackendTimeoutError (TimeoutError)
    │   ├── SchemaVersionError               database schema newer than this code
    │   └── ResourceClosedError              used after close()
    ├── HandlerRegistrationError             a second handler for one command type
    │   └── NoHandlerError (LookupError)     a command nobody handles
    ├── HandlerError (ExceptionGroup)        handlers failed during a publish
    └── ProjectionError                      a projection's handler kept failing
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrix.messages import Message

__all__ = [
    "AggregateNotFound",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailable",
    "CloudEventsFormatError",
    "ConcurrencyError",
    "ConfigurationError",
    "DuplicateEventError",
    "DuplicateTypeNameError",
    "HandlerError",
    "HandlerRegistrationError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "NoHandlerError",
    "OrchestrixError",
    "ProjectionError",
    "ResourceClosedError",
    "SchemaVersionError",
    "SerializationError",
    "UnknownMessageType",
]


class OrchestrixError(Exception):
    """Base class of every error orchestrix raises on purpose."""


def _describe_version(version: int | None) -> str:
    if version is None:
        return "any version"
    if version == 0:
        return "no stream (version 0)"
    if version == -1:
        return "an existing stream"
    return f"version {version}"


class ConcurrencyError(OrchestrixError):
    """A stream was not at the version the append expected.

    Nothing was written. Reload the aggregate (or re-read the stream), decide
    again, and retry.

    Attributes:
        stream_id: The stream that was appended to.
        expected: The expected version given to the append.
        actual: The stream's version when the append was checked.
    """

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} was expected at {_describe_version(expected)} "
            f"but is at version {actual}; nothing was written: reload the stream "
            f"and retry"
        )

    def __reduce__(self) -> tuple[type[Self], tuple[str, int | None, int]]:
        return (type(self), (self.stream_id, self.expected, self.actual))


class DuplicateEventError(OrchestrixError):
    """An appended event's id is already stored, but not as this same append.

    Retrying an append whose acknowledgement was lost is safe (it returns the
    original result); this error means an id was reused for a different event or
    stream. Nothing was written.

    Attributes:
        event_id: The id that is already stored.
        stream_id: The stream the append targeted.
    """

    def __init__(self, event_id: str, stream_id: str, detail: str = "") -> None:
        self.event_id = event_id
        self.stream_id = stream_id
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"event id {event_id!r} is already stored{extra}; an append to stream "
            f"{stream_id!r} cannot reuse it: give every new event a fresh id "
            f"(the default), and retry a lost acknowledgement with the same events"
        )

    def __reduce__(self) -> tuple[type[Self], tuple[str, str]]:
        return (type(self), (self.event_id, self.stream_id))


class AggregateNotFound(OrchestrixError, LookupError):  # noqa: N818 -- the contract fixes this condition name
    """No events exist for the requested aggregate.

    Attributes:
        aggregate_type: Type name of the aggregate asked for.
        aggregate_id: The id (stream id) that has no events.
    """

    def __init__(self, aggregate_type: str, aggregate_id: str) -> None:
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        super().__init__(
            f"no {aggregate_type} with id {aggregate_id!r}: its stream has no events; "
            f"create it with a command that records its first event and save it"
        )

    def __reduce__(self) -> tuple[type[Self], tuple[str, str]]:
        return (type(self), (self.aggregate_type, self.aggregate_id))


class InvalidArgumentError(OrchestrixError, ValueError):
    """An argument has a value orchestrix cannot accept (the message says which)."""


class SerializationError(OrchestrixError, ValueError):
    """A message could not be encoded to, or decoded from, its stored form."""


class UnknownMessageType(SerializationError):  # noqa: N818 -- the contract fixes this condition name
    """A stored or received type name has no message class in this process.

    Attributes:
        type_name: The type name that was not found.
    """

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        super().__init__(
            f"no message class is registered for type {type_name!r}: import the "
            f"module that defines it (class keyword type={type_name!r}), or read "
            f"the undecoded record through Recorded.record"
        )

    def __reduce__(self) -> tuple[type[Self], tuple[str]]:
        return (type(self), (self.type_name,))


class CloudEventsFormatError(SerializationError):
    """A CloudEvent breaks a rule of the CloudEvents 1.0 specification.

    Attributes:
        rule: Short statement of the rule that was broken.
        attribute: The attribute concerned, when there is one.
        index: For batch mode, the position of the failing event in the batch.
    """

    def __init__(
        self,
        rule: str,
        *,
        attribute: str | None = None,
        index: int | None = None,
    ) -> None:
        self.rule = rule
        self.attribute = attribute
        self.index = index
        where = f"batch item {index}: " if index is not None else ""
        what = f"attribute {attribute!r}: " if attribute is not None else ""
        super().__init__(f"invalid CloudEvent: {where}{what}{rule}")

    def __reduce__(self) -> tuple[type[Self], tuple[str]]:
        return (type(self), (self.rule,))

    def at_index(self, index: int) -> CloudEventsFormatError:
        """Return a copy of this error that names the batch item *index*."""
        return CloudEventsFormatError(self.rule, attribute=self.attribute, index=index)


class ConfigurationError(OrchestrixError, ValueError):
    """A URL, option or declaration is invalid (the message says how to fix it)."""


class DuplicateTypeNameError(ConfigurationError, TypeError):
    """Two message classes claim the same type name."""


class MissingDependencyError(OrchestrixError, ImportError):
    """A backend needs a driver that is not installed.

    Attributes:
        extra: The `orchestrix` extra that installs the driver.
    """

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"this backend needs the {package!r} package, which is not installed: "
            f"pip install 'orchestrix[{extra}]'",
            name=package,
        )

    def __reduce__(self) -> tuple[type[Self], tuple[str, str]]:
        return (type(self), (self.package, self.extra))


class BackendError(OrchestrixError):
    """The storage or transport behind a backend failed."""


class BackendUnavailable(BackendError, ConnectionError):  # noqa: N818 -- condition name, like trio's
    """The backend's server cannot be reached or the connection was lost."""


class BackendTimeoutError(BackendError, TimeoutError):
    """A bounded wait on the backend (a lock, a pool, a reply) ran out."""


class SchemaVersionError(BackendError):
    """The database schema is newer than this version of orchestrix knows.

    Upgrade orchestrix; nothing was changed in the database.
    """


class ResourceClosedError(BackendError):
    """A store or bus was used after `close()`."""


class HandlerRegistrationError(OrchestrixError):
    """A handler subscription breaks the bus rules (one handler per command type)."""


class NoHandlerError(HandlerRegistrationError, LookupError):
    """A command was published but no handler subscribes to its type."""


class HandlerError(OrchestrixError, ExceptionGroup[Exception]):
    """One or more handlers raised while a message was dispatched.

    Every other handler still ran. ``exceptions`` holds each handler's error,
    each with a note naming the handler; ``dispatched`` is the message.
    """

    dispatched: Message | None

    def __new__(
        cls,
        text: str,
        exceptions: Sequence[Exception],
        dispatched: Message | None = None,
    ) -> Self:
        """Create the group; *dispatched* is the message whose handlers failed."""
        self = super().__new__(cls, text, exceptions)
        self.dispatched = dispatched
        return self

    def __init__(
        self,
        text: str,
        exceptions: Sequence[Exception],
        dispatched: Message | None = None,  # noqa: ARG002 -- consumed by __new__
    ) -> None:
        super().__init__(text, exceptions)

    def derive(self, excs: Sequence[Exception]) -> HandlerError:  # type: ignore[override]  # keeps the subclass when split
        """Keep the subclass and the dispatched message when the group is split."""
        return HandlerError(self.message, excs, self.dispatched)


class ProjectionError(OrchestrixError):
    """A projection's handler kept failing on an event, so its runner stopped.

    The checkpoint stays at the last handled event: the next run starts with
    this event again. The handler's last error is the ``__cause__``.

    Attributes:
        projection: The projection's checkpoint name.
        event_id: The id of the event the handler failed on.
        event_type: Its type name.
        position: Its global position.
        cause: The handler's last error.
    """

    def __init__(
        self,
        projection: str,
        event_id: str,
        event_type: str,
        position: int,
        cause: BaseException | None = None,
    ) -> None:
        self.projection = projection
        self.event_id = event_id
        self.event_type = event_type
        self.position = position
        self.cause = cause
        reason = f"{type(cause).__name__}: {cause}" if cause is not None else "?"
        super().__init__(
            f"projection {projection!r} stopped: its handler failed on event "
            f"{event_id!r} of type {event_type!r} at position {position} ({reason}); "
            f"the checkpoint stays before it: fix the handler and run it again"
        )

    def __reduce__(self) -> tuple[type[Self], tuple[str, str, str, int]]:
        return (
            type(self),
            (self.projection, self.event_id, self.event_type, self.position),
        )
