"""No configuration path shows a URL's password: not errors, causes, reprs or logs.

Every URL here carries a known password, written plainly or percent-encoded,
and every text orchestrix produces while refusing or opening it is searched
for the password in both forms. Nothing here needs a server: PostgreSQL and
Redis URLs are refused before connecting, or point at a closed port.
``tests/integration/test_config_secrets.py`` covers real servers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestrix.backends.memory
import orchestrix.config
from orchestrix import (
    BackendUnavailable,
    ConfigurationError,
    OrchestrixError,
    open_bus,
    open_snapshot_store,
    open_store,
)
from orchestrix._utils import mask_password, redact_url
from orchestrix.backends.postgres._connection import parse_url as parse_postgres_url
from orchestrix.backends.redis import (
    RedisEventStore,
    RedisMessageBus,
    RedisSnapshotStore,
)
from orchestrix.backends.sqlite._connection import STORE_OPTIONS
from orchestrix.backends.sqlite._connection import parse_url as parse_sqlite_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from orchestrix.config import Opening

#: The password, plainly; it is also the start of the special one.
PLAIN = "Zq8Kx7Wm"
#: A password that must be percent-encoded in a URL.
SPECIAL = PLAIN + "@/:?#% é"
ENCODED = quote(SPECIAL, safe="")
SECRETS = (PLAIN, SPECIAL, ENCODED)
PASSWORDS = [pytest.param(PLAIN, id="plain"), pytest.param(ENCODED, id="encoded")]

OPENERS: list[Callable[[str], Opening[Any]]] = [
    open_store,
    open_snapshot_store,
    open_bus,
]
OPENER_IDS = ["store", "snapshots", "bus"]

# Every server below is 127.0.0.1:1, a closed port, so a URL that wrongly
# passes its parser fails fast instead of reaching a server.
BAD_URLS = [
    "nosuch://user:{pw}@db.example.com/app",
    "nosuch:/user:{pw}@db",
    "memory://user:{pw}@host",
    "sqlite://user:{pw}@/app.db",
    "sqlite://user:{pw}@[::1/app.db",
    "sqlite://user:{pw}@h\uff03x/app.db",
    "sqlite://user:{pw}@/app.db?synchronous=a&synchronous=b",
    "postgresql://user:{pw}@[::1/db",
    "postgresql://user:{pw}@127.0.0.1:99999/db",
    "postgresql://user:{pw}@127.0.0.1:abc/db",
    "postgresql://user:{pw}@h\uff03x:1/db",
    "postgresql://user:{pw}@127.0.0.1:1/d%zzb",
    "postgresql://user:{pw}@127.0.0.1:1/d%00b",
    "postgresql://user:{pw}@127.0.0.1:1/db#top",
    "postgresql://user:{pw}@127.0.0.1:1/db?schema=not-an-identifier",
    "postgresql://user:{pw}@127.0.0.1:1/db?schema=a&schema=b",
    "postgresql://user:{pw}@127.0.0.1:1/db?page_size=many",
    "postgresql://user:{pw}@127.0.0.1:1/db?min_size=5&max_size=2",
    "postgres://user:{pw}@127.0.0.1:1/db?max_attempts=0",
    "redis://user:{pw}@[::1:6379/0",
    "redis://user:{pw}@h\uff03x:6379/0",
    "redis://user:{pw}@127.0.0.1:99999/0",
    "redis://user:{pw}@127.0.0.1:1/abc",
    "redis://user:{pw}@127.0.0.1:1/0?db=1",
    "redis://user:{pw}@127.0.0.1:1/0?prefix=no%20spaces",
    "redis://user:{pw}@127.0.0.1:1/0?nope=1",
    "redis://user:{pw}@127.0.0.1:1/0?retries=-1",
    "redis://user:{pw}@127.0.0.1:1/0?prefix=a&prefix=b",
    "redis://user:{pw}@127.0.0.1:1/0?max_attempts=0&max_attempts=1",
    "rediss://user:{pw}@127.0.0.1:1/0?socket_timeout=soon",
]

UNREACHABLE_URLS = [
    "postgresql://user:{pw}@127.0.0.1:1/db",
    "postgresql://user%40corp:{pw}@127.0.0.1:1/db",
    "redis://user:{pw}@127.0.0.1:1/0?retries=0",
    "redis://:{pw}@127.0.0.1:1/0?retries=0",
]

# Passwords written without the percent-encoding they need: the parts on
# both sides of the unencoded character must stay hidden.
MISTYPED_URLS = [
    "postgresql://user@corp:Zq8Kx7Wm@127.0.0.1:1/db",
    "postgresql://user:Zq8Kx7Wm@Rt5@127.0.0.1:1/db",
    "postgresql://user:Zq8Kx7Wm/Rt5@127.0.0.1:1/db",
    "postgresql://user:Zq8Kx7Wm?Rt5@127.0.0.1:1/db",
    "postgresql://user:Zq8Kx7Wm#Rt5@127.0.0.1:1/db",
    "redis://user:Zq8Kx7Wm@Rt5@127.0.0.1:1/0?retries=0",
    "redis://user:Zq8Kx7Wm/Rt5@127.0.0.1:1/0?retries=0",
    "redis://user:Zq8Kx7Wm?Rt5@127.0.0.1:1/0?retries=0",
    "sqlite://user:Zq8Kx7Wm/Rt5@/app.db",
    "memory://user:Zq8Kx7Wm?Rt5@host",
]


def exception_texts(exc: BaseException) -> list[str]:
    """Return str and repr of *exc* and of every exception chained to it."""
    texts: list[str] = []
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *getattr(current, "__notes__", ())]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            todo += current.exceptions
    return texts


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return every captured log line, formatted with its traceback, and message."""
    return [caplog.text, *(record.getMessage() for record in caplog.records)]


