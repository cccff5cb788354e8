"""Real PostgreSQL and Redis servers never see their URL's password echoed back.

The unit tests (``tests/unit/test_config_secrets.py``) cover URLs refused before
connecting and closed ports; these open stores, snapshot stores and buses on
real servers, use them, and make the servers refuse logins, databases and
settings, then search every error, repr and log line for the password.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import pytest

from orchestrix import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    Event,
    open_bus,
    open_snapshot_store,
    open_store,
)
from tests.unit.test_config_secrets import (
    OPENER_IDS,
    OPENERS,
    PASSWORDS,
    assert_hidden,
    exception_texts,
    log_texts,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from orchestrix.config import Opening


@dataclass(frozen=True, kw_only=True, slots=True)
class Noted(Event, type="tests.config_secrets.Noted"):
    """An event to store and publish."""

    text: str


def with_password(url: str, password: str, *, user: str | None = None) -> str:
    """Return *url* logging in as *user* (default: the URL's) with *password*."""
    parts = urlsplit(url)
    name = (parts.username or "") if user is None else user
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{name}:{password}@{host}"))


def with_path(url: str, path: str, query: str = "") -> str:
    """Return *url* with another path (database) and query."""
    return urlunsplit(urlsplit(url)._replace(path=path, query=query))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture everything the ``orchestrix`` loggers emit, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="orchestrix")
    return caplog


@pytest.fixture
async def pg_schema(postgres_url: str, unique_name: str) -> AsyncIterator[str]:
    """A fresh schema name, dropped after the test."""
    import asyncpg

    yield unique_name
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')
    finally:
        await connection.close()


@pytest.fixture
async def redis_prefix(redis_url: str, unique_name: str) -> AsyncIterator[str]:
    """A fresh key prefix, whose keys are deleted after the test."""
    from tests.contract.test_redis import delete_keys

    yield unique_name
    await delete_keys(redis_url, unique_name)


async def _use_everything(url: str) -> list[str]:
    """Open, use and close a store, a snapshot store and a bus; return their texts."""
    texts: list[str] = []
    seen: list[Noted] = []

    async def handler(message: Noted) -> None:
        seen.append(message)

    async with (
        open_store(url) as store,
        open_snapshot_store(url) as snapshots,
        open_bus(url) as bus,
    ):
        bus.subscribe(Noted, handler, group="secrets")
        await bus.start()
        await store.append("secrets-1", [Noted(text="x")])
        assert [r.version async for r in store.read("secrets-1")] == [1]
        assert await snapshots.load("secrets-1") is None
        await bus.publish(Noted(text="y"))
        for resource in (store, snapshots, bus):
            texts += [repr(resource), str(resource)]
    return texts


@pytest.mark.postgres
@pytest.mark.parametrize("password", PASSWORDS)
async def test_postgres_resources_hide_the_password(
    postgres_url: str, pg_schema: str, password: str, logs: pytest.LogCaptureFixture
) -> None:
    """Opened PostgreSQL stores and buses show their URL with the password masked.

    The test server trusts every login, so any password opens it.
    """
    url = with_password(postgres_url, password) + f"?schema={pg_schema}"
    texts = await _use_everything(url)
    assert any(":***@" in text for text in texts)
    assert_hidden([*texts, *log_texts(logs)])


@pytest.mark.redis
@pytest.mark.parametrize("password", PASSWORDS)
async def test_redis_resources_hide_the_password(
    redis_url: str, redis_prefix: str, password: str, logs: pytest.LogCaptureFixture
) -> None:
    """Opened Redis stores and buses, and their warnings, mask the password.

    A server without ``requirepass`` accepts any password for the default user.
    """
    url = with_password(redis_url, password) + f"?prefix={redis_prefix}"
    texts = await _use_everything(url)
    assert any(":***@" in text for text in texts)
    assert_hidden([*texts, *log_texts(logs)])


async def _refused(
    opener: Callable[[str], Opening[Any]], url: str, error: type[Exception]
) -> list[str]:
    """Open *url*, expecting *error*; return the texts of the error's chain."""
    with pytest.raises(error) as caught:
        await opener(url)
    return exception_texts(caught.value)


class Refusal(NamedTuple):
    """A URL change that makes the server (or the driver) refuse the login."""

    user: str | None = None
    path: str | None = None
    query: str = ""
    error: type[Exception] = BackendUnavailable
    needle: str = ""

    def apply(self, url: str, password: str) -> str:
        """Return *url* with this change and *password*."""
        url = with_password(url, password, user=self.user)
        path = urlsplit(url).path if self.path is None else self.path
        return with_path(url, path, self.query)


POSTGRES_REFUSALS = {
    "database": Refusal(path="/no_such_database", needle="no_such_database"),
    "role": Refusal(user="no_such_role", needle="no_such_role"),
    "setting": Refusal(
        query="no_such_setting=1", error=ConfigurationError, needle="no_such_setting"
    ),
    "setting-value": Refusal(
        query="statement_timeout=soon", error=ConfigurationError, needle="soon"
    ),
    "sslmode": Refusal(
        query="sslmode=sometimes", error=ConfigurationError, needle="sslmode"
    ),
}
REDIS_REFUSALS = {
    "user": Refusal(user="no_such_user", query="retries=0", needle=":***@"),
    "database": Refusal(
        path="/99999", query="retries=0", error=BackendError, needle=":***@"
    ),
}


@pytest.mark.postgres
@pytest.mark.parametrize("opener", OPENERS, ids=OPENER_IDS)
@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize(
    "refusal", POSTGRES_REFUSALS.values(), ids=POSTGRES_REFUSALS.keys()
)
async def test_postgres_refusals_hide_the_password(
    postgres_url: str,
    opener: Callable[[str], Opening[Any]],
    password: str,
    refusal: Refusal,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A wrong database, role or setting is named, and the password is not.

    A setting the server or asyncpg refuses is a ConfigurationError.
    """
    texts = await _refused(opener, refusal.apply(postgres_url, password), refusal.error)
    assert refusal.needle in texts[0]
    assert_hidden([*texts, *log_texts(logs)])


@pytest.mark.redis
@pytest.mark.parametrize("opener", OPENERS, ids=OPENER_IDS)
@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("refusal", REDIS_REFUSALS.values(), ids=REDIS_REFUSALS.keys())
async def test_redis_refusals_hide_the_password(
    redis_url: str,
    opener: Callable[[str], Opening[Any]],
    password: str,
    refusal: Refusal,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A refused login or a database out of range is reported without the password."""
    texts = await _refused(opener, refusal.apply(redis_url, password), refusal.error)
    assert refusal.needle in texts[0]
    assert_hidden([*texts, *log_texts(logs)])
