"""`CheckpointStoreContract`: the executable copy of the `CheckpointStore` contract."""

# Contract suites are tests shipped in the package: they assert, and compare
# with literal counts.
# ruff: noqa: S101, PLR2004

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from orchestrix.errors import InvalidArgumentError, ResourceClosedError
from orchestrix.testing._event_store_input import INVALID_STREAM_IDS, UNUSUAL_STREAM_IDS

if TYPE_CHECKING:
    from orchestrix.protocols import CheckpointStore

__all__ = ["CheckpointStoreContract"]


@pytest.mark.asyncio
class CheckpointStoreContract:
    """The `CheckpointStore` contract; override the `checkpoint_store` fixture.

    The fixture must yield an open, empty store, isolated from other tests,
    and close it afterwards.
    """

    @pytest.fixture
    async def checkpoint_store(self) -> CheckpointStore:
        """Yield an open, empty, isolated `CheckpointStore` (override it)."""
        msg = (
            f"{type(self).__name__} must override the 'checkpoint_store' fixture "
            f"to yield an open, empty CheckpointStore of the backend under test"
        )
        raise NotImplementedError(msg)

    async def test_missing_checkpoint_is_none(
        self, checkpoint_store: CheckpointStore
    ) -> None:
        """A name never saved loads as None, and nothing is listed."""
        assert await checkpoint_store.load("projection") is None
        assert await checkpoint_store.load_all() == {}

    async def test_save_then_load(self, checkpoint_store: CheckpointStore) -> None:
        """A saved position loads back; a later save replaces it, even a lower one."""
        await checkpoint_store.save("projection", 42)
        assert await checkpoint_store.load("projection") == 42
        await checkpoint_store.save("projection", 43)
        assert await checkpoint_store.load("projection") == 43
        await checkpoint_store.save("projection", 0)
        assert await checkpoint_store.load("projection") == 0

    async def test_largest_position(self, checkpoint_store: CheckpointStore) -> None:
        """Positions up to 2**63 - 1 are kept exactly."""
        for position in (2**53 + 1, 2**63 - 1):
            await checkpoint_store.save("big", position)
            assert await checkpoint_store.load("big") == position

    async def test_names_are_kept_apart(
        self, checkpoint_store: CheckpointStore
    ) -> None:
        """Each name, however unusual, keeps its own position; all are listed."""
        expected = {name: i for i, name in enumerate(UNUSUAL_STREAM_IDS)}
        for name, position in expected.items():
            await checkpoint_store.save(name, position)
        for name, position in expected.items():
            assert await checkpoint_store.load(name) == position, name
        listed = await checkpoint_store.load_all()
        assert listed == expected
        assert list(listed) == sorted(expected)

    async def test_delete(self, checkpoint_store: CheckpointStore) -> None:
        """A deleted checkpoint is gone; deleting a missing one does nothing."""
        await checkpoint_store.save("a", 1)
        await checkpoint_store.save("b", 2)
        await checkpoint_store.delete("a")
        await checkpoint_store.delete("a")
        await checkpoint_store.delete("never-saved")
        assert await checkpoint_store.load("a") is None
        assert await checkpoint_store.load_all() == {"b": 2}

    async def test_concurrent_saves_of_different_names(
        self, checkpoint_store: CheckpointStore
    ) -> None:
        """Saves of many names at once all land."""
        await asyncio.gather(
            *(checkpoint_store.save(f"name-{i}", i * 10) for i in range(20))
        )
        assert await checkpoint_store.load_all() == {
            f"name-{i}": i * 10 for i in range(20)
        }

    @pytest.mark.parametrize("name", INVALID_STREAM_IDS)
    async def test_invalid_names(
        self, checkpoint_store: CheckpointStore, name: Any
    ) -> None:
        """A name no backend can keep raises `InvalidArgumentError` everywhere."""
        with pytest.raises(InvalidArgumentError, match="checkpoint name"):
            await checkpoint_store.save(name, 1)
        with pytest.raises(InvalidArgumentError, match="checkpoint name"):
            await checkpoint_store.load(name)
        with pytest.raises(InvalidArgumentError, match="checkpoint name"):
            await checkpoint_store.delete(name)

    @pytest.mark.parametrize("position", [-1, 2**63, True, 1.0, "1", None])
    async def test_invalid_positions(
        self, checkpoint_store: CheckpointStore, position: Any
    ) -> None:
        """A position that is not an int from 0 to 2**63 - 1 is refused."""
        with pytest.raises(InvalidArgumentError, match="position"):
            await checkpoint_store.save("p", position)
        assert await checkpoint_store.load("p") is None

    async def test_close_is_idempotent_and_final(
        self, checkpoint_store: CheckpointStore
    ) -> None:
        """``close`` can be repeated; every other method then raises."""
        await checkpoint_store.save("p", 1)
        await checkpoint_store.close()
        await checkpoint_store.close()
        with pytest.raises(ResourceClosedError):
            await checkpoint_store.load("p")
        with pytest.raises(ResourceClosedError):
            await checkpoint_store.save("p", 2)
        with pytest.raises(ResourceClosedError):
            await checkpoint_store.delete("p")
        with pytest.raises(ResourceClosedError):
            await checkpoint_store.load_all()
