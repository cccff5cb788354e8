"""Several processes on one SQLite file: ordering, concurrency and the durable bus."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrix import Event, open_bus, open_store

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

pytestmark = pytest.mark.slow

_PREAMBLE = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from dataclasses import dataclass
    from orchestrix import ConcurrencyError, Event, open_bus, open_store

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Tick(Event, type="tests.sqlite.proc.tick"):
        writer: int
        n: int

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Job(Event, type="tests.sqlite.proc.job"):
        n: int

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Done(Event, type="tests.sqlite.proc.done"):
        job_id: str
        pid: int

    url = sys.argv[1]

    def wait_for(path):
        deadline = time.monotonic() + 60
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
    """
)

# Every writer appends COUNT events to the shared stream and COUNT to a small
# set of streams all writers share, always with the expected version it read,
# retrying on ConcurrencyError: optimistic concurrency across processes.
_WRITER = _PREAMBLE + textwrap.dedent(
    """
    async def append_checked(store, stream, event):
        while True:
            version = await store.stream_version(stream)
            try:
                return await store.append(stream, [event], expected_version=version)
            except ConcurrencyError:
                pass

    async def main(writer, count, go):
        wait_for(go)
        async with open_store(url) as store:
            for n in range(count):
                await append_checked(store, "shared", Tick(writer=writer, n=n))
                await append_checked(store, f"many-{n % 5}", Tick(writer=writer, n=n))

    asyncio.run(main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
    """
)

# A competing consumer in group "workers": records each job it handles as a
# Done event in the same file, until the stop file appears.
_CONSUMER = _PREAMBLE + textwrap.dedent(
    """
    async def main(stop, ready):
        async with open_store(url) as store, open_bus(url) as bus:
            async def handle(job):
                await store.append("done", [Done(job_id=job.id, pid=os.getpid())])
            bus.subscribe(Job, handle, group="workers")
            await bus.start()
            open(ready, "w").close()
            while not os.path.exists(stop):
                await asyncio.sleep(0.02)

    asyncio.run(main(sys.argv[2], sys.argv[3]))
    """
)

# Publishes COUNT jobs and exits: the messages must outlive this process.
_PUBLISHER = _PREAMBLE + textwrap.dedent(
    """
    async def main(count):
        async with open_bus(url) as bus:
            for n in range(count):
                await bus.publish(Job(n=n))

    asyncio.run(main(int(sys.argv[2])))
    """
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Job(Event, type="tests.sqlite.proc.job"):
    n: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Done(Event, type="tests.sqlite.proc.done"):
    job_id: str
    pid: int


def _spawn(script: str, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    assert process.returncode == 0, err
    return out


async def _poll(
    predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 60
) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"gave up after {timeout} s waiting for: {what}")


async def test_processes_append_with_expected_versions(tmp_path: Path) -> None:
    """Four processes racing on shared streams leave gap-free, ordered positions."""
    url, go, count, writers = f"sqlite:///{tmp_path}/shared.db", tmp_path / "go", 40, 4
    async with open_store(url):  # create the schema once, as a deployment would
        pass
    processes = [_spawn(_WRITER, url, w, count, go) for w in range(writers)]
    go.touch()
    for process in processes:
        _finish(process)
    async with open_store(url) as store:
        records = [r async for r in store.read_all()]
        shared = [r async for r in store.read("shared")]
    total = writers * count * 2
    assert [r.position for r in records] == list(range(1, total + 1))
    assert len({r.id for r in records}) == total
    assert [r.version for r in shared] == list(range(1, writers * count + 1))
    by_stream: dict[str, list[int]] = {}
    for record in records:
        by_stream.setdefault(record.stream_id, []).append(record.version)
    for versions in by_stream.values():
        assert versions == list(range(1, len(versions) + 1))
    for writer in range(writers):  # each writer's own order is kept
        mine = [
            r.record.data()["n"] for r in shared if r.record.data()["writer"] == writer
        ]
        assert mine == list(range(count))


async def test_competing_consumers_across_processes(tmp_path: Path) -> None:
    """A group shared by two processes handles every message exactly once."""
    url = f"sqlite:///{tmp_path}/bus.db?poll_interval=0.05"
    stop, ready = tmp_path / "stop", tmp_path / "ready"
    other = _spawn(_CONSUMER, url, stop, ready)
    try:

        async def is_ready() -> bool:
            return ready.exists()

        await _poll(is_ready, "consumer ready")
        async with open_store(url) as store, open_bus(url) as bus:

            async def others_done() -> bool:
                pids = [r.record.data()["pid"] async for r in store.read("done")]
                return any(pid != os.getpid() for pid in pids)

            async def handle(job: Job) -> None:
                # Hold the first job until the other process has handled one,
                # so both processes provably take part.
                if job.n == 0:
                    await _poll(others_done, "other process handled a job")
                await store.append("done", [Done(job_id=job.id, pid=os.getpid())])

            bus.subscribe(Job, handle, group="workers")
            await bus.start()
            jobs = [Job(n=n) for n in range(30)]
            for job in jobs:
                await bus.publish(job)

            async def all_done() -> bool:
                return await store.stream_version("done") >= len(jobs)

            await _poll(all_done, "every job handled")
            done = [r.record.data() async for r in store.read("done")]
    finally:
        stop.touch()
        _finish(other)
    handled = Counter(d["job_id"] for d in done)
    assert set(handled) == {job.id for job in jobs}
    assert set(handled.values()) == {1}
    assert {d["pid"] for d in done} == {os.getpid(), other.pid}


async def test_messages_outlive_the_publishing_process(tmp_path: Path) -> None:
    """Messages a finished process published reach a consumer started later."""
    url = f"sqlite:///{tmp_path}/bus.db?poll_interval=0.05"
    seen: list[int] = []

    async def handle(job: Job) -> None:
        seen.append(job.n)

    async with open_bus(url) as bus:  # registers the group, then goes away
        bus.subscribe(Job, handle, group="late")
        await bus.start()
    _finish(_spawn(_PUBLISHER, url, 12))
    async with open_bus(url) as bus:
        bus.subscribe(Job, handle, group="late")
        await bus.start()

        async def all_seen() -> bool:
            return len(seen) >= 12

        await _poll(all_seen, "every job delivered")
    assert sorted(seen) == list(range(12))
