"""Continuous recordings -> labelled sliding windows, and normalisation fitted on training data only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from har.data.spec import WindowSpec
from har.errors import BadInput

UNLABELLED = -1


@dataclass
class Recording:
    """One continuous recording of one subject: ``signals`` [T, C], per-sample class index ``labels`` [T]."""

    name: str
    subject: int
    signals: np.ndarray
    labels: np.ndarray
    test: bool | None = None  # set where the split is by recording (Opportunity), not by subject


@dataclass
class Windows:
    """Windows ``X`` [N, T, C] float32 with class index ``y``, ``subject`` and, if known, a test flag.

    ``extra`` (only with ``WindowSpec.train_step``) flags the windows between the step grid's: training
    material only, never scored."""

    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    test: np.ndarray | None = None
    extra: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)


def runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, end (exclusive) and value of each run of equal consecutive labels."""
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(labels)]))
    return starts, ends, labels[starts]


def window_starts(labels: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """Start index and label of every window of a recording, following ``spec.label``."""
    n = len(labels)
    if n < spec.size:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if spec.label == "segment":
        starts_all, labels_all = [], []
        for start, end, value in zip(*runs(labels), strict=True):
            if value == UNLABELLED or end - start < spec.size:
                continue
            s = np.arange(start, end - spec.size + 1, spec.step, dtype=np.int64)
            starts_all.append(s)
            labels_all.append(np.full(len(s), value, dtype=np.int64))
        if not starts_all:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.concatenate(starts_all), np.concatenate(labels_all)
    starts = np.arange(0, n - spec.size + 1, spec.step, dtype=np.int64)
    if spec.label == "last":
        y = labels[starts + spec.size - 1].astype(np.int64)
    else:  # majority
        # counts of each label per window from cumulative one-hot sums (labels shifted so -1 -> 0)
        shifted = labels.astype(np.int64) - UNLABELLED
        onehot = np.zeros((n + 1, int(shifted.max()) + 1), dtype=np.int32)
        onehot[np.arange(1, n + 1), shifted] = 1
        cum = onehot.cumsum(axis=0)
        counts = cum[starts + spec.size] - cum[starts]
        y = counts.argmax(axis=1).astype(np.int64) + UNLABELLED
    keep = y != UNLABELLED
    return starts[keep], y[keep]


def training_window_starts(labels: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, label and extra flag of every window, including the denser ``train_step`` ones.

    Without ``train_step`` this is :func:`window_starts` with no extra window. With it, the windows
    every ``train_step`` samples are cut by the same label rule; since ``train_step`` divides ``step``,
    the step grid's windows are among them and exactly the others are flagged extra."""
    grid, grid_y = window_starts(labels, spec)
    if spec.train_step is None or spec.train_step == spec.step:
        return grid, grid_y, np.zeros(len(grid), dtype=bool)
    dense, dense_y = window_starts(labels, spec.model_copy(update={"step": spec.train_step}))
    return dense, dense_y, ~np.isin(dense, grid)


def cut_windows(recordings: Sequence[Recording], spec: WindowSpec) -> Windows:
    """Cut every recording into windows; windows never cross recordings."""
    xs, ys, subjects, tests, extras = [], [], [], [], []
    for rec in recordings:
        starts, y, extra = training_window_starts(rec.labels, spec)
        if len(starts) == 0:
            continue
        extras.append(extra)
        view = sliding_window_view(rec.signals, spec.size, axis=0)  # [T-size+1, C, size]
        xs.append(np.ascontiguousarray(view[starts].transpose(0, 2, 1), dtype=np.float32))
        ys.append(y)
        subjects.append(np.full(len(y), rec.subject, dtype=np.int32))
        tests.append(np.full(len(y), bool(rec.test)))
    if not xs:
        raise BadInput(
            f"no window of {spec.size} samples fits in any labelled segment; lower window.size in params.yaml"
        )
    has_run_split = any(rec.test is not None for rec in recordings)
    return Windows(
        X=np.concatenate(xs),
        y=np.concatenate(ys),
        subject=np.concatenate(subjects),
        test=np.concatenate(tests) if has_run_split else None,
        extra=np.concatenate(extras) if spec.train_step is not None else None,
    )


def fit_normalisation(X: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over the training windows only (std floored to avoid division by 0)."""
    if not train.any():
        raise BadInput("the split leaves no training window; check split.test_subjects in params.yaml")
    flat = X[train].reshape(-1, X.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    return mean, np.where(std < 1e-8, 1.0, std)


def fill_gaps(
    signals: np.ndarray, channels: Sequence[str], source: str, nan_only: str = "error"
) -> tuple[np.ndarray, list[str]]:
    """Linearly interpolate NaN gaps per channel (edges take the nearest value).

    A channel that is NaN from start to end is an error naming ``source`` and the channel, or, with
    ``nan_only="zero"`` (the published Opportunity preprocessing), filled with zeros and reported.
    """
    nan = np.isnan(signals)
    if not nan.any():
        return signals, []
    empty = [channels[i] for i in np.flatnonzero(nan.all(axis=0))]
    if empty and nan_only == "error":
        raise BadInput(
            f"{source}: channel {empty[0]!r} has no value at all ({len(empty)} such channel(s)); "
            "remove the channel or fix the recording"
        )

    filled = pd.DataFrame(signals).interpolate(limit_direction="both").fillna(0.0).to_numpy()
    return filled, empty
