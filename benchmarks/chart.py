"""The chart: each contender's speed relative to the raw driver, per backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.report import HIGHER_IS_BETTER, METRIC_ORDER, find_row, summary_rows

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["render_chart"]


def render_chart(document: dict[str, Any], path: Path) -> None:
    """Draw each contender's speed relative to the raw driver, per backend, as a PNG."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    ratios = summary_rows(document, "ratios")
    backends = [
        b
        for b in ("memory", "sqlite", "postgres", "redis")
        if any(r["backend"] == b for r in ratios)
    ]
    if not backends:
        return
    columns = min(2, len(backends))
    rows = -(-len(backends) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(6.0 * columns, 3.6 * rows + 0.6),
        sharey=True,
        squeeze=False,
    )
    for ax in axes.flat[len(backends) :]:
        ax.set_visible(False)
    colours = {"orchestrix": "#1f77b4", "eventsourcing": "#ff7f0e"}
    for ax, backend in zip(axes.flat, backends, strict=False):
        metrics = [
            m
            for m in METRIC_ORDER
            if m != "B2 p99"
            and any(
                r["backend"] == backend and r["metric"] == m and r["versus"] == "raw"
                for r in ratios
            )
        ]
        for offset, library in ((-0.2, "orchestrix"), (0.2, "eventsourcing")):
            xs, ys, lo, hi = [], [], [], []
            for i, metric in enumerate(metrics):
                row = find_row(
                    ratios,
                    metric=metric,
                    backend=backend,
                    library=library,
                    versus="raw",
                )
                if row is None:
                    continue
                # Speed relative to raw: a rate ratio as is, a time ratio inverted.
                invert = metric not in HIGHER_IS_BETTER
                med, a, b = row["median"], row["min"], row["max"]
                if invert:
                    med, a, b = 1 / med, 1 / b, 1 / a
                xs.append(i + offset)
                ys.append(med)
                lo.append(med - a)
                hi.append(b - med)
            if xs:
                ax.bar(
                    xs,
                    ys,
                    width=0.4,
                    color=colours[library],
                    label=library,
                    yerr=[lo, hi],
                    capsize=3,
                )
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(metrics)), metrics)
        ax.set_yscale("log")
        ax.set_title(backend)
        ax.grid(axis="y", alpha=0.3)
    for row in axes:
        row[0].set_ylabel("speed vs raw driver (1 = raw)")
    axes[0][0].legend(loc="lower left", fontsize="small")
    fig.suptitle(
        f"Speed relative to the raw driver (higher is faster; times inverted), "
        f"median and range of {document['repetitions']} repetitions, "
        f"{document['started'][:10]}",
        fontsize="medium",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
