"""``eventsourcing`` (9.5) contenders on its POPO, SQLite and PostgreSQL modules.

Writes go through the library's event store (``app.events.put``) with domain
events built at the expected version, the same level as orchestrix's
``EventStore.append``; the version check is the library's unique constraint
on (originator id, originator version). Rehydration goes through the
application's repository (``app.repository.get``) and snapshots through
``app.take_snapshot``; the global log is read from the application sequence
(``recorder.select_notifications``) and decoded by the application's mapper.
eventsourcing is synchronous, so its calls block the event loop; W5 runs its
writers in threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from benchmarks.contenders.base import (
    Conflict,
    ContentionOutcome,
    ReadAllOutcome,
    StoreContender,
)
from benchmarks.model import LedgerState
from benchmarks.settings import fresh_name

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["EsLedger", "EsPOPO", "EsPostgres", "EsSQLite"]

PAGE = 1_000
_NAMESPACE = uuid.UUID("6c1b7e61-61a8-4c43-9e0b-7d1f1c6a0e55")


class EsLedger(Aggregate):
    """The ledger in eventsourcing's style; its first event carries an amount."""

    @event("Opened")
    def __init__(self, amount: int) -> None:
        self.balance = amount
        self.count = 1

    @event("Deposited")
    def deposit(self, amount: int) -> None:
        """Record a deposit."""
        self.balance += amount
        self.count += 1


_OPENED: Any = EsLedger.Opened  # type: ignore[attr-defined]  # made by @event
_DEPOSITED: Any = EsLedger.Deposited  # type: ignore[attr-defined]  # made by @event
_TOPIC = get_topic(EsLedger)


class LedgerApplication(Application[uuid.UUID]):
    """An eventsourcing application holding ledgers; snapshots are enabled."""

    is_snapshotting_enabled = True


class _Es(StoreContender):
    library: ClassVar[str] = "eventsourcing"

    def _env(self) -> dict[str, str]:
        raise NotImplementedError

    def _remove(self) -> None:
        """Delete what the persistence module created (nothing for POPO)."""

    async def open(self) -> None:
        self._app = LedgerApplication(env=self._env())
        self._recorder: Any = self._app.recorder

    async def close(self) -> None:
        try:
            self._app.close()
        finally:
            self._remove()

    @staticmethod
    def _id(stream: str) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, stream)

    def _events(self, stream: str, amounts: Sequence[int], expected: int) -> list[Any]:
        originator = self._id(stream)
        events = []
        for version, amount in enumerate(amounts, expected + 1):
            if version == 1:
                events.append(
                    _OPENED(
                        originator_id=originator,
                        originator_version=1,
                        timestamp=_OPENED.create_timestamp(),
                        originator_topic=_TOPIC,
                        amount=amount,
                    )
                )
            else:
                events.append(
                    _DEPOSITED(
                        originator_id=originator,
                        originator_version=version,
                        timestamp=_DEPOSITED.create_timestamp(),
                        amount=amount,
                    )
                )
        return events

    async def append(self, stream: str, amounts: Sequence[int], expected: int) -> None:
        try:
            self._app.events.put(self._events(stream, amounts, expected))
        except IntegrityError as exc:
            raise Conflict(stream) from exc

    def _version(self, stream: str) -> int:
        last = self._recorder.select_events(self._id(stream), desc=True, limit=1)
        return int(last[0].originator_version) if last else 0

    async def stream_version(self, stream: str) -> int:
        return self._version(stream)

    async def stream_versions(self, stream: str) -> list[tuple[int, str]]:
        # eventsourcing has no event ids: (originator id, version) is the key.
        rows = self._recorder.select_events(self._id(stream))
        return [
            (r.originator_version, f"{r.originator_id}:{r.originator_version}")
            for r in rows
        ]

    async def rehydrate(self, stream: str) -> LedgerState:
        ledger: Any = self._app.repository.get(self._id(stream))
        return LedgerState(ledger.balance, ledger.count)

    async def snapshot(self, stream: str) -> None:
        self._app.take_snapshot(self._id(stream))

    async def read_all(self) -> ReadAllOutcome:
        count = total = last = 0
        ordered = True
        select = self._recorder.select_notifications
        to_event: Any = self._app.mapper.to_domain_event
        while True:
            page = select(last + 1, PAGE)
            for notification in page:
                total += to_event(notification).amount
                ordered = ordered and notification.id > last
                last = notification.id
            count += len(page)
            if len(page) < PAGE:
                return ReadAllOutcome(count, total, ordered)

    async def contend(
        self, stream: str, writers: int, seconds: float
    ) -> ContentionOutcome:
        return await asyncio.to_thread(self._contend, stream, writers, seconds)

    def _contend(self, stream: str, writers: int, seconds: float) -> ContentionOutcome:
        lock = threading.Lock()
        totals = [0, 0]
        start = time.perf_counter()
        deadline = start + seconds

        def writer() -> None:
            ok = failed = 0
            seen = self._version(stream)
            while time.perf_counter() < deadline:
                try:
                    self._app.events.put(self._events(stream, (1,), seen))
                except IntegrityError:
                    failed += 1
                    seen = self._version(stream)
                else:
                    ok += 1
                    seen += 1
            with lock:
                totals[0] += ok
                totals[1] += failed

        threads = [threading.Thread(target=writer) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return ContentionOutcome(totals[0], totals[1], time.perf_counter() - start)


class EsPOPO(_Es):
    """eventsourcing's plain-old-Python-objects recorder (in memory)."""

    backend: ClassVar[str] = "memory"

    def _env(self) -> dict[str, str]:
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class EsSQLite(_Es):
    """eventsourcing's SQLite recorder, in a fresh file (WAL, synchronous=FULL)."""

    backend: ClassVar[str] = "sqlite"

    def _env(self) -> dict[str, str]:
        self._path = Path(self.settings.workdir) / f"{fresh_name('es')}.db"
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self._path),
        }

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._path}{suffix}").unlink(missing_ok=True)


class EsPostgres(_Es):
    """eventsourcing's PostgreSQL recorder (psycopg 3), in a fresh schema."""

    backend: ClassVar[str] = "postgres"

    async def open(self) -> None:
        from urllib.parse import urlsplit

        import asyncpg

        self._schema = fresh_name("es")
        conn = await asyncpg.connect(self.settings.postgres_url)
        try:
            await conn.execute(f'CREATE SCHEMA "{self._schema}"')
        finally:
            await conn.close()
        parts = urlsplit(self.settings.postgres_url)
        self._env_vars = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": parts.username or "postgres",
            "POSTGRES_PASSWORD": parts.password or "",
            "POSTGRES_SCHEMA": self._schema,
            "POSTGRES_POOL_SIZE": "10",
        }
        await super().open()

    def _env(self) -> dict[str, str]:
        return self._env_vars

    async def close(self) -> None:
        from benchmarks.contenders.raw_postgres import drop_schema

        try:
            self._app.close()
        finally:
            await drop_schema(self.settings.postgres_url, self._schema)
