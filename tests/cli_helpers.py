"""Run the installed ``har`` console script as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "COLUMNS": "200",
    }


def har(*args: str, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "har"), *args],
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error message, asserting it is a single line on stderr."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {proc.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def sample_project(root: Path, dataset: str = "uci_hapt_sample") -> Path:
    """A scratch project in ``root``: params.yaml, the bundled sample, ``dataset`` fetched and prepared."""
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "sample", root / "sample")
    for step in ("fetch", "prepare"):
        proc = har("data", step, dataset, cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root
