"""Command line: ``python -m benchmarks [--smoke] [--repetitions N] ...``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
import tempfile
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Group, run_groups, summarise
from benchmarks.registry import (
    BACKENDS,
    BUS_CONTENDERS,
    CODEC_CONTENDERS,
    STORE_CONTENDERS,
)
from benchmarks.settings import Settings
from benchmarks.sizes import DEFAULT, SMOKE, Sizes
from benchmarks.workloads import STORE_WORKLOADS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from benchmarks.registry import Entry
    from benchmarks.workloads import Result

__all__ = ["ALL_WORKLOADS", "build_groups", "main", "parse_args", "run"]

BUS_WORKLOADS = ("B1", "B2")
ALL_WORKLOADS = (*STORE_WORKLOADS, *BUS_WORKLOADS, "C1", "C2")
LIBRARIES = ("orchestrix", "raw", "raw-sqlite3", "eventsourcing")


def _csv(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad:
            msg = f"unknown {', '.join(bad)}; choose from {', '.join(choices)}"
            raise argparse.ArgumentTypeError(msg)
        return items

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Measure orchestrix side by side with the raw drivers and the "
            "eventsourcing library."
        ),
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repetition")
    parser.add_argument("--repetitions", "-r", type=int, help="default 5 (smoke: 1)")
    parser.add_argument(
        "--workloads",
        type=_csv(ALL_WORKLOADS),
        default=list(ALL_WORKLOADS),
        help=f"comma-separated subset of {','.join(ALL_WORKLOADS)}",
    )
    parser.add_argument(
        "--backends",
        type=_csv(BACKENDS),
        default=list(BACKENDS),
        help=f"comma-separated subset of {','.join(BACKENDS)}",
    )
    parser.add_argument(
        "--libraries",
        type=_csv(LIBRARIES),
        default=list(LIBRARIES),
        help=f"comma-separated subset of {','.join(LIBRARIES)}",
    )
    parser.add_argument("--output", "-o", type=Path, help="write results here")
    parser.add_argument("--chart", type=Path, help="also write the chart PNG here")
    parser.add_argument("--note", default="", help="free text stored with the results")
    parser.add_argument(
        "--docs-page",
        type=Path,
        help="rewrite the generated results block of this Markdown page",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help=(
            "profile every measurement of the chosen libraries with pyinstrument "
            "and write one text report per measurement here (slows them down: "
            "do not publish figures from a profiled run)"
        ),
    )
    parser.add_argument(
        "--profile-libraries",
        type=_csv(LIBRARIES),
        default=["orchestrix"],
        help="libraries to profile with --profile (default orchestrix)",
    )
    parser.add_argument("--quiet", "-q", action="store_true")
    for f in fields(Sizes):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=float if isinstance(f.default, float) else int,
            help=f"default {f.default}",
        )
    args = parser.parse_args(argv)
    if args.repetitions is not None and args.repetitions < 1:
        parser.error(f"--repetitions must be at least 1, got {args.repetitions}")
    try:
        (SMOKE if args.smoke else DEFAULT).with_overrides(vars(args))
    except ValueError as exc:
        parser.error(str(exc))
    return args


def _store_measure(
    workload: str, settings: Settings, sizes: Sizes
) -> Callable[[Entry], Any]:
    run = STORE_WORKLOADS[workload].run

    async def measure(entry: Entry) -> dict[str, Result]:
        contender = entry.load()(settings)
        await contender.open()
        try:
            return {workload: await run(contender, sizes)}
        finally:
            await contender.close()

    return measure


def build_groups(
    workloads: Sequence[str],
    backends: Sequence[str],
    libraries: Sequence[str],
    settings: Settings,
    sizes: Sizes,
) -> list[Group]:
    """Return the groups of a run, in the order they run in each repetition."""
    groups: list[Group] = []

    def pick(table: tuple[Entry, ...], backend: str) -> tuple[Entry, ...]:
        return tuple(
            e for e in table if e.backend == backend and e.library in libraries
        )

    for workload in workloads:
        if workload in STORE_WORKLOADS:
            for backend in backends:
                entries = pick(STORE_CONTENDERS, backend)
                measure = _store_measure(workload, settings, sizes)
                groups.append(Group(workload, backend, entries, measure))
        elif workload in BUS_WORKLOADS:
            from benchmarks.buses import measure as bus_measure

            for backend in backends:
                entries = pick(BUS_CONTENDERS, backend)
                measure = bus_measure(workload, backend, settings, sizes)
                groups.append(Group(workload, backend, entries, measure))
        else:
            from benchmarks.codecs import CODEC_WORKLOADS
            from benchmarks.codecs import measure as codec_measure

            entries = tuple(
                e
                for e in pick(CODEC_CONTENDERS, "codec")
                if e.library in CODEC_WORKLOADS[workload]
            )
            measure = codec_measure(workload, sizes)
            groups.append(Group(workload, "codec", entries, measure))
    return [g for g in groups if g.entries]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmarks *args* select and return the full results document."""
    from benchmarks.report import cpu_times, environment

    base = SMOKE if args.smoke else DEFAULT
    sizes = base.with_overrides(vars(args))
    repetitions = args.repetitions or (1 if args.smoke else 5)
    log: Callable[[str], None] = (lambda _: None) if args.quiet else _print
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="orchestrix-bench-") as workdir:
        settings = Settings.from_env(Path(workdir))
        groups = build_groups(
            args.workloads, args.backends, args.libraries, settings, sizes
        )
        if args.profile is not None:
            groups = [
                _profiled(g, args.profile, args.profile_libraries) for g in groups
            ]
        env = await environment(settings)
        cpu_before = cpu_times()
        samples = await run_groups(groups, repetitions, log)
    finished = datetime.now(UTC)
    from benchmarks.report import busy_processes, load_average

    env["machine"]["load_average_at_end"] = load_average()
    env["machine"]["other_processes_cpu"] = busy_processes(
        cpu_before, (finished - started).total_seconds()
    )
    return {
        "started": started.isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 1),
        "note": args.note,
        "repetitions": repetitions,
        "smoke": bool(args.smoke),
        "sizes": {f.name: getattr(sizes, f.name) for f in fields(Sizes)},
        "environment": env,
        "samples": [dataclasses.asdict(s) for s in samples],
        "summary": summarise(samples),
    }


