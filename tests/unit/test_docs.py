"""The code in the docs and the README runs.

Every ```python block in ``docs/**/*.md`` and ``README.md`` is executed as a
program in a fresh interpreter, from a temporary working directory, with the
in-memory backends as the defaults; a block whose first line is ``# not-run``
is skipped (for fragments that cannot stand alone, such as a server loop).
On a page containing the comment ``<!-- docs-test: cumulative -->`` (a
step-by-step tutorial), each block runs after all the blocks before it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)
_CUMULATIVE = "<!-- docs-test: cumulative -->"


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        cumulative = _CUMULATIVE in text
        before = ""
        for number, match in enumerate(_BLOCK.finditer(text), start=1):
            code = match.group("code")
            if code.lstrip().startswith("# not-run"):
                continue
            found.append((f"{path.relative_to(ROOT)}#{number}", before + code))
            if cumulative:
                before += code + "\n"
    return found


BLOCKS = _blocks()


def test_docs_have_code_to_run() -> None:
    """The docs contain runnable examples (guards the collector itself)."""
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_docs_code_block_runs(where: str, code: str, tmp_path: Path) -> None:
    """A documented example runs to completion without an error."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ORCHESTRIX_")
    }
    env["ORCHESTRIX_STORE_URL"] = "memory://"
    env["ORCHESTRIX_BUS_URL"] = "memory://"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{where} failed:\n{result.stderr}"
