"""Immutable messages: `Message` and its kinds `Command`, `Event` and `Query`.

A message is a frozen, keyword-only dataclass. Its envelope fields (``id``,
``source``, ``time``, ``subject``, ``correlation_id``, ``causation_id``) map to
CloudEvents context attributes; the fields a subclass declares are the data::

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Deposited(Event, type="bank.account.deposited", version=1):
        account_id: str
        amount: int

Declare message classes with ``slots=True`` as above: they take less memory,
and orchestrix gives them an ``__init__`` that sets the fields through their
slots, which makes creating a message about a quarter faster with the same
behaviour (ADR 0029).

Every message class has a stable, unique *type name*: the class keyword ``type=``
or, by default, the class's qualified name. Stored and wire forms carry the type
name, never the Python import path, so classes can move between modules freely.
"""

from __future__ import annotations

import itertools
import os
import time as _time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from orchestrix._fast_init import install_fast_init
from orchestrix.errors import ConfigurationError, DuplicateTypeNameError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "ENVELOPE_FIELDS",
    "MAX_SCHEMA_VERSION",
    "Command",
    "Event",
    "Message",
    "Query",
    "default_source",
    "message_class",
    "message_classes",
    "new_message_id",
    "set_default_source",
]

M = TypeVar("M", bound="Message")

#: Attribute names of the envelope every message carries.
ENVELOPE_FIELDS: Final = (
    "id",
    "source",
    "time",
    "subject",
    "correlation_id",
    "causation_id",
)

#: The largest schema version (of an event class or a snapshot) every backend
#: stores: a signed 32-bit int.
MAX_SCHEMA_VERSION: Final = 2**31 - 1

_DEFAULT_SOURCE_ENV: Final = "ORCHESTRIX_SOURCE"
_default_source: str | None = None


class _RandomPool:
    """Random hex digits from the OS, fetched in blocks: one syscall per 431 ids.

    ``block`` pairs a string of digits with a counter of the slots taken from
    it, and ``stamp`` pairs the current millisecond with its id prefix. Each
    pair is replaced as one object and ``next()`` on the counter is atomic,
    so threads never take the same slot; a race only ever refills twice. The
    pool is emptied in a forked child, so two processes never share digits.
    """

    __slots__ = ("block", "stamp")
    block: tuple[str, Iterator[int]]
    stamp: tuple[int, str]
    _BLOCK: Final = 4096
    SLOTS: Final = _BLOCK * 2 // 19

    def __init__(self) -> None:
        self.reset()

    def refill(self) -> tuple[str, Iterator[int]]:
        block = self.block = (os.urandom(self._BLOCK).hex(), itertools.count())
        return block

    def reset(self) -> None:
        self.block = ("", itertools.count(self.SLOTS))
        self.stamp = (-1, "")


_random = _RandomPool()
os.register_at_fork(after_in_child=_random.reset)
_time_ns = _time.time_ns
_SLOTS: Final = _RandomPool.SLOTS
# A random hex digit -> the RFC 9562 variant digit (10xx) keeping its low 2 bits.
_VARIANT: Final = {digit: "89ab"[i % 4] for i, digit in enumerate("0123456789abcdef")}


def new_message_id() -> str:
    """Return a new message id: a UUID version 7 string (time-ordered, random).

    Time ordering keeps database indexes on ids compact; 74 random bits from the
    operating system make ids unique across processes and machines.
    """
    pool = _random
    ms = _time_ns() // 1_000_000
    stamp = pool.stamp
    if stamp[0] != ms:
        hex_ms = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
        stamp = pool.stamp = (ms, f"{hex_ms[:8]}-{hex_ms[8:]}-7")
    digits, slots = pool.block
    slot = next(slots)
    while slot >= _SLOTS:
        digits, slots = pool.refill()
        slot = next(slots)
    # rand_a (3 digits), variant digit, rand_b (3 + 12 digits): 74 random bits.
    at = slot * 19
    return (
        f"{stamp[1]}{digits[at : at + 3]}-{_VARIANT[digits[at + 3]]}"
        f"{digits[at + 4 : at + 7]}-{digits[at + 7 : at + 19]}"
    )


def set_default_source(source: str) -> None:
    """Set the ``source`` (a URI-reference) given to messages created from now on.

    Without a call, the ``ORCHESTRIX_SOURCE`` environment variable is used, and
    without that, ``"/orchestrix"``.

    Raises:
        ConfigurationError: If *source* is empty.
    """
    global _default_source  # noqa: PLW0603 -- process-wide setting by design
    if not isinstance(source, str) or not source:
        msg = "the default message source must be a non-empty URI-reference string"
        raise ConfigurationError(msg)
    _default_source = source


def default_source() -> str:
    """Return the ``source`` new messages get when none is given."""
    if _default_source is None:
        set_default_source(os.environ.get(_DEFAULT_SOURCE_ENV) or "/orchestrix")
    return _default_source  # type: ignore[return-value]  # set just above


