"""Leave-subjects-out cross-validation: one model per fold, scored on subjects it never saw.

Two uses, two pools of subjects:

- ``pool="train"`` (``har cv --folds K``): the training subjects are split into K seeded groups; the
  official test subjects are never used. An estimate over every training subject, for comparing
  configurations without spending the test split (a 4-subject validation split is a noisy judge).
- ``pool="all"`` (``har cv --declared-folds``): the dataset's declared folds over every subject, the
  leave-subjects-out protocol some HAR papers report (MyoGym, the watch exercise set).

Inside each fold the usual protocol holds: validation subjects carved from the fold's training subjects
choose the epoch; the fold's held-out subjects are evaluated once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from har.data.prepared import load_prepared
from har.errors import BadInput
from har.metrics import softmax
from har.train.data import load_train_data
from har.train.dataset import TrainData
from har.train.images import is_image_folder
from har.train.loop import evaluate, predict_logits
from har.train.run import RunResult, RunSpec, run


def subject_folds(subjects: list[int], k: int, seed: int = 0) -> list[list[int]]:
    """``k`` disjoint groups of ``subjects`` covering them all, sizes differing by at most one (seeded)."""
    if k < 2 or k > len(subjects):
        raise BadInput(
            f"--folds {k}: choose between 2 and the number of subjects in the pool ({len(subjects)})"
        )
    order = np.random.default_rng(seed).permutation(sorted(subjects))
    return [sorted(int(s) for s in group) for group in np.array_split(order, k)]


def plan_folds(
    prepared_dir: Path, dataset: str, k: int | None, declared: bool, seed: int = 0
) -> tuple[list[list[int]], str]:
    """The folds to run and their pool: ``k`` seeded folds of the training subjects, or the declared ones."""
    folder = prepared_dir / dataset
    if not (folder / "meta.json").is_file():
        raise BadInput(f"{folder}: not prepared; run 'har data prepare {dataset}'")

    if is_image_folder(folder):
        raise BadInput(f"{dataset}: cross-validation needs subjects; an image dataset has none")
    data = load_prepared(folder)
    if declared == (k is not None):
        raise BadInput("give either --folds K (training subjects) or --declared-folds (the dataset's folds)")
    if declared:
        folds = data.meta["split"].get("folds") or []
        if not folds:
            raise BadInput(f"{dataset}: declares no folds (meta.json split.folds); use --folds K instead")
        return [sorted(int(s) for s in f) for f in folds], "all"
    train_subjects = sorted(int(s) for s in np.unique(data.subject[~data.test]))
    return subject_folds(train_subjects, k, seed), "train"


@dataclasses.dataclass
class FoldResult:
    held_out: list[int]
    val_subjects: list[int]
    best_epoch: int
    epochs: int
    windows: int
    accuracy: float
    macro_f1: float
    val_accuracy: float
    adapted_accuracy: float | None = None  # the same model, BatchNorm adapted per held-out subject
    adapted_macro_f1: float | None = None


def cross_validate(
    spec: RunSpec,
    folds: list[list[int]],
    pool: str,
    prepared_dir: Path,
    on_fold: Callable[[int, FoldResult], None] | None = None,
    report: Callable[[int, dict[str, float]], None] | None = None,
    first: TrainData | None = None,
    adapt: bool = False,
    on_model: Callable[[int, RunResult], None] | None = None,
) -> list[FoldResult]:
    """Train ``spec`` once per fold; each fold's held-out subjects are evaluated once. ``first``: the first
    fold's data when the caller has loaded it already (to check the input before training). ``adapt``:
    the same model is also scored with its BatchNorm statistics adapted on each held-out subject's
    windows (har.train.adapt), a paired comparison: same weights, same windows. ``on_model``: called with each
    fold's trained model and data (its ``test`` split holds the held-out subjects), e.g. to keep their
    class probabilities."""
    results = []
    for i, held_out in enumerate(folds):
        data = first if i == 0 and first is not None else load_train_data(
            prepared_dir, spec.dataset, spec.sensors, spec.val_fraction, spec.split_seed, held_out=held_out,
            pool=pool,
        )  # fmt: skip
        result: RunResult = run(spec, prepared_dir, data=data, report=report)
        assert result.test is not None
        adapted = None
        if adapt:
            adapted = evaluate(
                result.model, *data.splits["test"], data.classes, "test/", groups=data.subjects["test"]
            )
        fold = FoldResult(
            held_out=held_out,
            val_subjects=data.val_subjects,
            best_epoch=result.fit.best_epoch,
            epochs=len(result.fit.history),
            windows=len(data.splits["test"][1]),
            accuracy=result.test["test/accuracy"],
            macro_f1=result.test["test/macro_f1"],
            val_accuracy=result.val["val/accuracy"],
            adapted_accuracy=adapted["test/accuracy"] if adapted else None,
            adapted_macro_f1=adapted["test/macro_f1"] if adapted else None,
        )
        results.append(fold)
        if on_model:
            on_model(i, result)
        if on_fold:
            on_fold(i, fold)
    return results


def summary(folds: list[FoldResult]) -> dict[str, Any]:
    """Mean +- std over folds, and the accuracy pooled over every held-out window."""
    acc = np.array([f.accuracy for f in folds])
    f1 = np.array([f.macro_f1 for f in folds])
    windows = np.array([f.windows for f in folds])
    out = {
        "folds": len(folds),
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": float(acc.std()),
        "macro_f1_mean": float(f1.mean()),
        "macro_f1_std": float(f1.std()),
        "pooled_accuracy": float((acc * windows).sum() / windows.sum()),
    }
    if folds and all(f.adapted_accuracy is not None for f in folds):
        adapted = np.array([f.adapted_accuracy for f in folds])
        adapted_f1 = np.array([f.adapted_macro_f1 for f in folds])
        out |= {
            "adapted_accuracy_mean": float(adapted.mean()),
            "adapted_accuracy_std": float(adapted.std()),
            "adapted_macro_f1_mean": float(adapted_f1.mean()),
            "adapted_pooled_accuracy": float((adapted * windows).sum() / windows.sum()),
        }
    return out


class HeldOutProbs:
    """Collects each fold's held-out class probabilities (``on_model`` of :func:`cross_validate`) for an
    ensemble scored afterwards on exactly the same windows (``har.train.ensemble``)."""

    def __init__(self) -> None:
        self.parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.classes: list[str] = []

    def __call__(self, fold: int, result: RunResult) -> None:

        X, y = result.data.splits["test"]
        self.classes = result.data.classes
        probs = softmax(predict_logits(result.model, X)).astype(np.float32)
        self.parts.append((fold, probs, np.asarray(y), result.data.subjects["test"]))

    def arrays(self) -> dict[str, np.ndarray]:
        """``probs`` [N, K], ``labels``, ``subjects`` and ``fold`` of every held-out window, and ``classes``."""
        return {
            "probs": np.concatenate([p for _, p, _, _ in self.parts]),
            "labels": np.concatenate([y for _, _, y, _ in self.parts]),
            "subjects": np.concatenate([s for *_, s in self.parts]),
            "fold": np.concatenate([np.full(len(y), i) for i, _, y, _ in self.parts]),
            "classes": np.array(self.classes),
        }
