"""`ProjectionContract`: projection runners on any event and checkpoint store."""

# Contract suites are tests shipped in the package: they assert, and compare
# with literal counts.
# ruff: noqa: S101, PLR2004

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from orchestrix.errors import ConfigurationError, ProjectionError
from orchestrix.messages import Event
from orchestrix.projections import Projection, ProjectionRunner, handles
from orchestrix.testing._support import (
    WAIT_TIMEOUT,
    ContractEvent,
    OtherContractEvent,
    wait_until,
)

if TYPE_CHECKING:
    from orchestrix.protocols import CheckpointStore, EventStore
    from orchestrix.records import Recorded

__all__ = ["ProjectionContract"]

#: How often the suite's runners look for new events without a wake-up.
POLL: float = 0.02


@dataclass(frozen=True, kw_only=True, slots=True)
class BaseProjected(Event, type="orchestrix.testing.BaseProjected"):
    """A base event class, handled by a base-class handler."""

    number: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ChildProjected(BaseProjected, type="orchestrix.testing.ChildProjected"):
    """A subclass without a handler of its own."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SpecialProjected(BaseProjected, type="orchestrix.testing.SpecialProjected"):
    """A subclass with a handler of its own, which wins over the base's."""


class Numbers(Projection):
    """Keeps the numbers of `ContractEvent` events, with the positions seen."""

    name = "contract-numbers"

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self.positions: list[int] = []
        self.calls = 0
        self.failures: dict[int, int] = {}  # number -> how many more calls fail
        self.resets = 0
        # With a gate, the handler of number gate_at waits until it is set.
        self.gate_at: int | None = None
        self.gate: asyncio.Event | None = None
        self.waiting = False

    @handles(ContractEvent)
    async def _number(self, event: ContractEvent, recorded: Recorded) -> None:
        self.calls += 1
        if self.gate is not None and event.number == self.gate_at:
            self.waiting = True
            await self.gate.wait()
        left = self.failures.get(event.number, 0)
        if left:
            self.failures[event.number] = left - 1
            msg = f"boom on {event.number}"
            raise RuntimeError(msg)
        self.numbers.append(event.number)
        self.positions.append(recorded.position)

    async def reset(self) -> None:
        """Empty the read model."""
        self.numbers.clear()
        self.positions.clear()
        self.resets += 1


class Kinds(Projection):
    """Labels base-class events by the handler that received them."""

    name = "contract-kinds"

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int]] = []

    @handles(BaseProjected)
    async def _base(self, event: BaseProjected, recorded: Recorded) -> None:
        self.seen.append(("base", event.number, recorded.version))

    @handles(SpecialProjected)
    async def _special(self, event: SpecialProjected, recorded: Recorded) -> None:
        self.seen.append(("special", event.number, recorded.version))


def _events(*numbers: int) -> list[ContractEvent]:
    return [ContractEvent(number=n) for n in numbers]


