"""orchestrix contenders: `open_store` and `Repository` on each backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from benchmarks.contenders.base import Conflict, ReadAllOutcome, StoreContender
from benchmarks.model import Deposited, Ledger, LedgerState
from benchmarks.settings import Settings, fresh_name
from orchestrix.config import open_snapshot_store, open_store
from orchestrix.errors import ConcurrencyError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrix.protocols import EventStore, SnapshotStore
    from orchestrix.repository import Repository

__all__ = [
    "Namespace",
    "OrchestrixMemory",
    "OrchestrixPostgres",
    "OrchestrixRedis",
    "OrchestrixSQLite",
]


class Namespace:
    """A fresh orchestrix URL on one backend, and the removal of what it held."""

    def __init__(self, backend: str, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
        self.name = fresh_name("orx")
        if backend == "memory":
            self.url = "memory://"
        elif backend == "sqlite":
            self.path = Path(settings.workdir) / f"{self.name}.db"
            self.url = f"sqlite:///{self.path}?synchronous=full"
        elif backend == "postgres":
            sep = "&" if "?" in settings.postgres_url else "?"
            self.url = f"{settings.postgres_url}{sep}schema={self.name}"
        elif backend == "redis":
            sep = "&" if "?" in settings.redis_url else "?"
            self.url = f"{settings.redis_url}{sep}prefix={self.name}"
        else:
            msg = f"no orchestrix backend named {backend!r}"
            raise ValueError(msg)

    async def remove(self) -> None:
        """Delete the file, schema or keys the namespace holds."""
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        elif self.backend == "postgres":
            from benchmarks.contenders.raw_postgres import drop_schema

            await drop_schema(self.settings.postgres_url, self.name)
        elif self.backend == "redis":
            from benchmarks.contenders.raw_redis import delete_prefix

            await delete_prefix(self.settings.redis_url, self.name)


class _Orchestrix(StoreContender):
    library: ClassVar[str] = "orchestrix"
    gap_free: ClassVar[bool] = True

    async def open(self) -> None:
        self._namespace = Namespace(self.backend, self.settings)
        url = self._namespace.url
        self._store: EventStore = await open_store(url)
        self._snapshots: SnapshotStore = await open_snapshot_store(url)
        self._repo: Repository[Ledger] | None = None

    def _repository(self) -> Repository[Ledger]:
        if self._repo is None:
            from orchestrix.repository import Repository

            self._repo = Repository(Ledger, self._store, snapshots=self._snapshots)
        return self._repo

    async def close(self) -> None:
        try:
            await self._snapshots.close()
            await self._store.close()
        finally:
            await self._namespace.remove()

    async def append(self, stream: str, amounts: Sequence[int], expected: int) -> None:
        events = [Deposited(ledger_id=stream, amount=a) for a in amounts]
        try:
            await self._store.append(stream, events, expected_version=expected)
        except ConcurrencyError as exc:
            raise Conflict(stream) from exc

    async def stream_version(self, stream: str) -> int:
        return await self._store.stream_version(stream)

    async def stream_versions(self, stream: str) -> list[tuple[int, str]]:
        return [(r.version, r.id) async for r in self._store.read(stream)]

    async def rehydrate(self, stream: str) -> LedgerState:
        ledger = await self._repository().get(stream)
        return LedgerState(ledger.balance, ledger.count)

    async def snapshot(self, stream: str) -> None:
        ledger = await self._repository().get(stream)
        await self._snapshots.save(ledger.to_snapshot())

    async def read_all(self) -> ReadAllOutcome:
        count = total = last = 0
        ordered = gap_free = True
        async for recorded in self._store.read_all():
            event = recorded.event
            assert isinstance(event, Deposited)
            total += event.amount
            count += 1
            position = recorded.position
            ordered = ordered and position > last
            gap_free = gap_free and position == last + 1
            last = position
        return ReadAllOutcome(count, total, ordered, gap_free)


class OrchestrixMemory(_Orchestrix):
    """orchestrix's in-memory store (events encoded through the codec)."""

    backend: ClassVar[str] = "memory"


class OrchestrixSQLite(_Orchestrix):
    """orchestrix's SQLite store, in a fresh file (synchronous=full, WAL)."""

    backend: ClassVar[str] = "sqlite"


class OrchestrixPostgres(_Orchestrix):
    """orchestrix's PostgreSQL store, in a fresh schema."""

    backend: ClassVar[str] = "postgres"


class OrchestrixRedis(_Orchestrix):
    """orchestrix's Redis store, under a fresh key prefix."""

    backend: ClassVar[str] = "redis"
