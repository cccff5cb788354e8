"""Shared parts of the Redis backend: URL options, the client, keys and errors.

The driver (``redis.asyncio``) is imported only when a client is made, so
``import orchestrix`` never needs it. Every key is built by `RedisKeys`, which
percent-encodes user names (stream ids, groups, type names) so that no name can
reach into another key, and wraps the prefix in a hash tag so that all keys of
one prefix share one Redis Cluster slot (ADR 0021).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import re
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlunsplit

from orchestrix._utils import AsyncResource, redact_url, split_url
from orchestrix.backends._front_bus import BUS_OPTIONS, parse_bus_options
from orchestrix.config import builtin_schemes
from orchestrix.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailable,
    ConfigurationError,
    MissingDependencyError,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from types import ModuleType, TracebackType

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_URL",
    "LuaScript",
    "RedisErrors",
    "RedisKeys",
    "RedisResource",
    "decode_name",
    "encode_name",
    "float_option",
    "int_option",
]

#: Key prefix used when the URL names none.
DEFAULT_PREFIX: Final = "orchestrix"
DEFAULT_RETRIES: Final = 8
DEFAULT_SOCKET_TIMEOUT: Final = 10.0
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
_PREFIX: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
# Query parameters redis-py itself understands, passed through to it.
_DRIVER_OPTIONS: Final = frozenset(
    {
        "db",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "retry_on_timeout",
        "max_connections",
        "health_check_interval",
        "client_name",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_check_hostname",
        "ssl_min_version",
    }
)

_log = logging.getLogger("orchestrix.redis.connection")
_checked_servers: set[str] = set()

#: Where a store connects when no URL is given.
DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"


def _driver(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        package = "redis"
        raise MissingDependencyError(package, extra=package) from exc


def encode_name(name: str) -> str:
    """Return *name* percent-encoded: only ``A-Z a-z 0-9 _ . - ~`` stay as is.

    The encoding is injective and its output holds no ``:``, ``{`` or ``}``, so
    a user name can neither collide with nor escape into another key.
    """
    return quote(name, safe="")


def decode_name(encoded: bytes | str) -> str:
    """Return the name `encode_name` turned into *encoded*."""
    text = encoded.decode() if isinstance(encoded, bytes) else encoded
    return unquote(text, errors="strict")


class RedisKeys:
    """Every key of one prefix; the only place keys are built.

    Attributes:
        prefix: The key prefix, without the hash-tag braces.
    """

    __slots__ = (
        "bus_dead_index",
        "bus_dead_letters",
        "bus_errors",
        "bus_groups",
        "bus_queue",
        "bus_seen",
        "bus_type",
        "checkpoints",
        "ids",
        "log",
        "prefix",
        "snapshot",
        "stream",
    )

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        base = "{" + prefix + "}:"
        #: The global log: hash from position to stored event (ADR 0028).
        self.log = base + "log"
        #: Hash: event id -> global position.
        self.ids = base + "ids"
        #: Key prefixes, each followed by an encoded name.
        self.stream = base + "s:"
        self.snapshot = base + "snap:"
        self.bus_type = base + "bus:type:"
        self.bus_queue = base + "bus:q:"
        self.bus_dead_letters = base + "bus:dlq:"
        self.bus_dead_index = base + "bus:dlx:"
        self.bus_errors = base + "bus:err:"
        self.bus_seen = base + "bus:seen:"
        #: Set of every registered (encoded) group.
        self.bus_groups = base + "bus:groups"
        #: Hash: checkpoint name -> position, as decimal text.
        self.checkpoints = base + "checkpoints"

    def stream_key(self, stream_id: str) -> str:
        """Return the key of a stream's list of event positions."""
        return self.stream + encode_name(stream_id)

    def snapshot_key(self, stream_id: str) -> str:
        """Return the key of a stream's snapshot."""
        return self.snapshot + encode_name(stream_id)


class LuaScript:
    """A Lua script run by its SHA1 digest, loaded into the server when missing.

    Calls ``EVALSHA`` through the client's ``execute_command`` directly: redis-py's
    own script objects add a tuple copy, an import and an isinstance check to
    every call, which shows on small appends.
    """

    __slots__ = ("_client", "_no_script", "script", "sha")

    def __init__(self, client: Any, script: str) -> None:
        self.script = script
        self.sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        self._client = client
        self._no_script: type[Exception] = _driver("redis.exceptions").NoScriptError

    async def __call__(self, keys: tuple[str, ...], *args: object) -> Any:
        """Run the script with *keys* and *args*; return its raw reply."""
        execute = self._client.execute_command
        try:
            return await execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except self._no_script:
            await self.load()
            return await execute("EVALSHA", self.sha, len(keys), *keys, *args)

    async def load(self) -> None:
        """Load the script into the server (after a restart or ``SCRIPT FLUSH``)."""
        self.sha = await self._client.script_load(self.script)


