"""A study's outcome per permutation and the files ``dvc repro`` tracks: the best metrics per permutation
(``runs/<study>/metrics.json``) and the winner's plot data (``runs/<study>/plots/``)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from har.atomic import atomic_file
from har.tune.study import StudySpec


# -- the driver ---------------------------------------------------------------------------------
@dataclass
class PermutationOutcome:
    permutation: str
    parent_run: str
    trials: int
    failed: int
    best_trial: str = ""
    model: str = ""
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    registered: str = ""
    version: str = ""
    champion: str = ""
    decision: str = ""
    tied: bool = False  # registered version scored the same as the champion, which stays
    pareto: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0
    trial_seconds: float = 0.0


def write_plot_data(
    folder: Path, perm: str, history: list[dict[str, Any]], test: dict[str, Any], classes: list[str]
) -> None:
    """DVC plots of a permutation's winner: loss and validation scores per epoch, and one
    (actual, predicted) row per test window for DVC's confusion template (dvc.yaml ``plots:``)."""

    def write(sub: str, header: list[str], rows: list[list[Any]]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        (folder / sub).mkdir(parents=True, exist_ok=True)
        with atomic_file(folder / sub / f"{perm}.csv", "w") as fh:
            fh.write(text.getvalue())

    write(
        "loss",
        ["epoch", "train_loss", "val_loss"],
        [[r["epoch"], r["train/loss"], r["val/loss"]] for r in history],
    )
    write(
        "scores",
        ["epoch", "val_accuracy", "val_macro_f1"],
        [[r["epoch"], r["val/accuracy"], r["val/macro_f1"]] for r in history],
    )
    matrix = test["confusion_matrix"]
    write(
        "confusion",
        ["actual", "predicted"],
        [
            [classes[i], classes[j]]
            for i, row in enumerate(matrix)
            for j, n in enumerate(row)
            for _ in range(int(n))
        ],
    )


def write_metrics(path: Path, study: StudySpec, study_run: str, outcomes: list[PermutationOutcome]) -> None:
    """The study's best metrics per permutation (a DVC metrics file)."""

    body = {
        "study": study.name,
        "study_run": study_run,
        "dataset": study.dataset,
        "metric": study.metric,
        "permutations": {
            o.permutation: {
                "model": o.model,
                "best_trial": o.best_trial,
                **o.val,
                **o.test,
                "registered": f"{o.registered}/{o.version}" if o.registered else "",
                "champion_version": o.champion,
                "trials": o.trials,
                "failed_trials": o.failed,
                "wall_seconds": round(o.wall_seconds, 1),
                "trial_seconds": round(o.trial_seconds, 1),
                **({"pareto": o.pareto} if o.pareto else {}),
            }
            for o in outcomes
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as fh:
        fh.write(json.dumps(body, indent=2, default=float) + "\n")