def _utcnow() -> datetime:
    return datetime.now(UTC)


_registry: dict[str, type[Message]] = {}


def message_class(type_name: str) -> type[Message] | None:
    """Return the message class registered for *type_name*, or None."""
    return _registry.get(type_name)


def message_classes() -> dict[str, type[Message]]:
    """Return a copy of the registry: type name -> message class."""
    return dict(_registry)


def _same_class(previous: type, cls: type, *, rebuild: bool) -> bool:
    # A class redefined in place (a module or notebook cell re-executed, a test
    # function run twice) replaces itself. ``@dataclass(slots=True)`` rebuilds
    # the class and sets the rebuilt one's ``__qualname__`` only after
    # ``__init_subclass__`` has run, so a rebuild is matched by plain name.
    if previous is cls:
        return True
    if rebuild:
        return (previous.__module__, previous.__name__) == (
            cls.__module__,
            cls.__name__,
        )
    return (previous.__module__, previous.__qualname__) == (
        cls.__module__,
        cls.__qualname__,
    )


def _register(cls: type[Message], name: str, *, rebuild: bool = False) -> None:
    if not isinstance(name, str) or not name.strip():
        msg = f"{cls.__qualname__}: the type name must be a non-empty string"
        raise ConfigurationError(msg)
    previous = _registry.get(name)
    if previous is not None and not _same_class(previous, cls, rebuild=rebuild):
        msg = (
            f"message type name {name!r} is claimed by both "
            f"{previous.__module__}.{previous.__qualname__} and "
            f"{cls.__module__}.{cls.__qualname__}: give one of them another name "
            f"with the class keyword type='...'"
        )
        raise DuplicateTypeNameError(msg)
    _registry[name] = cls


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """Base of every command, event and query: an immutable envelope plus data.

    Attributes:
        id: Unique id, generated (UUID v7) unless given. The idempotency key.
        source: URI-reference of the producer; see `set_default_source`.
        time: When the message was created, a timezone-aware datetime.
        subject: Optional subject within the source (CloudEvents ``subject``).
        correlation_id: Id of the conversation this message belongs to.
        causation_id: Id of the message that caused this one.
    """

    __message_type__: ClassVar[str] = "orchestrix.Message"
    __message_version__: ClassVar[int] = 1

    id: str = field(default_factory=new_message_id)
    source: str = field(default_factory=default_source)
    time: datetime = field(default_factory=_utcnow)
    subject: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None

    def __init_subclass__(
        cls,
        *,
        type: str | None = None,  # noqa: A002 -- the contract's class keyword
        version: int | None = None,
        **kwargs: Any,
    ) -> None:
        # Zero-argument super() breaks here: slots=True rebuilds Message, and the
        # compiler's __class__ cell still points at the class it replaced.
        super(Message, cls).__init_subclass__(**kwargs)
        own = cls.__dict__
        if type is None and "__message_type__" in own:
            # ``@dataclass(slots=True)`` re-creates the class without keywords;
            # the copied class dict still holds what the first pass decided.
            _register(cls, own["__message_type__"], rebuild=True)
            install_fast_init(cls)
            return
        if version is not None:
            if not issubclass(cls, Event):
                msg = (
                    f"{cls.__qualname__}: only Event classes take version=; "
                    f"commands and queries are not stored"
                )
                raise ConfigurationError(msg)
            if (
                isinstance(version, bool)
                or not isinstance(version, int)
                or not 1 <= version <= MAX_SCHEMA_VERSION
            ):
                msg = (
                    f"{cls.__qualname__}: version= must be an int from 1 to "
                    f"{MAX_SCHEMA_VERSION}, got {version!r}"
                )
                raise ConfigurationError(msg)
        name = cls.__qualname__ if type is None else type
        _register(cls, name)
        cls.__message_type__ = name
        cls.__message_version__ = 1 if version is None else version

    @classmethod
    def type_name(cls) -> str:
        """Return the stable type name of this message class."""
        return cls.__message_type__

    @classmethod
    def schema_version(cls) -> int:
        """Return the schema version of this message class (1 unless declared)."""
        return cls.__message_version__

    def caused(self, message: M) -> M:
        """Return *message* marked as caused by this one.

        Its ``causation_id`` becomes this message's id and its
        ``correlation_id`` this message's correlation id (or id).
        """
        from dataclasses import replace

        return replace(
            message,
            causation_id=self.id,
            correlation_id=self.correlation_id or self.id,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Command(Message, type="orchestrix.Command"):
    """A request to change state, handled by exactly one handler."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Event(Message, type="orchestrix.Event"):
    """A fact that happened; stored in streams and fanned out to subscribers.

    Declare a schema version with the class keyword ``version=`` (default 1) and
    register upcasters for older stored versions (see `orchestrix.codec`).
    """


@dataclass(frozen=True, kw_only=True, slots=True)
class Query(Message, type="orchestrix.Query"):
    """A request for information that changes nothing."""


_register(Message, "orchestrix.Message")