class RedisErrors:
    """Context manager turning driver errors into orchestrix errors, in one place.

    Messages name the server by its URL with the password masked, and any
    password text a driver message might carry is masked too.
    """

    __slots__ = ("_exceptions", "_password", "where")

    def __init__(self, where: str, password: str | None) -> None:
        self.where = where
        self._password = password
        self._exceptions = _driver("redis.exceptions")

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, self._exceptions.RedisError):
            raise self.translate(exc) from exc

    def translate(self, exc: BaseException) -> BackendError:
        """Return the orchestrix error for driver error *exc*."""
        errors = self._exceptions
        text = str(exc) or type(exc).__name__
        if self._password:
            # As written in the URL, and as redis-py decoded and sent it.
            for password in (self._password, unquote(self._password)):
                text = text.replace(password, "***")
        where = self.where
        if isinstance(exc, errors.AuthenticationError | errors.AuthorizationError):
            return BackendUnavailable(
                f"Redis at {where} refused the credentials: {text}; check the user "
                f"and password in the URL"
            )
        if isinstance(exc, errors.ConnectionError):
            return BackendUnavailable(
                f"Redis at {where} is unreachable after retrying: {text}"
            )
        if isinstance(exc, errors.TimeoutError):
            return BackendTimeoutError(
                f"Redis at {where} did not answer in time: {text}; raise "
                f"socket_timeout in the URL if the server is just slow"
            )
        if isinstance(exc, errors.OutOfMemoryError):
            return BackendError(
                f"Redis at {where} is out of memory and refused the write (nothing "
                f"was written): {text}; raise maxmemory or free memory"
            )
        if isinstance(exc, errors.ReadOnlyError):
            return BackendError(
                f"Redis at {where} is a read-only replica: {text}; point the URL "
                f"at the primary"
            )
        return BackendError(f"Redis at {where} failed: {text}")


def _text(name: str, value: object) -> str:
    if isinstance(value, str):
        return value
    msg = f"option {name} must be a string, got {value!r}"
    raise ConfigurationError(msg)


def int_option(name: str, value: object, minimum: int) -> int:
    """Return option *value* (an int or its text) as an int >= *minimum*."""
    number: object = value
    if isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        msg = f"option {name} must be an integer >= {minimum}, got {value!r}"
        raise ConfigurationError(msg)
    return number


def float_option(name: str, value: object) -> float:
    """Return option *value* (a number or its text) as a finite float > 0."""
    number: object = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or not math.isfinite(number)
        or number <= 0
    ):
        msg = f"option {name} must be a number of seconds > 0, got {value!r}"
        raise ConfigurationError(msg)
    return float(number)


class RedisResource(AsyncResource):
    """Base of the Redis store, snapshot store and bus: client, keys and errors.

    The URL's query may hold orchestrix's own options (`OPTIONS`), which are
    taken out, and redis-py's connection options, which are passed through;
    keyword options given to the constructor win over the URL's. Every class
    accepts every orchestrix option and uses those it knows, so one URL can
    open the store, the snapshot store and the bus.
    """

    OPTIONS: ClassVar[tuple[str, ...]] = (
        "prefix",
        "retries",
        "page_size",
        "visibility_timeout",
        "max_attempts",
        "poll_interval",
        "concurrency",
        "dedup_window",
    )

    def __init__(self, url: str, options: Mapping[str, object]) -> None:
        base_url, found, password = _split_url(url, self.OPTIONS)
        merged: dict[str, object] = dict(found)
        merged.update({k: v for k, v in options.items() if v is not None})
        self._options = merged
        # Every Redis resource checks the bus options of its URL, so a bad one
        # fails the same way whichever of store, snapshots or bus opens it.
        parse_bus_options({k: v for k, v in merged.items() if k in BUS_OPTIONS})
        self._where = redact_url(base_url)
        prefix = _text("prefix", merged.get("prefix", DEFAULT_PREFIX))
        if not _PREFIX.fullmatch(prefix):
            msg = (
                f"option prefix must be 1 to 100 characters from A-Z a-z 0-9 _ . : -, "
                f"got {prefix!r}"
            )
            raise ConfigurationError(msg)
        self.keys = RedisKeys(prefix)
        self._errors = RedisErrors(self._where, password)
        retries = int_option("retries", merged.get("retries", DEFAULT_RETRIES), 0)
        self.socket_timeout = float_option(
            "socket_timeout", found.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
        )
        # Any: the installed redis-py and the separate types-redis stubs
        # disagree on the client's type (generic or not, with aclose or not).
        self._client: Any = _make_client(base_url, retries, self._where)

    def option(self, name: str, default: object) -> object:
        """Return option *name* from the keywords or the URL, else *default*."""
        return self._options.get(name, default)

    async def _connect(self) -> None:
        """Check the server answers (raise `BackendUnavailable` if not)."""
        try:
            with self._errors:
                await self._client.ping()
        except BaseException:
            await self._client.aclose()
            raise

    async def _warn_about_server(self) -> None:
        """Log once per server when its settings can lose stored events."""
        if self._where in _checked_servers:
            return
        _checked_servers.add(self._where)
        errors = _driver("redis.exceptions")
        try:
            persistence = await self._client.info("persistence")
            memory = await self._client.info("memory")
        except errors.ResponseError:  # INFO may be denied by an ACL
            return
        if not int(persistence.get("aof_enabled", 0)):
            _log.warning(
                "Redis at %s runs without the append-only file (appendonly no): "
                "a crash loses recently acknowledged events; set appendonly yes "
                "and appendfsync everysec or always",
                self._where,
            )
        policy = str(memory.get("maxmemory_policy", "noeviction"))
        if policy != "noeviction":
            _log.warning(
                "Redis at %s has maxmemory-policy %s: it may evict stored events "
                "under memory pressure; set maxmemory-policy noeviction",
                self._where,
                policy,
            )

    async def close(self) -> None:
        """Release the connections; later calls are no-ops.

        A script already sent runs whole on the server (Redis runs scripts
        atomically); see `EventStore.close` for reads in progress.
        """
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r}, prefix={self.keys.prefix!r})"


