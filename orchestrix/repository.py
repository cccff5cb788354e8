"""Repositories load aggregates from an event store and save their new events.

::

    accounts = Repository(Account, store, snapshots=snapshots, snapshot_every=100,
                          bus=bus)
    account = await accounts.get("acc-1")
    account.withdraw(Decimal(5))
    await accounts.save(account)

`Repository.get` restores the latest usable snapshot and folds only the events
after it, once the stream shows it still holds the event the snapshot was
taken after (ADR 0030). `Repository.save` appends the pending events with the
aggregate's version as the expected version, marks them committed, publishes
exactly those events, and then, every `snapshot_every` events, stores a
snapshot. A failed snapshot is logged through
``logging.getLogger("orchestrix.repository")`` and never fails a save. ADR 0010
records why the steps run in this order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, Generic, TypeVar, final

from orchestrix._utils import check_stream_id
from orchestrix.aggregate import AggregateRoot, _fold, _fold_after_snapshot
from orchestrix.errors import (
    AggregateNotFound,
    BackendError,
    ConfigurationError,
    HandlerError,
    InvalidArgumentError,
    SerializationError,
)
from orchestrix.protocols import AppendResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrix.messages import Event
    from orchestrix.protocols import EventStore, MessageBus, Snapshot, SnapshotStore

__all__ = ["Repository"]

A = TypeVar("A", bound=AggregateRoot)

logger: Final = logging.getLogger("orchestrix.repository")


@final
class Repository(Generic[A]):
    """Loads and saves aggregates of one class through an `EventStore`.

    Args:
        aggregate_cls: The `AggregateRoot` subclass this repository handles.
        store: Where the aggregates' events are stored.
        snapshots: Where snapshots are loaded from and saved to, if anywhere.
            Without *snapshot_every* the repository only reads them (another
            process, or `save_snapshot`, writes them).
        snapshot_every: Save a snapshot whenever a save takes the aggregate's
            version across a multiple of this number. Needs *snapshots*.
        bus: Where saved events are published, if anywhere.

    Raises:
        ConfigurationError: *aggregate_cls* is not an `AggregateRoot`
            subclass, *snapshot_every* is not an int >= 1, or it is given
            without *snapshots*.
    """

    __slots__ = ("_aggregate_cls", "_bus", "_snapshot_every", "_snapshots", "_store")

    def __init__(
        self,
        aggregate_cls: type[A],
        store: EventStore,
        *,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int | None = None,
        bus: MessageBus | None = None,
    ) -> None:
        checked: object = aggregate_cls
        if not (isinstance(checked, type) and issubclass(checked, AggregateRoot)):
            msg = f"Repository() takes an AggregateRoot subclass, got {checked!r}"
            raise ConfigurationError(msg)
        every: object = snapshot_every
        if every is not None:
            if isinstance(every, bool) or not isinstance(every, int) or every < 1:
                msg = (
                    f"snapshot_every must be an int >= 1 (events between snapshots) "
                    f"or None, got {every!r}"
                )
                raise ConfigurationError(msg)
            if snapshots is None:
                msg = (
                    f"snapshot_every={every} needs a snapshot store: pass "
                    f"snapshots=<a SnapshotStore> as well"
                )
                raise ConfigurationError(msg)
        self._aggregate_cls = aggregate_cls
        self._store = store
        self._snapshots = snapshots
        self._snapshot_every = snapshot_every
        self._bus = bus

    @property
    def aggregate_cls(self) -> type[A]:
        """The aggregate class this repository loads and saves."""
        return self._aggregate_cls

    @property
    def store(self) -> EventStore:
        """The event store."""
        return self._store

    @property
    def snapshots(self) -> SnapshotStore | None:
        """The snapshot store, if any."""
        return self._snapshots

    @property
    def snapshot_every(self) -> int | None:
        """Events between automatic snapshots, or None."""
        return self._snapshot_every

    @property
    def bus(self) -> MessageBus | None:
        """The bus saved events are published on, if any."""
        return self._bus

    async def get(self, aggregate_id: str) -> A:
        """Load the aggregate: its latest usable snapshot plus the events after it.

        A snapshot is used only if it was taken by this aggregate type with its
        current `AggregateRoot.snapshot_version` and
        `AggregateRoot.state_fingerprint`, and only if the stream still holds
        the event the snapshot was taken after, at the snapshot's version.
        Otherwise, or if it cannot be loaded or restored, the whole stream is
        folded; a snapshot that does not fit its stream (ahead of it, or taken
        from another history, as after restoring the events from a backup) is
        logged as a warning naming the stream, the snapshot's version and the
        stream's.

        Args:
            aggregate_id: The aggregate's id, which is its stream id.

        Returns:
            The aggregate at the stream's current version, nothing pending.

        Raises:
            AggregateNotFound: The stream has no events (the error names the
                aggregate's `AggregateRoot.aggregate_type` and the id), whatever
                snapshot there is.
            InvalidArgumentError: *aggregate_id* is not a valid stream id.
            ConfigurationError: The stream holds an event type the aggregate
                has no apply method for (for instance, another aggregate's
                stream).
            UnknownMessageType: A stored event's class is not defined here.
        """
        aggregate_id = check_stream_id(aggregate_id)
        restored = await self._from_snapshot(aggregate_id)
        misfit = None if restored is None else await self._fold_tail(restored)
        if restored is not None and misfit is None:
            return restored
        aggregate = self._aggregate_cls(aggregate_id)
        await _fold(aggregate, self._store.read(aggregate_id))
        if restored is not None:
            logger.warning(
                "the snapshot of %s %r at version %d does not fit its stream, at "
                "version %d: %s; folded the whole stream instead (a snapshot store "
                "kept across a restore of the events keeps this snapshot until a "
                "newer one replaces it)",
                self._aggregate_cls.__qualname__,
                aggregate_id,
                restored.version,
                aggregate.version,
                misfit,
            )
        if aggregate.version == 0:
            raise AggregateNotFound(self._aggregate_cls.aggregate_type, aggregate_id)
        return aggregate

    async def _fold_tail(self, aggregate: A) -> str | None:
        """Fold the events after the snapshot *aggregate* was just restored from.

        Returns:
            None, or why the snapshot does not fit the stream; nothing is
            folded then.
        """
        # One read, starting one event early, settles whether the snapshot
        # fits the stream and yields the tail: its first event is the one the
        # snapshot was taken after, whose id the snapshot recorded. If the
        # stream ends before it, the stream is shorter than the snapshot (its
        # events restored from an older backup, or none at all); if it is
        # another event, the stream was restored and then grew again, which a
        # comparison of versions alone cannot see. So a load through a snapshot
        # costs the snapshot read and this one stream read, as a load without
        # the check did: never a call to `stream_version`, and a second read
        # only to fold the whole stream when the snapshot does not fit.
        records = self._store.read(aggregate.id, after_version=aggregate.version - 1)
        return await _fold_after_snapshot(aggregate, records)

    async def _from_snapshot(self, aggregate_id: str) -> A | None:
        snapshots = self._snapshots
        if snapshots is None:
            return None
        cls = self._aggregate_cls
        try:
            snapshot = await snapshots.load(aggregate_id)
        except BackendError:
            logger.warning(
                "could not load the snapshot of %s %r; folding its whole stream",
                cls.__qualname__,
                aggregate_id,
                exc_info=True,
            )
            return None
        if snapshot is None:
            return None
        try:
            parts = cls._open_snapshot(snapshot)
            if isinstance(parts, str):
                logger.debug(
                    "ignoring the snapshot of %s %r at version %d: %s",
                    cls.__qualname__,
                    aggregate_id,
                    snapshot.version,
                    parts,
                )
                return None
            return cls._restore_snapshot(snapshot, parts)
        except Exception:
            # Snapshots never change the result: whatever restoring one raises
            # (a state that does not fit, a custom restore_state that fails),
            # the whole stream is folded instead.
            logger.warning(
                "could not restore the snapshot of %s %r at version %d; folding "
                "its whole stream (bump %s.snapshot_version when the state changes)",
                cls.__qualname__,
                aggregate_id,
                snapshot.version,
                cls.__qualname__,
                exc_info=True,
            )
            return None

    async def save(self, aggregate: A) -> AppendResult:
        """Store the aggregate's pending events, then publish them.

        In order: append the pending events with ``expected_version`` set to
        the aggregate's version (so a concurrent change fails the save and
        nothing is written); mark them committed; publish exactly those events
        on the bus, if any; save a snapshot if the new version crossed a
        multiple of `snapshot_every`. An aggregate with nothing pending is
        left alone and nothing is called.

        Args:
            aggregate: An aggregate of this repository's class.

        Returns:
            What the append stored (the new version and the events' positions).

        Raises:
            ConcurrencyError: The stream changed since the aggregate was loaded;
                nothing was written and the events stay pending. Load it again
                and retry the command.
            HandlerError: Handlers failed while the events were published. The
                events are stored and the aggregate is committed.
            InvalidArgumentError: *aggregate* is not of this repository's class.
        """
        cls = self._aggregate_cls
        if not isinstance(aggregate, cls):
            msg = (
                f"Repository({cls.__qualname__}) cannot save a "
                f"{type(aggregate).__qualname__}"
            )
            raise InvalidArgumentError(msg)
        pending = aggregate.pending_events
        before = aggregate.version
        if not pending:
            return AppendResult(version=before, positions=())
        result = await self._store.append(
            aggregate.id, pending, expected_version=before
        )
        committed = aggregate.mark_committed(len(pending))
        try:
            await self._publish(aggregate, committed)
        finally:
            every = self._snapshot_every
            if every is not None and aggregate.version // every > before // every:
                await self._try_snapshot(aggregate)
        return result

    async def _publish(self, aggregate: A, events: Sequence[Event]) -> None:
        bus = self._bus
        if bus is None:
            return
        failures: list[HandlerError] = []
        for index, event in enumerate(events):
            try:
                await bus.publish(event)
            except HandlerError as exc:
                # Handlers of later events still deserve them: they are stored.
                failures.append(exc)
            except Exception as exc:
                exc.add_note(
                    f"{aggregate!r}: its {len(events)} new event(s) are stored and "
                    f"committed, but {len(events) - index} of them were not published"
                )
                raise
        if not failures:
            return
        note = (
            f"{aggregate!r}: its {len(events)} new event(s) are stored, committed "
            f"and published; handlers failed on {len(failures)} of them"
        )
        if len(failures) == 1:
            failures[0].add_note(note)
            raise failures[0]
        error = HandlerError(
            f"handlers failed on {len(failures)} of the {len(events)} events saved "
            f"to {aggregate.id!r}",
            failures,
        )
        error.add_note(note)
        raise error

    async def _try_snapshot(self, aggregate: A) -> None:
        # A snapshot only saves replay time: whatever goes wrong, the save stands.
        try:
            await self.save_snapshot(aggregate)
        except SerializationError as exc:
            # The state itself cannot be kept: every later snapshot fails too.
            logger.warning(
                "cannot snapshot %s %r at version %d, so every load folds its whole "
                "stream until the class is fixed: %s",
                type(aggregate).__qualname__,
                aggregate.id,
                aggregate.version,
                exc,
                exc_info=True,
            )
        except Exception:
            logger.warning(
                "could not save a snapshot of %s %r at version %d; loads fold more "
                "events until the next snapshot",
                type(aggregate).__qualname__,
                aggregate.id,
                aggregate.version,
                exc_info=True,
            )

    async def save_snapshot(self, aggregate: A) -> Snapshot:
        """Store a snapshot of *aggregate* at its current version now.

        `save` calls this every `snapshot_every` events and logs its failures;
        here they propagate.

        Returns:
            The snapshot stored.

        Raises:
            ConfigurationError: The repository has no snapshot store.
            InvalidArgumentError: The aggregate has pending events or none stored.
            SerializationError: Its state cannot be encoded.
        """
        snapshots = self._snapshots
        if snapshots is None:
            msg = (
                f"{self!r} has no snapshot store: pass snapshots=<a SnapshotStore> "
                f"to Repository()"
            )
            raise ConfigurationError(msg)
        snapshot = aggregate.to_snapshot()
        await snapshots.save(snapshot)
        return snapshot

    def __repr__(self) -> str:
        def name(component: object) -> str:
            return "None" if component is None else type(component).__qualname__

        return (
            f"Repository({self._aggregate_cls.__qualname__}, "
            f"store={name(self._store)}, snapshots={name(self._snapshots)}, "
            f"snapshot_every={self._snapshot_every}, bus={name(self._bus)})"
        )
