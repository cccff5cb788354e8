"""Side-by-side benchmarks of orchestrix, the raw drivers and ``eventsourcing``.

Run ``python -m benchmarks --help``; see ``benchmarks/README.md``.
"""

from __future__ import annotations

__all__: list[str] = []
