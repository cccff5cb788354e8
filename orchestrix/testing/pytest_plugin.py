"""pytest fixtures for application tests: a store, a snapshot store and a bus.

Each fixture opens a fresh resource for one test and closes it afterwards. By
default they are in-memory; a URL switches them to a real backend, so the same
tests can run against PostgreSQL or Redis in CI::

    pytest --orchestrix-store-url=postgresql://localhost/test
    ORCHESTRIX_TEST_BUS_URL=redis://localhost:6379/0 pytest

The command-line option wins over the environment variable. The snapshot
store follows the store URL. The fixtures need pytest-asyncio; the bus is
yielded unstarted (subscribe, then ``await message_bus.start()``).
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, TypeVar

import pytest

from orchestrix._utils import redact_url
from orchestrix.config import open_bus, open_snapshot_store, open_store
from orchestrix.errors import OrchestrixError

try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover -- pytest-asyncio is a test dependency
    # Without pytest-asyncio, pytest itself reports the async fixtures it cannot run.
    _async_fixture = pytest.fixture  # type: ignore[assignment]  # same call shape

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from orchestrix.config import Opening
    from orchestrix.protocols import EventStore, MessageBus, SnapshotStore

__all__ = [
    "BUS_OPTION",
    "BUS_URL_ENV",
    "MEMORY_URL",
    "STORE_OPTION",
    "STORE_URL_ENV",
    "bus_url",
    "event_store",
    "message_bus",
    "pytest_addoption",
    "pytest_report_header",
    "snapshot_store",
    "store_url",
]

STORE_OPTION: Final = "--orchestrix-store-url"
BUS_OPTION: Final = "--orchestrix-bus-url"
STORE_URL_ENV: Final = "ORCHESTRIX_TEST_STORE_URL"
BUS_URL_ENV: Final = "ORCHESTRIX_TEST_BUS_URL"
MEMORY_URL: Final = "memory://"
R = TypeVar("R")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the URL options of the orchestrix fixtures."""
    group = parser.getgroup("orchestrix", "orchestrix test backends")
    group.addoption(
        STORE_OPTION,
        metavar="URL",
        default=None,
        help=(
            f"backend URL for the event_store and snapshot_store fixtures "
            f"(default: ${STORE_URL_ENV}, else {MEMORY_URL})"
        ),
    )
    group.addoption(
        BUS_OPTION,
        metavar="URL",
        default=None,
        help=(
            f"backend URL for the message_bus fixture "
            f"(default: ${BUS_URL_ENV}, else {MEMORY_URL})"
        ),
    )


def _url(config: pytest.Config, option: str, variable: str) -> str:
    value = config.getoption(option)
    if isinstance(value, str) and value:
        return value
    return os.environ.get(variable) or MEMORY_URL


def store_url(config: pytest.Config) -> str:
    """Return the URL the ``event_store`` and ``snapshot_store`` fixtures open."""
    return _url(config, STORE_OPTION, STORE_URL_ENV)


def bus_url(config: pytest.Config) -> str:
    """Return the URL the ``message_bus`` fixture opens."""
    return _url(config, BUS_OPTION, BUS_URL_ENV)


def pytest_report_header(config: pytest.Config) -> str:
    """Say which backends the fixtures use (passwords masked)."""
    return (
        f"orchestrix: store {redact_url(store_url(config))}, "
        f"bus {redact_url(bus_url(config))}"
    )


@asynccontextmanager
async def _opened(fixture: str, url: str, opening: Opening[R]) -> AsyncIterator[R]:
    """Open a resource for a fixture; report a failure to open it in one line.

    pytest's tracebacks print the arguments of each frame, URLs included, so an
    `OrchestrixError` while opening fails the test with its (password-free)
    message only.
    """
    try:
        resource = await opening
    except OrchestrixError as exc:
        pytest.fail(
            f"orchestrix fixture {fixture!r} cannot open {redact_url(url)}: "
            f"{type(exc).__name__}: {exc}",
            pytrace=False,
        )
    try:
        yield resource
    finally:
        await resource.close()  # type: ignore[attr-defined]  # every opened resource has close()


@_async_fixture
async def event_store(request: pytest.FixtureRequest) -> AsyncIterator[EventStore]:
    """An open `EventStore`, in memory unless a store URL is configured."""
    url = store_url(request.config)
    async with _opened("event_store", url, open_store(url)) as store:
        yield store


@_async_fixture
async def snapshot_store(
    request: pytest.FixtureRequest,
) -> AsyncIterator[SnapshotStore]:
    """An open `SnapshotStore` at the store URL (in memory by default)."""
    url = store_url(request.config)
    async with _opened("snapshot_store", url, open_snapshot_store(url)) as store:
        yield store


@_async_fixture
async def message_bus(request: pytest.FixtureRequest) -> AsyncIterator[MessageBus]:
    """An open, unstarted `MessageBus`, in memory unless a bus URL is configured."""
    url = bus_url(request.config)
    async with _opened("message_bus", url, open_bus(url)) as bus:
        yield bus
