"""What the benchmarks write: docs/results.md is shared by several benchmarks, each owning one section
between HTML comment markers and rewriting only that section, so one benchmark's report never erases
another's; results JSON files. Both are written atomically (a temp file renamed over the target)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from har.atomic import atomic_file


def write_section(path: Path, name: str, markdown: str) -> None:
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = path.read_text() if path.is_file() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{block}\n".lstrip()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")


def save_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON; an interrupted benchmark never leaves a half-written file."""
    with atomic_file(path, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