def _profiled(group: Group, directory: Path, libraries: Sequence[str]) -> Group:
    """Return *group* with the measurements of *libraries* run under pyinstrument."""
    from pyinstrument import Profiler

    directory.mkdir(parents=True, exist_ok=True)
    measure = group.measure
    counter = [0]

    async def profiled(entry: Entry) -> dict[str, Result]:
        if entry.library not in libraries:
            return await measure(entry)
        counter[0] += 1
        profiler = Profiler(interval=0.0005, async_mode="enabled")
        profiler.start()
        try:
            return await measure(entry)
        finally:
            profiler.stop()
            name = f"{group.workload}-{group.backend}-{entry.library}-{counter[0]}.txt"
            (directory / name).write_text(
                profiler.output_text(unicode=True, color=False, show_all=False)
            )

    return dataclasses.replace(group, measure=profiled)


def _print(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    document = asyncio.run(run(args))
    from benchmarks.report import render_markdown, write_results

    print(render_markdown(document))
    if args.output is not None:
        paths = write_results(document, args.output, chart=args.chart)
        for path in paths:
            print(f"wrote {path}", file=sys.stderr)
    if args.docs_page is not None:
        from benchmarks.report import update_docs_page

        update_docs_page(document, args.docs_page)
        print(f"updated {args.docs_page}", file=sys.stderr)
    return (
        1 if document["summary"]["failures"] and not _only_unavailable(document) else 0
    )


def _only_unavailable(document: dict[str, Any]) -> bool:
    return all(
        all(e.startswith("unavailable") for e in f["errors"])
        for f in document["summary"]["failures"]
    )
