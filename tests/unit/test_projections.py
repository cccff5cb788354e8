"""Declaring projections and runners: the checks made before anything runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from orchestrix import (
    ConfigurationError,
    Event,
    InvalidArgumentError,
    Projection,
    ProjectionError,
    ProjectionRunner,
    ResourceClosedError,
    handles,
)
from orchestrix.backends.memory import InMemoryCheckpointStore, InMemoryEventStore

if TYPE_CHECKING:
    from orchestrix import Recorded


@dataclass(frozen=True, kw_only=True, slots=True)
class Noted(Event, type="tests.projections.noted"):
    text: str


class Notes(Projection):
    name = "notes"

    def __init__(self) -> None:
        self.texts: list[str] = []

    @handles(Noted)
    async def _noted(self, event: Noted, recorded: Recorded) -> None:
        self.texts.append(event.text)


@pytest.mark.parametrize("name", [None, "", "x" * 256, "a\x00b", 42])
def test_name_is_checked_at_class_definition(name: Any) -> None:
    """A projection without a storable checkpoint name cannot be defined."""
    with pytest.raises(ConfigurationError, match="name"):
        type("Bad", (Projection,), {"name": name} if name is not None else {})


def test_abstract_projection_needs_no_name() -> None:
    """``abstract=True`` declares a base whose subclasses inherit its handlers."""

    class Base(Projection, abstract=True):
        @handles(Noted)
        async def _noted(self, event: Noted, recorded: Recorded) -> None:
            raise NotImplementedError

    class Concrete(Base):
        name = "concrete"

    assert Concrete.handled_types() == (Noted,)
    assert Concrete.handler_for(Noted) == "_noted"


def test_handles_refuses_bad_declarations() -> None:
    """`handles` needs Event classes and an ``async def`` method."""
    with pytest.raises(ConfigurationError, match="at least one"):
        handles()
    with pytest.raises(ConfigurationError, match="Event subclasses"):
        handles(int)  # type: ignore[type-var]  # the mistake under test
    with pytest.raises(ConfigurationError, match="async def"):
        handles(Noted)(lambda self, event, recorded: None)  # type: ignore[arg-type,return-value]  # the mistake under test


def test_two_handlers_for_one_class_are_refused() -> None:
    """A class cannot declare two handlers for the same event class."""
    with pytest.raises(ConfigurationError, match="two handlers"):

        class Twice(Projection):
            name = "twice"

            @handles(Noted)
            async def _a(self, event: Noted, recorded: Recorded) -> None:
                raise NotImplementedError

            @handles(Noted)
            async def _b(self, event: Noted, recorded: Recorded) -> None:
                raise NotImplementedError


@pytest.mark.parametrize(
    "options",
    [
        {"retries": -1},
        {"retries": 1.5},
        {"checkpoint_every": 0},
        {"backoff": -0.1},
        {"batch_size": 0},
        {"poll_interval": 0},
    ],
)
async def test_runner_checks_its_arguments(options: dict[str, Any]) -> None:
    """A bad knob raises `InvalidArgumentError` when the runner is created."""
    async with InMemoryEventStore() as store, InMemoryCheckpointStore() as cps:
        with pytest.raises(InvalidArgumentError):
            ProjectionRunner(Notes(), store, cps, **options)


async def test_rebuild_needs_a_reset() -> None:
    """The default `reset` refuses, so a rebuild never replays onto old state."""
    async with InMemoryEventStore() as store, InMemoryCheckpointStore() as cps:
        await store.append("n", [Noted(text="a")])
        runner = ProjectionRunner(Notes(), store, cps)
        await runner.catch_up()
        with pytest.raises(ConfigurationError, match="reset"):
            await runner.rebuild()
        assert await cps.load(Notes.name) == 1  # the checkpoint survives
        await runner.close()
        assert await cps.load(Notes.name) == 1


async def test_closed_runner_refuses_to_run() -> None:
    """After `close`, `catch_up` raises instead of running again."""
    async with InMemoryEventStore() as store, InMemoryCheckpointStore() as cps:
        runner = ProjectionRunner(Notes(), store, cps)
        await runner.close()
        await runner.close()
        with pytest.raises(ResourceClosedError, match="closed"):
            await runner.catch_up()


def test_projection_error_names_the_event() -> None:
    """The error message names the projection, event, type and position."""
    error = ProjectionError("notes", "ev-1", "tests.noted", 7, ValueError("bad"))
    text = str(error)
    for part in ("'notes'", "'ev-1'", "'tests.noted'", "position 7", "bad"):
        assert part in text
    assert isinstance(error.cause, ValueError)


async def test_close_during_a_retry_wait_calls_the_handler_no_more() -> None:
    """A runner closed while waiting to retry does not call the handler again."""
    calls: list[str] = []

    class Failing(Projection):
        name = "failing-on-close"

        @handles(Noted)
        async def _noted(self, event: Noted, recorded: Recorded) -> None:
            calls.append(event.text)
            msg = "always"
            raise RuntimeError(msg)

    async with InMemoryEventStore() as store, InMemoryCheckpointStore() as cps:
        await store.append("n", [Noted(text="a")])
        runner = ProjectionRunner(Failing(), store, cps, retries=5, backoff=5.0)
        task = asyncio.create_task(runner.catch_up())
        while not calls:
            await asyncio.sleep(0.001)
        await runner.close()
        await asyncio.wait_for(task, 10)
        assert calls == ["a"]
        assert (await cps.load(Failing.name) or 0) == 0  # still before the event


async def test_a_cancelled_run_keeps_its_checkpoint_and_stops() -> None:
    """Cancelling the task of `run` saves what was handled and leaves no live state."""
    async with InMemoryEventStore() as store, InMemoryCheckpointStore() as cps:
        await store.append("n", [Noted(text="a"), Noted(text="b")])
        notes = Notes()
        runner = ProjectionRunner(notes, store, cps, checkpoint_every=100)
        task = asyncio.create_task(runner.run())
        while runner.status().state != "live":
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert runner.status().state == "idle"
        assert await cps.load(Notes.name) == 2
