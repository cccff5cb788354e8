"""mkdocs hook: publish the ADRs and the changelog, which live outside docs/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

__all__ = ["on_files"]

ROOT = Path(__file__).resolve().parents[2]
_TITLE = re.compile(r"^# (?P<title>.+)$", re.MULTILINE)


def on_files(files: Files, config: Any) -> Files:
    """Add ``adr/*.md`` under ``adr/`` with an index, and CHANGELOG.md as a page."""
    rows = []
    paths = sorted((ROOT / "adr").glob("[0-9][0-9][0-9][0-9]-*.md"))
    for path in paths:
        text = path.read_text(encoding="utf-8")
        files.append(File.generated(config, f"adr/{path.name}", content=text))
        match = _TITLE.search(text)
        title = match.group("title") if match else path.stem
        rows.append(f"- [{title}]({path.name})")
    numbers = {int(path.name[:4]) for path in paths}
    unused = [f"{n:04d}" for n in range(1, max(numbers, default=0)) if n not in numbers]
    gaps = (
        f"\nNo record carries the numbers {', '.join(unused)}: they were reserved"
        " for drafts that were merged into other records before acceptance, and"
        " numbers are never reused.\n"
        if unused
        else ""
    )
    index = (
        "# Architecture decision records\n\n"
        "Each record states one decision, its context, the options weighed and"
        " the consequences.\nRecords are never renumbered; a changed decision"
        " gets a new record.\n\n" + "\n".join(rows) + "\n" + gaps
    )
    files.append(File.generated(config, "adr/index.md", content=index))
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "changelog.md", content=changelog))
    return files
