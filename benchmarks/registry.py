"""Every contender, by backend, loaded lazily so a missing driver skips only its own.

To add a contender, write a class (a `StoreContender`, `BusContender` or
`CodecContender`) and add one line to the matching table below, naming its
module and class; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from benchmarks.settings import Unavailable

__all__ = [
    "BACKENDS",
    "BUS_CONTENDERS",
    "CODEC_CONTENDERS",
    "STORE_CONTENDERS",
    "Entry",
]

BACKENDS = ("memory", "sqlite", "postgres", "redis")


@dataclass(frozen=True, slots=True)
class Entry:
    """Where a contender class lives.

    Attributes:
        library: ``orchestrix``, ``raw``, ``eventsourcing`` or a variant.
        backend: One of `BACKENDS` (or ``codec`` for C1 and C2).
        target: ``module:Class``.
    """

    library: str
    backend: str
    target: str

    def load(self) -> Any:
        """Import and return the class.

        Raises:
            Unavailable: Its module, or a module it needs, cannot be imported.
        """
        module_name, _, name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            msg = f"{self.library}/{self.backend}: cannot import {exc.name or exc}"
            raise Unavailable(msg) from exc
        return getattr(module, name)


_C = "benchmarks.contenders"
STORE_CONTENDERS: tuple[Entry, ...] = (
    Entry("orchestrix", "memory", f"{_C}.orchestrix_store:OrchestrixMemory"),
    Entry("raw", "memory", f"{_C}.raw_memory:RawMemory"),
    Entry("eventsourcing", "memory", f"{_C}.es:EsPOPO"),
    Entry("orchestrix", "sqlite", f"{_C}.orchestrix_store:OrchestrixSQLite"),
    Entry("raw", "sqlite", f"{_C}.raw_sqlite:RawAioSQLite"),
    Entry("raw-sqlite3", "sqlite", f"{_C}.raw_sqlite:RawSQLite3"),
    Entry("eventsourcing", "sqlite", f"{_C}.es:EsSQLite"),
    Entry("orchestrix", "postgres", f"{_C}.orchestrix_store:OrchestrixPostgres"),
    Entry("raw", "postgres", f"{_C}.raw_postgres:RawPostgres"),
    Entry("eventsourcing", "postgres", f"{_C}.es:EsPostgres"),
    Entry("orchestrix", "redis", f"{_C}.orchestrix_store:OrchestrixRedis"),
    Entry("raw", "redis", f"{_C}.raw_redis:RawRedis"),
)

_B = "benchmarks.buses"
BUS_CONTENDERS: tuple[Entry, ...] = (
    Entry("orchestrix", "memory", f"{_B}:OrchestrixBus"),
    Entry("raw", "memory", f"{_B}:RawQueue"),
    Entry("orchestrix", "sqlite", f"{_B}:OrchestrixBus"),
    Entry("orchestrix", "postgres", f"{_B}:OrchestrixBus"),
    Entry("raw", "postgres", f"{_B}:RawListenNotify"),
    Entry("orchestrix", "redis", f"{_B}:OrchestrixBus"),
    Entry("raw", "redis", f"{_B}:RawRedisStreams"),
)

_K = "benchmarks.codecs"
CODEC_CONTENDERS: tuple[Entry, ...] = (
    Entry("orchestrix", "codec", f"{_K}:OrchestrixCodec"),
    Entry("raw", "codec", f"{_K}:RawMsgspec"),
    Entry("eventsourcing", "codec", f"{_K}:EsMapper"),
)
