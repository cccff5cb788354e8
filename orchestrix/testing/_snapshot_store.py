"""`SnapshotStoreContract`: the executable copy of the `SnapshotStore` contract."""

# Contract suites are tests shipped in the package: they assert, and compare
# with literal counts.
# ruff: noqa: S101, PLR2004

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from orchestrix.codec import encode_state
from orchestrix.errors import InvalidArgumentError, ResourceClosedError
from orchestrix.records import Snapshot
from orchestrix.testing._event_store import INVALID_STREAM_IDS, UNUSUAL_STREAM_IDS

if TYPE_CHECKING:
    from orchestrix.protocols import SnapshotStore

__all__ = ["SnapshotStoreContract"]


def _snapshot(stream_id: str = "s", version: int = 1, **state: Any) -> Snapshot:
    return Snapshot(
        stream_id=stream_id,
        version=version,
        aggregate_type="orchestrix.testing.Account",
        schema_version=2,
        state=encode_state({"version": version, **state}),
    )


@pytest.mark.asyncio
class SnapshotStoreContract:
    """The `SnapshotStore` contract; override the `snapshot_store` fixture.

    The fixture must yield an open, empty store isolated from other tests, and
    close it afterwards.
    """

    @pytest.fixture
    async def snapshot_store(self) -> SnapshotStore:
        """Yield an open, empty, isolated `SnapshotStore` (override in a subclass)."""
        msg = (
            f"{type(self).__name__} must override the 'snapshot_store' fixture to "
            f"yield an open, empty SnapshotStore of the backend under test"
        )
        raise NotImplementedError(msg)

    async def test_missing_snapshot_is_none(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """A stream without a snapshot loads as None."""
        assert await snapshot_store.load("missing") is None

    async def test_round_trip(self, snapshot_store: SnapshotStore) -> None:
        """A saved snapshot loads back equal, field by field."""
        snapshot = _snapshot(balance=10, owner="\u00e9\U0001f600", tags=["a", "b"])
        await snapshot_store.save(snapshot)
        assert await snapshot_store.load("s") == snapshot

    async def test_newer_snapshot_replaces_older(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """Saving a higher version makes it the stream's latest."""
        await snapshot_store.save(_snapshot(version=5))
        newer = _snapshot(version=10)
        await snapshot_store.save(newer)
        assert await snapshot_store.load("s") == newer

    async def test_older_snapshot_never_replaces_newer(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """Saving a lower version than the stored one changes nothing."""
        newer = _snapshot(version=10)
        await snapshot_store.save(newer)
        await snapshot_store.save(_snapshot(version=5))
        assert await snapshot_store.load("s") == newer

    async def test_racing_saves_keep_the_highest(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """Concurrent saves of many versions leave the highest one stored."""
        versions = [7, 3, 20, 1, 15, 19, 2, 11]
        await asyncio.gather(
            *(snapshot_store.save(_snapshot(version=v)) for v in versions)
        )
        loaded = await snapshot_store.load("s")
        assert loaded is not None
        assert loaded.version == 20

    async def test_stream_ids_are_kept_apart(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """Each stream id, however unusual, keeps its own snapshot."""
        for index, stream_id in enumerate(UNUSUAL_STREAM_IDS, start=1):
            await snapshot_store.save(_snapshot(stream_id, version=index))
        for index, stream_id in enumerate(UNUSUAL_STREAM_IDS, start=1):
            loaded = await snapshot_store.load(stream_id)
            assert loaded == _snapshot(stream_id, version=index), stream_id

    @pytest.mark.parametrize("stream_id", INVALID_STREAM_IDS)
    async def test_invalid_stream_id(
        self, snapshot_store: SnapshotStore, stream_id: Any
    ) -> None:
        """A snapshot of an invalid stream id is rejected."""
        with pytest.raises(InvalidArgumentError):
            await snapshot_store.save(_snapshot(stream_id))

    @pytest.mark.parametrize("version", [0, -1])
    async def test_invalid_version(
        self, snapshot_store: SnapshotStore, version: int
    ) -> None:
        """A snapshot must reflect at least one event (version >= 1)."""
        with pytest.raises(InvalidArgumentError):
            await snapshot_store.save(_snapshot(version=version))
        assert await snapshot_store.load("s") is None

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param({"version": 2**63}, id="version-beyond-64-bits"),
            pytest.param({"version": True}, id="version-bool"),
            pytest.param({"schema_version": 0}, id="schema-version-zero"),
            pytest.param({"schema_version": 2**31}, id="schema-version-beyond-32-bits"),
            pytest.param({"aggregate_type": "a\x00b"}, id="nul-in-aggregate-type"),
            pytest.param(
                {"aggregate_type": "\ud800"}, id="surrogate-in-aggregate-type"
            ),
            pytest.param({"schema_version": "2"}, id="schema-version-str"),
            pytest.param({"aggregate_type": ""}, id="empty-aggregate-type"),
            pytest.param({"aggregate_type": None}, id="aggregate-type-none"),
            pytest.param({"state": "{}"}, id="state-str"),
            pytest.param({"state": bytearray(b"{}")}, id="state-bytearray"),
        ],
    )
    async def test_invalid_fields_are_rejected(
        self, snapshot_store: SnapshotStore, changes: dict[str, Any]
    ) -> None:
        """A snapshot no backend could store as it is raises `InvalidArgumentError`."""
        with pytest.raises(InvalidArgumentError):
            await snapshot_store.save(dataclasses.replace(_snapshot(), **changes))
        assert await snapshot_store.load("s") is None

    async def test_not_a_snapshot_is_rejected(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """``save`` takes a `Snapshot` only."""
        with pytest.raises(InvalidArgumentError):
            await snapshot_store.save({"stream_id": "s"})  # type: ignore[arg-type]  # the wrong type is the point

    @pytest.mark.parametrize("stream_id", INVALID_STREAM_IDS)
    async def test_load_checks_the_stream_id(
        self, snapshot_store: SnapshotStore, stream_id: Any
    ) -> None:
        """Loading an invalid stream id raises, as saving one does."""
        with pytest.raises(InvalidArgumentError):
            await snapshot_store.load(stream_id)

    async def test_close_is_idempotent_and_final(
        self, snapshot_store: SnapshotStore
    ) -> None:
        """``close`` can be repeated; ``save`` and ``load`` then raise."""
        await snapshot_store.save(_snapshot())
        await snapshot_store.close()
        await snapshot_store.close()
        with pytest.raises(ResourceClosedError):
            await snapshot_store.save(_snapshot(version=2))
        with pytest.raises(ResourceClosedError):
            await snapshot_store.load("s")
