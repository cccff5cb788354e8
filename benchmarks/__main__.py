"""Entry point: ``python -m benchmarks``."""

from __future__ import annotations

from benchmarks.cli import main

__all__: list[str] = []

raise SystemExit(main())
