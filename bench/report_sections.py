"""What the benchmarks write: their results JSON (atomically: a temp file renamed over the target). The
markdown of docs/results.md and docs/models.md is rendered from that JSON by docs/render.py only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from har.atomic import atomic_file


def render_docs() -> None:
    """Re-render docs/results.md and docs/models.md from the JSON records (docs/render.py, the one renderer)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "docs" / "render.py"
    spec = importlib.util.spec_from_file_location("docs_render", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([])


def save_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON; an interrupted benchmark never leaves a half-written file."""
    with atomic_file(path, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
