"""Messages and helpers shared by the contract suites; no compatibility promise."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrix.messages import Command, Event

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "WAIT_TIMEOUT",
    "ContractCommand",
    "ContractEvent",
    "OpaqueEvent",
    "OtherContractEvent",
    "poll_until",
    "wait_until",
]

T = TypeVar("T")

#: Upper bound of every wait in the suites, in seconds. Generous on purpose: a
#: correct backend finishes far sooner, and a broken one must not hang the run.
WAIT_TIMEOUT = 15.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ContractEvent(Event, type="orchestrix.testing.ContractEvent"):
    """An event with a few field kinds the suites round-trip."""

    number: int
    text: str = ""
    tags: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class OtherContractEvent(Event, type="orchestrix.testing.OtherContractEvent"):
    """A second event type, to check that subscriptions filter by type."""

    number: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OpaqueEvent(Event, type="orchestrix.testing.OpaqueEvent"):
    """An event whose field may hold anything, including what JSON cannot encode."""

    value: Any


@dataclass(frozen=True, kw_only=True, slots=True)
class ContractCommand(Command, type="orchestrix.testing.ContractCommand"):
    """A command for the one-handler-per-command rules."""

    number: int


async def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    within: float = WAIT_TIMEOUT,
    interval: float = 0.01,
) -> None:
    """Poll *condition* until it holds; fail the test naming *what* if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            msg = f"timed out after {within} s waiting until {what}"
            raise AssertionError(msg)
        await asyncio.sleep(interval)


async def poll_until(
    fetch: Callable[[], Awaitable[T]],
    condition: Callable[[T], bool],
    what: str,
    *,
    within: float = WAIT_TIMEOUT,
    interval: float = 0.05,
) -> T:
    """Await *fetch* until its result meets *condition*; return that result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await fetch()
        if condition(value):
            return value
        if loop.time() > deadline:
            msg = f"timed out after {within} s waiting until {what}; last: {value!r}"
            raise AssertionError(msg)
        await asyncio.sleep(interval)
