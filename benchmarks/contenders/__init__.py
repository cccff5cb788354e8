"""Contenders: one class per (library, backend) pair doing every workload."""

from __future__ import annotations

__all__: list[str] = []
