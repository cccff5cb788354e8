"""Smoke run of every benchmark workload on tiny sizes: correctness, never speed.

Each workload checks its own outcome (events stored, versions contiguous,
balances, decoded sums) and records an error instead of a figure when the
outcome is wrong, so these tests fail on a broken contender or workload. No
test looks at a timing.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import pytest

import orchestrix._codec_check
from benchmarks.cli import ALL_WORKLOADS, build_groups
from benchmarks.codecs import CODEC_WORKLOADS, sample_event
from benchmarks.harness import Group, Sample, run_groups, summarise
from benchmarks.registry import Entry
from benchmarks.report import (
    DOCS_END,
    DOCS_START,
    render_markdown,
    update_docs_page,
    write_results,
)
from benchmarks.settings import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, Settings
from benchmarks.sizes import SMOKE
from benchmarks.workloads import Result
from orchestrix.codec import encode

if TYPE_CHECKING:
    from pathlib import Path

__all__: list[str] = []

HAVE_EVENTSOURCING = importlib.util.find_spec("eventsourcing") is not None
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
LIBRARIES = ["orchestrix", "raw", "raw-sqlite3"] + (
    ["eventsourcing"] if HAVE_EVENTSOURCING else []
)


async def _smoke(backend: str, settings: Settings) -> list[Sample]:
    workloads = [w for w in ALL_WORKLOADS if w not in CODEC_WORKLOADS]
    groups = build_groups(workloads, [backend], LIBRARIES, settings, SMOKE)
    return await run_groups(groups, repetitions=1, log=lambda _: None)


def _assert_complete(samples: list[Sample], backend: str) -> None:
    failures = [f"{s.metric} {s.library}: {s.error}" for s in samples if s.error]
    assert not failures, "\n".join(failures)
    measured = {(s.metric, s.library) for s in samples}
    for metric in ("W1", "W2", "W3", "W3s", "W4", "W5", "B1", "B2 p50", "B2 p99"):
        assert (metric, "orchestrix") in measured, f"{metric} orchestrix/{backend}"
    for metric in ("W1", "W2", "W3", "W3s", "W4", "W5"):
        assert (metric, "raw") in measured, f"{metric} raw/{backend}"
        if HAVE_EVENTSOURCING and backend != "redis":
            assert (metric, "eventsourcing") in measured
    assert all(s.value is not None and s.value > 0 for s in samples)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


async def test_memory_workloads(workdir: Path) -> None:
    """Every workload runs and verifies itself on the in-memory contenders."""
    settings = Settings(DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, workdir)
    _assert_complete(await _smoke("memory", settings), "memory")


async def test_sqlite_workloads(workdir: Path) -> None:
    """Every workload runs on SQLite and leaves no database file behind."""
    settings = Settings(DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, workdir)
    samples = await _smoke("sqlite", settings)
    _assert_complete(samples, "sqlite")
    assert {s.library for s in samples} >= {"orchestrix", "raw", "raw-sqlite3"}
    assert list(workdir.iterdir()) == []


@pytest.mark.postgres
async def test_postgres_workloads(workdir: Path, postgres_url: str) -> None:
    """Every workload runs on PostgreSQL and drops every schema it created."""
    import asyncpg

    async def schemas() -> set[str]:
        conn = await asyncpg.connect(postgres_url)
        try:
            rows = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'"
            )
        finally:
            await conn.close()
        return {r[0] for r in rows}

    settings = Settings(postgres_url, DEFAULT_REDIS_URL, workdir)
    # Another benchmark run may share the server: compare before and after.
    before = await schemas()
    samples = await _smoke("postgres", settings)
    _assert_complete(samples, "postgres")
    assert await schemas() - before == set()


@pytest.mark.redis
async def test_redis_workloads(workdir: Path, redis_url: str) -> None:
    """Every workload runs on Redis and deletes every key it created."""
    import redis.asyncio as aioredis

    async def keys() -> set[bytes]:
        client: Any = aioredis.Redis.from_url(redis_url)
        try:
            return {k async for k in client.scan_iter(match="*bench_*", count=1000)}
        finally:
            await client.aclose()

    settings = Settings(DEFAULT_POSTGRES_URL, redis_url, workdir)
    # Another benchmark run may share the server: compare before and after.
    before = await keys()
    samples = await _smoke("redis", settings)
    _assert_complete(samples, "redis")
    assert await keys() - before == set()


async def test_codec_workloads(workdir: Path) -> None:
    """C1 and C2 round-trip their sample events through every codec contender.

    C2's event (20 small dicts and a tuple) takes the codec's fast path, so
    the smoke run also proves the read-back check accepts it.
    """
    settings = Settings(DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, workdir)
    groups = build_groups(list(CODEC_WORKLOADS), ["memory"], LIBRARIES, settings, SMOKE)
    samples = await run_groups(groups, repetitions=1, log=lambda _: None)
    assert [s.error for s in samples if s.error] == []
    measured = {(s.metric, s.library) for s in samples}
    es = {"eventsourcing"} if HAVE_EVENTSOURCING else set()
    assert measured == {("C1", library) for library in {"orchestrix", "raw"} | es} | {
        ("C2", "orchestrix"),
        ("C2", "raw"),
    }
    assert all(s.value is not None and s.value > 0 for s in samples)
    event = sample_event("C2")
    encode(event)
    assert orchestrix._codec_check.simple_checks[type(event)](event)


def _fake_group(order: list[str], values: dict[str, list[float]]) -> Group:
    entries = tuple(Entry(lib, "memory", "unused:Unused") for lib in values)
    calls = dict.fromkeys(values, 0)

    async def measure(entry: Entry) -> dict[str, Result]:
        order.append(entry.library)
        value = values[entry.library][calls[entry.library]]
        calls[entry.library] += 1
        return {"W1": Result(value)}

    return Group("W1", "memory", entries, measure)


async def test_contenders_rotate_and_ratios_pair_repetitions() -> None:
    """The first contender changes each repetition; ratios pair equal repetitions."""
    order: list[str] = []
    values = {"orchestrix": [10.0, 40.0, 90.0], "raw": [20.0, 40.0, 30.0]}
    samples = await run_groups(
        [_fake_group(order, values)], repetitions=3, log=lambda _: None
    )
    assert order == ["orchestrix", "raw", "raw", "orchestrix", "orchestrix", "raw"]
    (ratio,) = summarise(samples)["ratios"]
    # Per repetition: 0.5, 1.0, 3.0; a ratio of medians would be 40 / 30.
    assert (ratio["median"], ratio["min"], ratio["max"]) == (1.0, 0.5, 3.0)
    assert ratio["n"] == 3


async def test_failing_contender_is_reported_not_measured() -> None:
    """A contender that raises yields an error sample and the others still run."""
    entries = (Entry("orchestrix", "memory", "x:y"), Entry("raw", "memory", "x:y"))

    async def measure(entry: Entry) -> dict[str, Result]:
        if entry.library == "raw":
            msg = "boom"
            raise RuntimeError(msg)
        return {"W1": Result(1.0)}

    samples = await run_groups(
        [Group("W1", "memory", entries, measure)], repetitions=1, log=lambda _: None
    )
    summary = summarise(samples)
    assert [f["library"] for f in summary["failures"]] == ["raw"]
    assert [f["library"] for f in summary["figures"]] == ["orchestrix"]


def test_bad_sizes_are_rejected() -> None:
    """A snapshot beyond the stream or a ragged batch size is refused up front."""
    with pytest.raises(ValueError, match="w3_snapshot_at"):
        SMOKE.with_overrides({"w3_snapshot_at": SMOKE.w3_events + 1})
    with pytest.raises(ValueError, match="multiple of w2_batch"):
        SMOKE.with_overrides({"w2_events": 101, "w2_batch": 20})


async def test_results_are_written(tmp_path: Path) -> None:
    """The JSON, the Markdown table with its targets, and the chart are written."""
    order: list[str] = []
    values = {"orchestrix": [1.0, 2.0], "raw": [2.0, 2.0]}
    samples = await run_groups([_fake_group(order, values)], 2, lambda _: None)
    document = {
        "started": "2026-11-22T00:00:00+00:00",
        "seconds": 1.0,
        "note": "",
        "repetitions": 2,
        "smoke": True,
        "sizes": {},
        "environment": {
            "machine": {
                "cpu": "cpu",
                "cpus": 2,
                "memory_gib": 1.0,
                "platform": "linux",
                "load_average_at_start": [0.0, 0.0, 0.0],
            },
            "python": "3.11",
            "packages": {"orchestrix": "0"},
            "sqlite": "3",
            "servers": {"postgres": None, "redis": None},
        },
        "samples": [],
        "summary": summarise(samples),
    }
    text = render_markdown(document)
    assert "| W1 | memory | orchestrix / raw | 0.75 | 0.50 - 1.00 |" in text
    assert "| W1 | memory | orchestrix (events/s) | >= 100000 |" in text
    paths = write_results(document, tmp_path / "out")
    names = {p.name for p in paths}
    assert {"results.json", "results.md"} <= names
    assert ("chart.png" in names) == HAVE_MATPLOTLIB


async def test_docs_page_block_is_replaced(tmp_path: Path) -> None:
    """Only the text between the markers changes; a page without them is refused."""
    order: list[str] = []
    values = {"orchestrix": [1.0], "raw": [2.0]}
    samples = await run_groups([_fake_group(order, values)], 1, lambda _: None)
    document = {
        "started": "2026-11-22T00:00:00+00:00",
        "seconds": 1.0,
        "repetitions": 1,
        "note": "quiet machine",
        "environment": {
            "machine": {"cpu": "cpu", "cpus": 2, "other_processes_cpu": []},
            "python": "3.11",
            "sqlite": "3",
            "servers": {"postgres": "15", "redis": "7"},
        },
        "summary": summarise(samples),
    }
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\nbefore\n{DOCS_START}\nold\n{DOCS_END}\nafter\n")
    update_docs_page(document, page)
    text = page.read_text()
    assert text.startswith("# Performance\n\nbefore\n")
    assert text.endswith(f"{DOCS_END}\nafter\n")
    assert "old" not in text
    assert "| W1 | memory | events/s | 1.00 (1.00-1.00) | 2.00 (2.00-2.00) |" in text
    assert "quiet machine" in text
    page.write_text("# Performance\n")
    with pytest.raises(ValueError, match="needs the lines"):
        update_docs_page(document, page)
