"""Fixtures shared by the whole suite: where the PostgreSQL and Redis servers are.

Servers are found through ``ORCHESTRIX_TEST_POSTGRES_URL`` and
``ORCHESTRIX_TEST_REDIS_URL`` (defaults on 127.0.0.1). When a server does not
answer, its tests are skipped with one line saying why, except under
``CI=true``, where a missing server fails the run instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from hypothesis import settings

# Under CI=true the property tests draw the same examples on every run, so a
# red build always means a change broke something, never a newly drawn case;
# local runs keep exploring new examples (and keep failures in .hypothesis/).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")

POSTGRES_URL = os.environ.get(
    "ORCHESTRIX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ORCHESTRIX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _answers(url: str, default_port: int) -> str | None:
    """Return None if a TCP connection to *url*'s host succeeds, else the reason."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc}"


def _unavailable(kind: str, variable: str, reason: str) -> None:
    text = f"{kind} server not reachable ({reason}); set {variable} to test against one"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {text}", pytrace=False)
    pytest.skip(text)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a reachable PostgreSQL server (skip, or fail under CI, if none)."""
    reason = _answers(POSTGRES_URL, 5432)
    if reason is not None:
        _unavailable("PostgreSQL", "ORCHESTRIX_TEST_POSTGRES_URL", reason)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis server (skip, or fail under CI, if none)."""
    reason = _answers(REDIS_URL, 6379)
    if reason is not None:
        _unavailable("Redis", "ORCHESTRIX_TEST_REDIS_URL", reason)
    return REDIS_URL


@pytest.fixture
def unique_name() -> str:
    """A fresh identifier-safe name (schema, key prefix) for one test."""
    return f"t_{uuid.uuid4().hex[:16]}"
