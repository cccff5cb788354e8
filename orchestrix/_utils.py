"""Helpers shared by the core and the backends; no compatibility promise."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final, Self

from orchestrix.errors import InvalidArgumentError, ResourceClosedError
from orchestrix.protocols import MAX_STREAM_ID_LENGTH

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from orchestrix.messages import Message


__all__ = [
    "AsyncResource",
    "check_limit",
    "check_non_negative",
    "check_stream_id",
    "default_group",
    "message_type_names",
    "redact_url",
]

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def check_stream_id(stream_id: object) -> str:
    """Return *stream_id* if every backend can store it, else raise.

    Raises:
        InvalidArgumentError: Not a str, empty, too long, or holding NUL or an
            unpaired surrogate.
    """
    if type(stream_id) is not str:
        if not isinstance(stream_id, str):
            msg = f"stream id must be a str, got {type(stream_id).__name__}"
            raise InvalidArgumentError(msg)
        stream_id = str.__str__(stream_id)
    length = len(stream_id)
    if not 0 < length <= MAX_STREAM_ID_LENGTH:
        msg = (
            f"stream id must be 1 to {MAX_STREAM_ID_LENGTH} characters, "
            f"got {length}: {stream_id[:40]!r}"
        )
        raise InvalidArgumentError(msg)
    if "\x00" in stream_id or (
        not stream_id.isascii() and _SURROGATE.search(stream_id)
    ):
        msg = (
            f"stream id {stream_id[:40]!r} holds a NUL character or an unpaired "
            f"surrogate, which no backend can store"
        )
        raise InvalidArgumentError(msg)
    return stream_id


def check_non_negative(name: str, value: int) -> int:
    """Return *value* if it is an int >= 0, else raise InvalidArgumentError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{name} must be an int >= 0, got {value!r}"
        raise InvalidArgumentError(msg)
    return value


def check_limit(limit: int | None) -> int | None:
    """Return *limit* if it is None or an int >= 0, else raise InvalidArgumentError."""
    if limit is None:
        return None
    return check_non_negative("limit", limit)


# Any number of slashes after the scheme's colon: a mistyped URL such as
# "postgresql:/user:pw@host" must not show its password either.
_PASSWORD: Final = re.compile(r"(?P<head>:/*[^/@:]*:)(?P<password>[^/@]*)(?P<tail>@)")


def redact_url(url: str) -> str:
    """Return *url* with any password replaced by ``***``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


class AsyncResource:
    """Mixin: ``async with`` support and the closed state for stores and buses."""

    _closed: bool = False

    def _check_open(self) -> None:
        if self._closed:
            msg = f"{type(self).__name__} is closed; open a new one"
            raise ResourceClosedError(msg)

    async def close(self) -> None:
        """Release resources; later calls are no-ops (see `EventStore.close`)."""
        self._closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def message_type_names(cls: type[Message]) -> tuple[str, ...]:
    """Return the type names a message of *cls* is delivered under, most specific first.

    A subscription to any of them (a base class, even `Event`) receives it.
    """
    from orchestrix.messages import Message

    return tuple(
        base.__dict__["__message_type__"]
        for base in cls.__mro__
        if isinstance(base, type)
        and issubclass(base, Message)
        and "__message_type__" in base.__dict__
    )


def default_group(handler: Callable[..., object]) -> str:
    """Return the consumer group of a handler subscribed with ``group=None``.

    The handler's qualified name: one handler run by several processes competes
    for messages, while distinct handlers each receive every message.
    """
    module = getattr(handler, "__module__", None) or "?"
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return f"{module}.{name}"