def assert_hidden(texts: Iterable[str], secrets: Iterable[str] = SECRETS) -> None:
    """Fail if any of *secrets* appears in any of *texts*."""
    secrets = tuple(secrets)
    for text in texts:
        shown = [secret for secret in secrets if secret in text]
        assert not shown, f"password text {shown} in {text!r}"


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in a fresh directory, where a SQLite URL may make files."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture everything the ``orchestrix`` loggers emit, down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="orchestrix")
    return caplog


@pytest.mark.parametrize("opener", OPENERS, ids=OPENER_IDS)
@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("template", BAD_URLS)
async def test_bad_urls_never_show_the_password(
    template: str,
    password: str,
    opener: Callable[[str], Opening[Any]],
    logs: pytest.LogCaptureFixture,
) -> None:
    """A URL refused for any reason is described without its password."""
    with pytest.raises(ConfigurationError) as caught:
        await opener(template.format(pw=password))
    assert_hidden([*exception_texts(caught.value), *log_texts(logs)])


@pytest.mark.parametrize("opener", OPENERS, ids=OPENER_IDS)
@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("template", UNREACHABLE_URLS)
async def test_unreachable_servers_never_show_the_password(
    template: str,
    password: str,
    opener: Callable[[str], Opening[Any]],
    logs: pytest.LogCaptureFixture,
) -> None:
    """A server that refuses the connection is named with its password masked."""
    with pytest.raises(BackendUnavailable) as caught:
        await opener(template.format(pw=password))
    texts = exception_texts(caught.value)
    assert "***" in texts[0]
    assert_hidden([*texts, *log_texts(logs)])


@pytest.mark.parametrize("opener", OPENERS, ids=OPENER_IDS)
@pytest.mark.parametrize("url", MISTYPED_URLS)
async def test_passwords_needing_encoding_stay_hidden(
    url: str,
    opener: Callable[[str], Opening[Any]],
    logs: pytest.LogCaptureFixture,
) -> None:
    """A password holding an unencoded '@', '/', '?' or '#' is hidden whole."""
    with pytest.raises(OrchestrixError) as caught:
        await opener(url)
    assert isinstance(caught.value, ConfigurationError | BackendUnavailable)
    assert_hidden(
        [*exception_texts(caught.value), *log_texts(logs)], ["Zq8Kx7Wm", "Rt5"]
    )


@pytest.mark.parametrize("url", MISTYPED_URLS)
def test_redact_url_hides_a_password_needing_encoding(url: str) -> None:
    """`redact_url` masks a password up to its last '@', whatever it holds."""
    redacted = redact_url(url)
    assert "***" in redacted
    assert_hidden([redacted], ["Zq8Kx7Wm", "Rt5"])


@pytest.mark.parametrize("password", PASSWORDS)
def test_mask_password_hides_both_spellings(password: str) -> None:
    """A driver message quoting the decoded password is masked too."""
    url = f"redis://user:{password}@host:6379/0"
    text = f"AUTH user {SPECIAL} failed at {url} (netloc 'user:{password}@host')"
    masked = mask_password(text, url)
    assert_hidden([masked])
    assert masked.count("***") >= 2


@pytest.mark.parametrize("password", PASSWORDS)
async def test_reprs_of_unconnected_resources_hide_the_password(
    password: str,
) -> None:
    """Parsed PostgreSQL options and Redis resources show no password in repr/str."""
    options = parse_postgres_url(f"postgresql://user:{password}@127.0.0.1:1/db")
    redis_url = f"redis://user:{password}@127.0.0.1:1/0"
    resources = [
        RedisEventStore(redis_url),
        RedisSnapshotStore(redis_url),
        RedisMessageBus(redis_url),
    ]
    try:
        texts = [repr(options), str(options), options.redacted]
        for resource in resources:
            texts += [repr(resource), str(resource)]
            assert "user:***@127.0.0.1:1" in repr(resource)
        assert "user:***@127.0.0.1:1" in options.redacted
        assert_hidden(texts)
    finally:
        for resource in resources:
            await resource.close()


URL_HEADS = [
    f"postgresql://user:{PLAIN}@",
    f"postgres://user%40corp:{ENCODED}@",
    f"redis://user:{PLAIN}@",
    f"rediss://:{ENCODED}@",
    f"sqlite://user:{PLAIN}@",
    f"memory://user:{PLAIN}@",
]
# Pieces of hosts, paths and queries, and characters that upset parsers.
URL_PIECES = [
    *"[]@:/?#%&=,; .0123456789abcxyz",
    "127.0.0.1",
    ":6379",
    "[::1]",
    "/0",
    "?db=",
    "schema=",
    "prefix=",
    "\x00",
    "\uff03",
    "\ud800",
    "%00",
    "%ff",
    "%zz",
]
PARSERS: list[Callable[[str], object]] = [
    orchestrix.config._backend,
    orchestrix.backends.memory._check_url,
    lambda url: parse_sqlite_url(url, STORE_OPTIONS),
    parse_postgres_url,
    RedisEventStore,
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(URL_HEADS),
    st.lists(st.sampled_from(URL_PIECES), max_size=12).map("".join),
)
def test_parsers_never_show_the_password(head: str, rest: str) -> None:
    """Whatever follows the user info, no parser shows the password.

    Not in its error, the error's chain, nor the repr of what it returns.
    """
    url = head + rest
    for parse in PARSERS:
        try:
            parsed = parse(url)
        except ConfigurationError as exc:
            assert_hidden(exception_texts(exc))
        else:
            assert_hidden([repr(parsed)])
