"""docs/results.md is shared by several benchmarks: each owns one section between HTML comment markers
and rewrites only that section (atomically), so one benchmark's report never erases another's."""

from __future__ import annotations

import re
from pathlib import Path

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
