"""Where the servers are and where scratch files go, for one benchmark run."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Settings", "Unavailable", "fresh_name"]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Unavailable(Exception):  # noqa: N818 -- a condition, reported and skipped
    """A contender cannot run here (driver missing, server down, module absent)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Servers and scratch space for one run.

    Attributes:
        postgres_url: PostgreSQL server; contenders create their own schemas.
        redis_url: Redis server; contenders use their own key prefixes.
        workdir: Directory for SQLite files, removed after the run.
    """

    postgres_url: str
    redis_url: str
    workdir: Path

    @classmethod
    def from_env(cls, workdir: Path) -> Settings:
        """Read the server URLs from the test-suite variables, or use the defaults."""
        return cls(
            postgres_url=os.environ.get(
                "ORCHESTRIX_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL
            ),
            redis_url=os.environ.get("ORCHESTRIX_TEST_REDIS_URL", DEFAULT_REDIS_URL),
            workdir=workdir,
        )


def fresh_name(kind: str) -> str:
    """Return a new identifier-safe name such as ``bench_raw_1f2e...``."""
    return f"bench_{kind}_{uuid.uuid4().hex[:12]}"