def _split_url(
    url: object, names: Collection[str]
) -> tuple[str, dict[str, str], str | None]:
    """Return the URL for redis-py, orchestrix's options from it, and the password."""
    if not isinstance(url, str):
        msg = f"a Redis URL must be a str, got {type(url).__name__}"
        raise ConfigurationError(msg)
    parts = split_url(
        url,
        kind="Redis",
        schemes=builtin_schemes("orchestrix.backends.redis"),
        usage="use redis://host:port/db or rediss:// for TLS",
    )
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in seen:
            msg = f"option {key!r} is given twice in Redis URL {redact_url(url)!r}"
            raise ConfigurationError(msg)
        seen.add(key)
        if key in names:
            ours[key] = value
        elif key in _DRIVER_OPTIONS:
            if key.startswith("ssl_") and parts.scheme != "rediss":
                # redis-py would take it, then fail with a TypeError at the
                # first connection: TLS options belong to rediss:// URLs.
                msg = (
                    f"option {key!r} in Redis URL {redact_url(url)!r} configures "
                    f"TLS, which needs a rediss:// URL"
                )
                raise ConfigurationError(msg)
            theirs.append((key, value))
            if key == "socket_timeout":
                ours[key] = value
        else:
            known = ", ".join(sorted({*names, *_DRIVER_OPTIONS}))
            msg = (
                f"unknown option {key!r} in Redis URL {redact_url(url)!r}; "
                f"known: {known}"
            )
            raise ConfigurationError(msg)
    _check_database(parts.path, dict(theirs).get("db"), redact_url(url))
    base = urlunsplit(parts._replace(query=urlencode(theirs), fragment=""))
    return base, ours, parts.password


def _check_database(path: str, option: str | None, shown: str) -> None:
    """Refuse a database that is no integer >= 0, or one given twice.

    redis-py itself reads ``/abc`` as database 0 and ``/1/2`` as 12.
    """
    in_path = unquote(path).removeprefix("/")
    if in_path and option is not None:
        msg = (
            f"Redis URL {shown!r} gives the database twice, in the path and as "
            f"?db=; give it once"
        )
        raise ConfigurationError(msg)
    text = in_path if option is None else option
    if (in_path or option is not None) and not (text.isascii() and text.isdigit()):
        msg = (
            f"the database in Redis URL {shown!r} must be an integer >= 0, got {text!r}"
        )
        raise ConfigurationError(msg)


def _make_client(url: str, retries: int, where: str) -> Any:
    asyncio_redis = _driver("redis.asyncio")
    backoff = _driver("redis.backoff")
    retry = _driver("redis.asyncio.retry")
    kwargs: dict[str, Any] = {}
    if "socket_timeout=" not in url:
        kwargs["socket_timeout"] = DEFAULT_SOCKET_TIMEOUT
    if "socket_connect_timeout=" not in url:
        kwargs["socket_connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    try:
        return asyncio_redis.Redis.from_url(
            url,
            retry=retry.Retry(
                backoff.ExponentialWithJitterBackoff(cap=1.0, base=0.05), retries
            ),
            decode_responses=False,
            **kwargs,
        )
    except (ValueError, TypeError) as exc:
        msg = f"not a valid Redis URL: {where!r} ({exc})"
        raise ConfigurationError(msg) from exc