@pytest.mark.asyncio
class ProjectionContract:
    """Projection runners; override the `store` and `checkpoint_store` fixtures.

    Each fixture must yield an open, empty store isolated from every other test
    (a runner reads the whole log), and close it afterwards.
    """

    @pytest.fixture
    async def store(self) -> EventStore:
        """Yield an open, empty, isolated `EventStore` (override in a subclass)."""
        msg = (
            f"{type(self).__name__} must override the 'store' fixture to yield an "
            f"open, empty EventStore of the backend under test"
        )
        raise NotImplementedError(msg)

    @pytest.fixture
    async def checkpoint_store(self) -> CheckpointStore:
        """Yield an open, empty, isolated `CheckpointStore` (override it)."""
        msg = (
            f"{type(self).__name__} must override the 'checkpoint_store' fixture "
            f"to yield an open, empty CheckpointStore of the backend under test"
        )
        raise NotImplementedError(msg)

    def runner(
        self,
        projection: Projection,
        store: EventStore,
        checkpoint_store: CheckpointStore,
        **options: float,
    ) -> ProjectionRunner:
        """Return a runner with short waits, so the suite stays quick."""
        return ProjectionRunner(
            projection,
            store,
            checkpoint_store,
            poll_interval=POLL,
            backoff=0.001,
            **options,  # type: ignore[arg-type]  # the tests pass valid knobs
        )

    async def test_catch_up_builds_the_read_model(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """Catch-up handles every stored event in order and saves the checkpoint."""
        await store.append("a", _events(1, 2))
        await store.append("b", _events(3))
        projection = Numbers()
        async with self.runner(projection, store, checkpoint_store) as runner:
            async with asyncio.timeout(WAIT_TIMEOUT):
                await runner.catch_up()
            assert projection.numbers == [1, 2, 3]
            assert projection.positions == [1, 2, 3]
            assert await checkpoint_store.load(Numbers.name) == 3

    async def test_second_runner_resumes_after_the_checkpoint(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """A new runner starts after the saved checkpoint: nothing handled twice."""
        await store.append("a", _events(1, 2))
        first = Numbers()
        async with self.runner(first, store, checkpoint_store) as runner:
            await runner.catch_up()
        await store.append("a", _events(3, 4))
        second = Numbers()
        async with self.runner(second, store, checkpoint_store) as runner:
            await runner.catch_up()
        assert first.numbers == [1, 2]
        assert second.numbers == [3, 4]
        assert await checkpoint_store.load(Numbers.name) == 4

    async def test_base_class_handlers(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """A subclass goes to its base's handler unless it has one of its own."""
        await store.append(
            "k",
            [
                BaseProjected(number=1),
                ChildProjected(number=2),
                SpecialProjected(number=3),
            ],
        )
        projection = Kinds()
        async with self.runner(projection, store, checkpoint_store) as runner:
            await runner.catch_up()
        assert projection.seen == [("base", 1, 1), ("base", 2, 2), ("special", 3, 3)]

    async def test_unhandled_types_are_skipped(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """Events without a handler are skipped, and the checkpoint moves past them."""
        await store.append(
            "s",
            [ContractEvent(number=1), OtherContractEvent(number=2)],
        )
        await store.append("s", [OtherContractEvent(number=3)])
        projection = Numbers()
        async with self.runner(projection, store, checkpoint_store) as runner:
            await runner.catch_up()
            assert runner.status().checkpoint == 3
        assert projection.numbers == [1]
        assert projection.calls == 1
        assert await checkpoint_store.load(Numbers.name) == 3

    async def test_live_run_picks_up_new_events(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """`run` catches up, then handles events appended while it follows."""
        await store.append("a", _events(1))
        projection = Numbers()
        runner = self.runner(projection, store, checkpoint_store)
        task = asyncio.create_task(runner.run())
        await wait_until(lambda: projection.numbers == [1], "the stored event")
        await wait_until(lambda: runner.status().state == "live", "the runner is live")
        await store.append("b", _events(2, 3))
        await wait_until(lambda: projection.numbers == [1, 2, 3], "the new events")
        await runner.close()
        async with asyncio.timeout(WAIT_TIMEOUT):
            await task
        assert runner.status().state == "stopped"
        assert await checkpoint_store.load(Numbers.name) == 3

    async def test_failing_handler_is_retried(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """A handler failing twice then succeeding handles the event once."""
        await store.append("a", _events(1, 2, 3))
        projection = Numbers()
        projection.failures[2] = 2
        async with self.runner(projection, store, checkpoint_store) as runner:
            await runner.catch_up()
            status = runner.status()
        assert projection.numbers == [1, 2, 3]
        assert projection.calls == 5
        assert status.events_handled == 3
        assert status.state == "idle"
        assert status.last_error is None
        assert await checkpoint_store.load(Numbers.name) == 3

    async def test_handler_that_keeps_failing_stops_the_runner(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """Retries run out: `ProjectionError`, state failed, checkpoint before it."""
        await store.append("a", _events(1, 2, 3))
        projection = Numbers()
        projection.failures[2] = 1_000
        runner = self.runner(projection, store, checkpoint_store, retries=2)
        with pytest.raises(ProjectionError) as caught:
            await runner.catch_up()
        error = caught.value
        assert (error.projection, error.position) == (Numbers.name, 2)
        assert error.event_type == ContractEvent.type_name()
        assert isinstance(error.__cause__, RuntimeError)
        assert projection.calls == 1 + 3  # event 1, then event 2 three times
        status = runner.status()
        assert status.state == "failed"
        assert status.last_error is not None
        assert "boom on 2" in status.last_error
        assert await checkpoint_store.load(Numbers.name) == 1
        await runner.close()
        assert runner.status().state == "failed"

        fixed = Numbers()
        async with self.runner(fixed, store, checkpoint_store) as restarted:
            await restarted.catch_up()
        assert fixed.numbers == [2, 3]
        assert await checkpoint_store.load(Numbers.name) == 3

    async def test_close_during_run_saves_the_checkpoint(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """Closing a running runner saves the checkpoint of every handled event.

        The handler waits at the fourth event, so the close comes with events
        handled but not yet checkpointed, and others not handled at all.
        """
        await store.append("a", _events(*range(1, 11)))
        gate = asyncio.Event()
        projection = Numbers()
        projection.gate_at, projection.gate = 4, gate
        runner = self.runner(projection, store, checkpoint_store, checkpoint_every=100)
        task = asyncio.create_task(runner.run())
        await wait_until(lambda: projection.waiting, "the handler waits at 4")
        closing = asyncio.create_task(runner.close())
        await asyncio.sleep(0)
        gate.set()
        async with asyncio.timeout(WAIT_TIMEOUT):
            await closing
            await task
        assert projection.numbers == [1, 2, 3, 4]
        assert await checkpoint_store.load(Numbers.name) == 4
        assert runner.status().state == "stopped"

    async def test_a_checkpoint_ahead_of_the_store_is_refused(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """A checkpoint past the store's last event is an error, never a silent skip."""
        await store.append("a", _events(1, 2))
        await checkpoint_store.save(Numbers.name, 1_000)
        projection = Numbers()
        runner = self.runner(projection, store, checkpoint_store)
        with pytest.raises(ConfigurationError, match="1000"):
            await runner.catch_up()
        assert projection.numbers == []
        assert runner.status().state == "failed"
        assert await checkpoint_store.load(Numbers.name) == 1_000
        await runner.close()

    async def test_rebuild_replays_from_zero_after_reset(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """`rebuild` resets the projection and handles every event again."""
        await store.append("a", _events(1, 2))
        projection = Numbers()
        async with self.runner(projection, store, checkpoint_store) as runner:
            await runner.catch_up()
            projection.numbers.append(99)  # state the reset must drop
            await runner.rebuild()
        assert projection.resets == 1
        assert projection.numbers == [1, 2]
        assert await checkpoint_store.load(Numbers.name) == 2

    async def test_status_fields(
        self, store: EventStore, checkpoint_store: CheckpointStore
    ) -> None:
        """Status names the projection and reports checkpoint, head and lag."""
        await store.append("a", _events(1, 2))
        await checkpoint_store.save(Numbers.name, 1)
        runner = self.runner(Numbers(), store, checkpoint_store)
        before = runner.status()
        assert (before.name, before.state, before.events_handled) == (
            Numbers.name,
            "idle",
            0,
        )
        assert before.last_error is None
        await store.append("b", _events(3))
        await runner.catch_up()
        status = runner.status()
        assert (status.checkpoint, status.head, status.lag) == (3, 3, 0)
        assert (status.state, status.events_handled) == ("idle", 2)
        assert status.events_per_second > 0
        await runner.close()
        assert runner.status().state == "stopped"
