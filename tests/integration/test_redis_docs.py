"""The Redis how-to's examples run against the test server.

The general docs test skips them (they start with ``# not-run: needs a Redis
server``) because it runs without servers; here they run for real.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.redis

HOW_TO = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "redis.md"
_MARK = "# not-run: needs a Redis server\n"
_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)
BLOCKS = [
    m.group("code")
    for m in _BLOCK.finditer(HOW_TO.read_text(encoding="utf-8"))
    if m.group("code").startswith(_MARK)
]


def test_the_how_to_has_redis_examples() -> None:
    """The how-to holds at least one example marked as needing Redis."""
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_redis_example_runs(code: str, redis_url: str, tmp_path: Path) -> None:
    """A Redis example of the how-to runs to completion against the test server."""
    parts = urlsplit(redis_url)
    code = code.replace("127.0.0.1:6379/0", parts.netloc + (parts.path or "/0"))
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
