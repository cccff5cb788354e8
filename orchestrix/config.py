"""Open stores and buses by URL: ``await open_store("sqlite:///app.db")``.

The URL's scheme picks the backend. orchestrix ships ``memory``, ``sqlite``,
``postgresql`` (alias ``postgres``), ``redis`` and ``rediss``; other packages add
schemes through the entry-point group ``orchestrix.backends``, whose entries
name an object satisfying `Backend`::

    [project.entry-points."orchestrix.backends"]
    mydb = "mypackage.orchestrix_backend:backend"

Without a URL, `open_store` reads ``ORCHESTRIX_STORE_URL``, `open_bus` reads
``ORCHESTRIX_BUS_URL`` and `open_snapshot_store` reads
``ORCHESTRIX_SNAPSHOT_URL`` (falling back to the store URL).
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Protocol,
    TypeVar,
    runtime_checkable,
)

from orchestrix._utils import redact_url
from orchestrix.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator
    from types import TracebackType

    from orchestrix.protocols import (
        CheckpointStore,
        EventStore,
        MessageBus,
        SnapshotStore,
    )

__all__ = [
    "BUS_URL_ENV",
    "CHECKPOINT_URL_ENV",
    "DEFAULT_BUS_URL",
    "DEFAULT_STORE_URL",
    "SNAPSHOT_URL_ENV",
    "STORE_URL_ENV",
    "Backend",
    "CheckpointBackend",
    "Opening",
    "known_schemes",
    "open_bus",
    "open_checkpoint_store",
    "open_snapshot_store",
    "open_store",
]

STORE_URL_ENV: Final = "ORCHESTRIX_STORE_URL"
BUS_URL_ENV: Final = "ORCHESTRIX_BUS_URL"
SNAPSHOT_URL_ENV: Final = "ORCHESTRIX_SNAPSHOT_URL"
CHECKPOINT_URL_ENV: Final = "ORCHESTRIX_CHECKPOINT_URL"
#: The store used when neither an argument nor the environment names one: a
#: SQLite file in the working directory (needs ``orchestrix[sqlite]``).
DEFAULT_STORE_URL: Final = "sqlite:///orchestrix.db"
#: The bus used when neither an argument nor the environment names one.
DEFAULT_BUS_URL: Final = "memory://"
ENTRY_POINT_GROUP: Final = "orchestrix.backends"

# scheme -> ("module:attribute", extra that installs its driver or None)
_BUILTIN: Final[dict[str, tuple[str, str | None]]] = {
    "memory": ("orchestrix.backends.memory:backend", None),
    "sqlite": ("orchestrix.backends.sqlite:backend", "sqlite"),
    "postgresql": ("orchestrix.backends.postgres:backend", "postgres"),
    "postgres": ("orchestrix.backends.postgres:backend", "postgres"),
    "redis": ("orchestrix.backends.redis:backend", "redis"),
    "rediss": ("orchestrix.backends.redis:backend", "redis"),
}

T = TypeVar("T")


def builtin_schemes(module: str) -> tuple[str, ...]:
    """Return the URL schemes the built-in backend *module* is registered for.

    The one list of built-in schemes is `_BUILTIN`; the backends' URL parsers
    ask it, and a test keeps the package's entry points equal to it.
    """
    return tuple(
        scheme
        for scheme, (target, _) in _BUILTIN.items()
        if target.partition(":")[0] == module
    )


@runtime_checkable
class Backend(Protocol):
    """What a backend registers under its URL scheme(s)."""

    async def open_store(self, url: str) -> EventStore:
        """Return a ready event store for *url*."""
        ...

    async def open_snapshot_store(self, url: str) -> SnapshotStore:
        """Return a ready snapshot store for *url*."""
        ...

    async def open_bus(self, url: str) -> MessageBus:
        """Return a message bus for *url* (not yet started)."""
        ...


@runtime_checkable
class CheckpointBackend(Protocol):
    """A backend that also keeps checkpoints (every built-in one does)."""

    async def open_checkpoint_store(self, url: str) -> CheckpointStore:
        """Return a ready checkpoint store for *url*."""
        ...


class Opening(Generic[T]):
    """An opening resource: ``await`` it, or use it with ``async with``.

    ``async with open_store(url) as store:`` closes the store on exit;
    ``store = await open_store(url)`` leaves closing to the caller.
    """

    __slots__ = ("_factory", "_resource")

    def __init__(self, factory: Callable[[], Awaitable[T]]) -> None:
        self._factory = factory
        self._resource: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._factory().__await__()

    async def __aenter__(self) -> T:
        self._resource = await self._factory()
        return self._resource

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        resource, self._resource = self._resource, None
        if resource is not None:
            await resource.close()  # type: ignore[attr-defined]  # every opened resource has close()


def _scheme(url: object) -> str:
    if not isinstance(url, str):
        # Not shown: the text of a bytes or other object may hold a password.
        msg = (
            f"a backend URL must be a str, got {type(url).__name__}; expected "
            f"scheme://..., one of: {', '.join(known_schemes())}"
        )
        raise ConfigurationError(msg)
    if "://" not in url:
        msg = (
            f"not a backend URL: {redact_url(url)!r}; expected scheme://..., "
            f"one of: {', '.join(known_schemes())}"
        )
        raise ConfigurationError(msg)
    return url.split("://", 1)[0].lower()


def _third_party() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_schemes() -> list[str]:
    """Return every URL scheme a backend is known for, sorted."""
    return sorted(set(_BUILTIN) | set(_third_party()))


def _backend(url: str) -> Backend:
    scheme = _scheme(url)
    target = _BUILTIN.get(scheme)
    if target is not None:
        module_name, _, attribute = target[0].partition(":")
        backend: object = getattr(importlib.import_module(module_name), attribute)
    else:
        entry = _third_party().get(scheme)
        if entry is None:
            msg = (
                f"no backend for URL scheme {scheme!r} in {redact_url(url)!r}; known "
                f"schemes: {', '.join(known_schemes())}. Backends of other packages "
                f"register through the entry-point group {ENTRY_POINT_GROUP!r}"
            )
            raise ConfigurationError(msg)
        backend = entry.load()
    if not isinstance(backend, Backend):
        msg = (
            f"the backend registered for scheme {scheme!r} ({type(backend).__name__}) "
            f"lacks open_store/open_snapshot_store/open_bus"
        )
        raise ConfigurationError(msg)
    return backend


def _store_url(url: str | None) -> str:
    return (
        url if url is not None else os.environ.get(STORE_URL_ENV) or DEFAULT_STORE_URL
    )


def open_store(url: str | None = None) -> Opening[EventStore]:
    """Open the event store named by *url* (default: ``$ORCHESTRIX_STORE_URL``).

    Raises:
        ConfigurationError: Unknown scheme or bad URL (the message lists the
            known schemes).
        MissingDependencyError: The backend's driver is not installed.
        BackendUnavailable: The server cannot be reached.
    """
    target = _store_url(url)
    return Opening(lambda: _backend(target).open_store(target))


def open_snapshot_store(url: str | None = None) -> Opening[SnapshotStore]:
    """Open the snapshot store named by *url*.

    The default is ``$ORCHESTRIX_SNAPSHOT_URL``, then the store URL.

    Raises:
        ConfigurationError: Unknown scheme or bad URL.
        MissingDependencyError: The backend's driver is not installed.
        BackendUnavailable: The server cannot be reached.
    """
    target = (
        url if url is not None else os.environ.get(SNAPSHOT_URL_ENV) or _store_url(None)
    )
    return Opening(lambda: _backend(target).open_snapshot_store(target))


def open_checkpoint_store(url: str | None = None) -> Opening[CheckpointStore]:
    """Open the checkpoint store named by *url*.

    The default is ``$ORCHESTRIX_CHECKPOINT_URL``, then the store URL, so
    checkpoints live beside the events they point into.

    Raises:
        ConfigurationError: Unknown scheme, bad URL, or a backend that keeps
            no checkpoints.
        MissingDependencyError: The backend's driver is not installed.
        BackendUnavailable: The server cannot be reached.
    """
    target = (
        url
        if url is not None
        else os.environ.get(CHECKPOINT_URL_ENV) or _store_url(None)
    )

    async def opening() -> CheckpointStore:
        backend = _backend(target)
        if not isinstance(backend, CheckpointBackend):
            msg = (
                f"the backend of {redact_url(target)!r} keeps no checkpoints (it "
                f"has no open_checkpoint_store); use a backend that does"
            )
            raise ConfigurationError(msg)
        return await backend.open_checkpoint_store(target)

    return Opening(opening)


def open_bus(url: str | None = None) -> Opening[MessageBus]:
    """Open the message bus named by *url* (default: ``$ORCHESTRIX_BUS_URL``).

    The bus is not started: subscribe handlers, then ``await bus.start()``.

    Raises:
        ConfigurationError: Unknown scheme or bad URL.
        MissingDependencyError: The backend's driver is not installed.
        BackendUnavailable: The server cannot be reached.
    """
    target = url if url is not None else os.environ.get(BUS_URL_ENV) or DEFAULT_BUS_URL
    return Opening(lambda: _backend(target).open_bus(target))
