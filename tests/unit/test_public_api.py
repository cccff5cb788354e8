"""The public API: exactly the names in ``orchestrix.__all__``, all importable."""

from __future__ import annotations

import importlib
import pkgutil

import orchestrix


def _isort_key(name: str) -> tuple[int, str]:
    """Constants first, then classes, then functions (ruff's RUF022 order)."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_unique() -> None:
    """``__all__`` is one sorted list without repeats, so changes show in review."""
    assert orchestrix.__all__ == sorted(set(orchestrix.__all__), key=_isort_key)


def test_all_names_exist() -> None:
    """Every name in ``__all__`` is importable from ``orchestrix``."""
    missing = [name for name in orchestrix.__all__ if not hasattr(orchestrix, name)]
    assert missing == []


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of ``orchestrix`` (besides modules) is in ``__all__``."""
    public = {
        name
        for name, value in vars(orchestrix).items()
        if not name.startswith("_") and not isinstance(value, type(orchestrix))
    } - {"annotations"}
    assert public == set(orchestrix.__all__)


def test_every_module_declares_all() -> None:
    """Every module of the package declares ``__all__`` naming existing objects."""
    for info in pkgutil.walk_packages(orchestrix.__path__, "orchestrix."):
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"


def test_core_imports_no_driver() -> None:
    """Importing orchestrix loads none of the optional drivers."""
    import subprocess
    import sys

    code = (
        "import sys, orchestrix, orchestrix.backends;"
        "bad = {'asyncpg', 'aiosqlite', 'redis'} & set(sys.modules);"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_configures_no_logging() -> None:
    """Importing orchestrix adds no handler to any logger."""
    import subprocess
    import sys

    code = (
        "import logging, orchestrix, orchestrix.testing;"
        "loggers = [logging.getLogger()] + [l for l in logging.Logger.manager."
        "loggerDict.values() if isinstance(l, logging.Logger)];"
        "assert not any(l.handlers for l in loggers)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
