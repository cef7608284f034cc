"""The DVC pipeline in a temporary git repo: repro, no-op repro, and a param change re-runs only dependents."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import yaml

from tests.cli_helpers import BIN, REPO, env


def run(*args: str, cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def dvc(*args: str, cwd: Path) -> str:
    return run(str(BIN / "dvc"), *args, cwd=cwd)


def ran(output: str) -> set[str]:
    """Stages that DVC executed in a repro run."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def test_dvc_repro_and_param_change(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, repo / name)
    for folder in ("har", "sample"):
        shutil.copytree(REPO / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    run("git", "init", "-q", cwd=repo)
    run("git", "config", "user.email", "ci@example.invalid", cwd=repo)
    run("git", "config", "user.name", "ci", cwd=repo)
    dvc("init", "-q", cwd=repo)
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-qm", "project", cwd=repo)

    first = dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    assert ran(first) == {"fetch@uci_hapt_sample", "prepare@uci_hapt_sample"}
    x_before = np.load(repo / "data/prepared/uci_hapt_sample/X.npy", mmap_mode="r").shape

    again = dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    assert ran(again) == set()

    # another dataset's parameter does not touch this dataset's stages
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"]["watch"]["window"]["step"] = 25
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "up to date" in dvc("status", "prepare@uci_hapt_sample", cwd=repo)

    # this dataset's window step: prepare re-runs, fetch does not
    params["datasets"]["uci_hapt_sample"]["window"]["step"] = 32
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    assert ran(changed) == {"prepare@uci_hapt_sample"}
    x_after = np.load(repo / "data/prepared/uci_hapt_sample/X.npy", mmap_mode="r").shape
    assert x_after[0] > 1.8 * x_before[0]  # half the step, about twice the windows
