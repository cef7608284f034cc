"""Figures for runs and reports (matplotlib, headless Agg backend): confusion matrix, learning curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

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


def permutation_bars_png(
    scores: dict[str, dict[str, tuple[float, float]]], path: Path, title: str = "", ylabel: str = "test score"
) -> Path:
    """Grouped bars, one group per sensor permutation, one bar per metric: mean with a std whisker."""
    perms = list(scores)
    metrics = sorted({m for per in scores.values() for m in per})
    width = 0.8 / max(1, len(metrics))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(perms) + 2), 4))
    x = np.arange(len(perms))
    for i, metric in enumerate(metrics):
        means = [scores[p].get(metric, (np.nan, 0.0))[0] for p in perms]
        stds = [scores[p].get(metric, (np.nan, 0.0))[1] for p in perms]
        whiskers = stds if any(sd > 0 for sd in stds) else None  # one study run each: nothing to show
        bars = ax.bar(
            x + (i - (len(metrics) - 1) / 2) * width, means, width, yerr=whiskers, capsize=3, label=metric
        )
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.set_xticks(x, perms)
    ax.set_xlabel("sensor permutation")
    ax.set_ylabel(ylabel)
    low = np.nanmin([v[0] for per in scores.values() for v in per.values()] or [0.0])
    ax.set_ylim(max(0.0, min(0.9, low) - 0.1), 1.02)
    ax.legend(loc="upper left", ncols=len(metrics), fontsize=8)
    ax.set_title(title or "which sensors matter")
    return _save(fig, path)


def pareto_png(
    points: dict[str, list[tuple[float, float]]],
    path: Path,
    metric: str = "val/macro_f1",
    title: str = "",
    xlabel: str = "inference latency per window (ms, batch 1, 1 CPU thread)",
) -> Path:
    """Every trial as (cost, score), one colour per permutation; the Pareto front of each as a step line
    (lower cost and higher score are better)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for perm, pts in points.items():
        if not pts:
            continue
        xs, ys = np.asarray(pts, dtype=float).T
        dots = ax.scatter(xs, ys, s=18, alpha=0.55, label=f"{perm} (trials)")
        front_x, front_y, best = [], [], -np.inf
        for cost, score in sorted(pts):
            if score > best:
                front_x.append(cost)
                front_y.append(score)
                best = score
        ax.step(front_x, front_y, where="post", color=dots.get_facecolor()[0], alpha=1.0, linewidth=1.8,
                label=f"{perm} (Pareto front)")  # fmt: skip
    costs = [x for pts in points.values() for x, _ in pts]
    if costs and min(costs) > 0 and max(costs) / min(costs) > 10:  # a log axis only over a wide range
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or f"{metric} vs inference latency")
    return _save(fig, path)
