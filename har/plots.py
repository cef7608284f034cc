"""Figures for runs and reports (matplotlib, headless Agg backend): confusion matrix, learning curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay

from har.atomic import atomic_file


def _save(fig: Any, path: Path) -> Path:
    with atomic_file(path) as fh:
        fig.savefig(fh, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def confusion_matrix_png(matrix: list[list[int]], classes: list[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (recall on the diagonal), counts in the row labels."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = max(5.0, 0.45 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(normalised, display_labels=classes).plot(
        ax=ax, cmap="Blues", values_format=".2f", colorbar=False, xticks_rotation=45
    )
    ax.set_yticks(range(len(classes)), [f"{c} ({int(n)})" for c, n in zip(classes, rows[:, 0], strict=True)])
    ax.set_title(title or "confusion matrix (rows: true class, normalised)")
    return _save(fig, path)


def learning_curves_png(history: list[dict[str, float]], path: Path, title: str = "") -> Path:
    """Training and validation loss, validation accuracy and macro F1 per epoch."""
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train/loss", "val/loss"):
        left.plot(epochs, [row[key] for row in history], marker=".", label=key)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    for key in ("val/accuracy", "val/macro_f1"):
        right.plot(epochs, [row[key] for row in history], marker=".", label=key)
    right.set_xlabel("epoch")
    right.set_ylim(0, 1)
    right.legend()
    fig.suptitle(title or "learning curves")
    return _save(fig, path)
