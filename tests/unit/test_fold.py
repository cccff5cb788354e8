"""How `Repository.get` folds a stream: as `AggregateRoot.replay` would."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.backends.memory import InMemoryEventStore
from orchestrix.errors import ConfigurationError, InvalidArgumentError
from orchestrix.messages import Event
from orchestrix.repository import Repository

__all__: list[str] = []


@dataclass(frozen=True, kw_only=True, slots=True)
class Ticked(Event, type="test.fold.ticked"):
    n: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Tocked(Event, type="test.fold.tocked"):
    n: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Stray(Event, type="test.fold.stray"):
    n: int


class Clock(AggregateRoot, type="test.fold.clock"):
    """Keeps, per event, the version the aggregate had when applying it."""

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.seen: list[tuple[str, int, int]] = []

    @applies(Ticked)
    def _ticked(self, event: Ticked) -> None:
        self.seen.append(("tick", event.n, self.version))

    @applies(Tocked)
    def _tocked(self, event: Tocked) -> None:
        self.seen.append(("tock", event.n, self.version))


class Recorder(Clock, type="test.fold.recorder"):
    """Wrongly records an event while applying one."""

    @applies(Tocked)
    def _tocked(self, event: Tocked) -> None:
        self._record(Ticked(n=event.n))


async def test_get_applies_each_event_in_order_with_the_running_version() -> None:
    """Apply methods run in stream order and see the version before their event."""
    store = InMemoryEventStore()
    events = [Ticked(n=0), Tocked(n=1), Ticked(n=2), Ticked(n=3), Tocked(n=4)]
    await store.append("c-1", events)
    clock = await Repository(Clock, store).get("c-1")
    assert clock.version == 5
    assert clock.seen == [
        ("tick", 0, 0),
        ("tock", 1, 1),
        ("tick", 2, 2),
        ("tick", 3, 3),
        ("tock", 4, 4),
    ]
    assert clock.seen == Clock.from_events("c-1", events).seen


async def test_get_names_an_event_without_apply_method_after_others() -> None:
    """An unknown event type in the middle of a stream fails the load."""
    store = InMemoryEventStore()
    await store.append("c-2", [Ticked(n=0), Ticked(n=1), Stray(n=2)])
    with pytest.raises(ConfigurationError, match=r"test\.fold\.stray"):
        await Repository(Clock, store).get("c-2")


async def test_get_refuses_to_replay_after_an_apply_method_recorded() -> None:
    """Once an apply method leaves a pending event, the next event is refused."""
    store = InMemoryEventStore()
    await store.append("c-3", [Ticked(n=0), Ticked(n=1), Tocked(n=2), Ticked(n=3)])
    with pytest.raises(InvalidArgumentError, match="pending"):
        await Repository(Recorder, store).get("c-3")
