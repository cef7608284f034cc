"""Denser training windows for the benchmarks: a dataset prepared with ``window.train_step``.

The project's params.yaml is copied with ``datasets.<name>.window.train_step`` set and
``data.prepared_dir`` pointing at ``data/prepared-train_step<N>/``, so the dense copy sits beside the
usual one and `har train` / `har cv` reach it with ``--params``. Validation, test and held-out windows
are the step grid's, identical to the usual copy's; only the training windows are denser.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def label(model: str, train_step: int | None) -> str:
    """How a benchmark names a model trained on denser windows."""
    return model if train_step is None else f"{model} + train_step {train_step}"


def folder(train_step: int) -> Path:
    return ROOT / "data" / f"prepared-train_step{train_step}"


def params_file(dataset: str, train_step: int) -> Path:
    """A copy of params.yaml (under runs/) with the denser windows and their own prepared folder."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["prepared_dir"] = str(folder(train_step).relative_to(ROOT))
    params["datasets"][dataset].setdefault("window", {})["train_step"] = train_step
    path = ROOT / "runs" / f"params-{dataset}-train_step{train_step}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def prepared(dataset: str, train_step: int) -> Path:
    """The dense copy's prepared folder root, prepared first if it is missing."""
    params = params_file(dataset, train_step)
    if not (folder(train_step) / dataset / "meta.json").is_file():
        har = str(Path(sys.executable).parent / "har")
        subprocess.run([har, "data", "prepare", dataset, "--params", str(params)], check=True, cwd=ROOT,
                       env={**os.environ})  # fmt: skip
    return folder(train_step)
