"""Backends; reached through `orchestrix.open_store` and `orchestrix.open_bus`."""

__all__: list[str] = []
