"""The Redis backend across server crashes, restarts and lost connections.

Each test starts its own throwaway ``redis-server`` (append-only file with
``appendfsync always``, a password) on a free port and kills it with SIGKILL,
so nothing here touches the shared server.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from orchestrix import BackendUnavailable, Event, open_store
from orchestrix.backends.redis import RedisEventStore, RedisMessageBus
from orchestrix.testing._support import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "s3cret-Pa55word"  # noqa: S105 -- a throwaway test server's password

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Noted(Event, type="tests.redis_faults.Noted"):
    """An event for these tests."""

    number: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A throwaway redis-server that can be killed and started again on one dir."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, with the password."""
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                "--requirepass",
                PASSWORD,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        msg = f"redis-server did not start on port {self.port}"
        raise RuntimeError(msg)

    def kill(self) -> None:
        """Kill the server with SIGKILL: no shutdown, no final save."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A running throwaway server, killed after the test."""
    server = Server(tmp_path)
    server.start()
    yield server
    server.kill()


async def _read_numbers(store: RedisEventStore, stream_id: str) -> list[int]:
    return [r.event.number async for r in store.read(stream_id)]  # type: ignore[attr-defined]  # Noted events only


async def test_acknowledged_appends_survive_a_crash(server: Server) -> None:
    """Every acknowledged append is there after SIGKILL and a restart (AOF always)."""
    store = await RedisEventStore.open(server.url, prefix="crash")
    for number in range(20):
        await store.append("s", [Noted(number=number)], expected_version=number)
    server.kill()
    server.start()
    async with await RedisEventStore.open(server.url, prefix="crash") as reopened:
        assert await _read_numbers(reopened, "s") == list(range(20))
        assert [r.position async for r in reopened.read_all()] == list(range(1, 21))
    await store.close()


async def test_store_reconnects_by_itself(server: Server) -> None:
    """A store whose server restarted keeps working without being reopened."""
    store = await RedisEventStore.open(server.url, prefix="reconnect")
    await store.append("s", [Noted(number=1)])
    server.kill()
    server.start()
    result = await store.append("s", [Noted(number=2)], expected_version=1)
    assert result.version == 2
    assert await _read_numbers(store, "s") == [1, 2]
    await store.close()


async def test_append_waits_out_a_short_outage(server: Server) -> None:
    """An append issued while the server is down succeeds once it is back."""
    store = await RedisEventStore.open(server.url, prefix="outage")
    await store.append("s", [Noted(number=1)])
    server.kill()

    async def restart_soon() -> None:
        await asyncio.sleep(0.3)
        server.start()

    restarting = asyncio.create_task(restart_soon())
    result = await store.append("s", [Noted(number=2)], expected_version=1)
    await restarting
    assert result.version == 2
    assert await _read_numbers(store, "s") == [1, 2]
    await store.close()


async def test_unreachable_server_error_is_clear_and_hides_the_password(
    server: Server,
) -> None:
    """A server that stays down gives `BackendUnavailable` naming it, no password."""
    store = await RedisEventStore.open(server.url, prefix="down", retries=2)
    server.kill()
    with pytest.raises(BackendUnavailable) as caught:
        await store.append("s", [Noted(number=1)])
    text = "".join(traceback.format_exception(caught.value))
    assert f"127.0.0.1:{server.port}" in str(caught.value)
    assert "***" in str(caught.value)
    assert PASSWORD not in text
    assert PASSWORD not in repr(store)
    await store.close()


async def test_open_on_a_dead_port_hides_the_password() -> None:
    """Opening a store on a port nobody listens to fails clearly, no password."""
    url = f"redis://user:{PASSWORD}@127.0.0.1:{_free_port()}/0"
    with pytest.raises(BackendUnavailable) as caught:
        await open_store(url + "?retries=1")
    assert PASSWORD not in "".join(traceback.format_exception(caught.value))
    assert "user:***@" in str(caught.value)


async def test_wrong_password_is_reported_without_it(server: Server) -> None:
    """A wrong password is named as a credentials problem, and not printed."""
    url = f"redis://:wrong-{PASSWORD}@127.0.0.1:{server.port}/0"
    with pytest.raises(BackendUnavailable, match="credentials") as caught:
        await RedisEventStore.open(url, retries=0)
    assert f"wrong-{PASSWORD}" not in "".join(traceback.format_exception(caught.value))


async def test_bus_delivers_across_a_restart(server: Server) -> None:
    """Messages published before a crash reach a running consumer after the restart."""
    received: list[int] = []

    async def handler(message: Noted) -> None:
        received.append(message.number)

    publisher = await RedisMessageBus.open(server.url, prefix="bus", poll_interval=0.05)
    consumer = await RedisMessageBus.open(server.url, prefix="bus", poll_interval=0.05)
    consumer.subscribe(Noted, handler, group="g")
    await consumer.start()
    await publisher.publish(Noted(number=1))
    await wait_until(lambda: received == [1], "the first message arrived")
    await consumer.close()

    await publisher.publish(Noted(number=2))
    server.kill()
    server.start()
    restarted = await RedisMessageBus.open(server.url, prefix="bus", poll_interval=0.05)
    restarted.subscribe(Noted, handler, group="g")
    await restarted.start()
    await wait_until(lambda: received == [1, 2], "the message survived the crash")
    server.kill()
    server.start()
    await publisher.publish(Noted(number=3))
    await wait_until(lambda: received == [1, 2, 3], "the consumer reconnected")
    await restarted.close()
    await publisher.close()
