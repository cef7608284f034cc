"""Classification metrics (scikit-learn): accuracy, macro / weighted F1, per-class scores, confusion;
class probabilities from logits (scipy)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], prefix: str = ""
) -> dict[str, Any]:
    """Scalar metrics under ``<prefix>accuracy`` etc., plus per-class scores and the confusion matrix."""
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        f"{prefix}accuracy": float(accuracy_score(y_true, y_pred)),
        f"{prefix}macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        f"{prefix}weighted_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """Only the scalar entries (for logging and tables)."""
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities [N, K] (float64) of logits [N, K]."""
    return scipy.special.softmax(logits.astype(np.float64), axis=1)
