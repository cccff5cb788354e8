"""Helpers shared by the core and the backends; no compatibility promise."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Final, Self
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from orchestrix.errors import (
    ConfigurationError,
    InvalidArgumentError,
    ResourceClosedError,
)
from orchestrix.protocols import MAX_STREAM_ID_LENGTH

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from types import TracebackType
    from urllib.parse import SplitResult

    from orchestrix.messages import Message


__all__ = [
    "AsyncResource",
    "check_non_negative",
    "check_number",
    "check_stream_id",
    "default_group",
    "mask_password",
    "message_type_names",
    "redact_url",
    "split_url",
    "storable_text",
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


def storable_text(text: str) -> bool:
    """Return whether every backend can store *text*: no NUL, no lone surrogate."""
    return "\x00" not in text and (text.isascii() or not _SURROGATE.search(text))


def check_number(
    name: str, value: object, low: float, high: float, *, integer: bool
) -> float:
    """Return *value* if it is an int (or, unless *integer*, a float) in range.

    Raises:
        InvalidArgumentError: A bool, another type, NaN, or out of range; the
            message names *name*.
    """
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not (math.isfinite(value) and low <= value <= high)
    ):
        what = "an int" if integer else "a number"
        msg = f"{name} must be {what} from {low:g} to {high:g}, got {value!r}"
        raise InvalidArgumentError(msg)
    return value


def check_non_negative(name: str, value: int) -> int:
    """Return *value* if it is an int >= 0, else raise InvalidArgumentError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{name} must be an int >= 0, got {value!r}"
        raise InvalidArgumentError(msg)
    return value


# Any number of slashes after the scheme's colon: a mistyped URL such as
# "postgresql:/user:pw@host" must not show its password either. The password
# runs to the last "@" before a blank, so one holding an unencoded "@", "/",
# "?" or "#" is masked whole; an "@" later in the path or query may hide more
# than the password, never less.
_PASSWORD: Final = re.compile(r"(?P<head>:/*[^/:\s]*:)(?P<password>\S*)(?P<tail>@)")
_NETLOC: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/*(?P<netloc>[^/?#]*)")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MAX_PORT: Final = 65535


def redact_url(url: str) -> str:
    """Return *url* with any password replaced by ``***``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def _passwords(url: str) -> set[str]:
    found: set[str] = set()
    match = _PASSWORD.search(url)
    if match is not None:
        found.add(match["password"])
    netloc = _NETLOC.match(url)
    if netloc is not None:
        # As urllib reads the user info (up to the last "@"), and as asyncpg
        # does (up to the first).
        text = netloc["netloc"]
        found.add(text.rpartition("@")[0].partition(":")[2])
        found.add(text.partition("@")[0].partition(":")[2] if "@" in text else "")
    return {form for text in found for form in (text, unquote(text)) if form}


def mask_password(text: str, url: str) -> str:
    """Return *text* with the password of *url* masked, as written and decoded.

    For messages that may quote part of *url* without its scheme (urllib's,
    a driver's); URLs in *text* are redacted as by `redact_url` too.
    """
    text = redact_url(text)
    for password in sorted(_passwords(url), key=len, reverse=True):
        text = text.replace(password, "***")
    return text


def _port(host: str) -> str:
    if host.startswith("["):
        after = host.partition("]")[2]
        return after.removeprefix(":") if after.startswith(":") else after
    return host.rpartition(":")[2] if ":" in host else ""


def _split(url: str) -> SplitResult | str:
    """Return *url* split, or what is wrong with it."""
    if "\x00" in url:
        return "it holds a NUL character"
    try:
        return urlsplit(url)
    except ValueError as exc:
        # Returned as text, never chained: urllib's message may quote the
        # password.
        if "IPv6" in str(exc):
            return "an IPv6 host needs both '[' and ']'"
        return mask_password(str(exc), url)


def _netloc_problem(netloc: str, *, multi_host: bool) -> str | None:
    if netloc.count("@") > 1:
        # Drivers disagree on which "@" ends the user info (asyncpg takes the
        # first, urllib the last), so the URL would mean different things.
        return "an '@' in the user name or password must be written %40"
    hostinfo = netloc.rpartition("@")[2]
    for host in hostinfo.split(",") if multi_host else (hostinfo,):
        port = _port(host)
        # The port is not quoted: in a password with an unencoded "/" or "?",
        # what urllib takes for the port is part of the password.
        if port and not (
            port.isascii() and port.isdigit() and 0 < int(port) <= _MAX_PORT
        ):
            return (
                f"a port is not a number from 1 to {_MAX_PORT}; percent-encode "
                f"any '/', '?' or '@' in the user name or password"
            )
    return None


def _problem(url: str, parts: SplitResult, *, multi_host: bool) -> str | None:
    if "#" in url:
        return "a '#' starts a fragment, which no backend reads: write '#' as %23"
    problem = _netloc_problem(parts.netloc, multi_host=multi_host)
    if problem is not None:
        return problem
    if _BAD_ESCAPE.search(url):
        return "a '%' starts no escape: write a literal '%' as %25"
    try:
        decoded = unquote_to_bytes(url).decode()
    except UnicodeError:
        return "an escape or a character is not valid UTF-8"
    if "\x00" in decoded:
        return "it holds an escaped NUL character (%00)"
    return None


def split_url(
    url: object,
    *,
    kind: str,
    schemes: Collection[str],
    usage: str,
    multi_host: bool = False,
) -> SplitResult:
    """Return *url* split by `urllib.parse.urlsplit`, checked alike for every backend.

    Args:
        url: The URL as the user gave it.
        kind: The backend's name in messages (``"PostgreSQL"``).
        schemes: The schemes the backend accepts, in lower case.
        usage: What a good URL looks like, for the wrong-scheme message.
        multi_host: Whether the host part may list ``host:port`` pairs
            separated by commas.

    Raises:
        ConfigurationError: Not a str, another scheme, a NUL character,
            unbalanced IPv6 brackets, a ``#``, an unencoded ``@`` in the user
            name or password, a port that is not a number from 1 to 65535, a
            ``%`` that starts no escape, or escapes that are not UTF-8. The
            message shows the URL with its password masked.
    """
    if not isinstance(url, str):
        msg = f"a {kind} URL must be a str, got {type(url).__name__}"
        raise ConfigurationError(msg)
    shown = redact_url(url)
    split = _split(url)
    if not isinstance(split, str):
        if split.scheme not in schemes:
            msg = f"not a {kind} URL: {shown!r}; {usage}"
            raise ConfigurationError(msg)
        problem = _problem(url, split, multi_host=multi_host)
        if problem is None:
            return split
        split = problem
    msg = f"not a valid {kind} URL: {shown!r} ({split})"
    raise ConfigurationError(msg)


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
