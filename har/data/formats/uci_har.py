"""UCI HAR v1.0 ``UCI HAR Dataset/``: pre-cut 128-sample windows in ``{train,test}/Inertial Signals``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from har.data.formats import ReadResult
from har.data.registry import UCI_CHANNELS
from har.data.spec import DatasetSpec
from har.data.textio import find_file, read_bytes, read_matrix
from har.data.windows import Windows
from har.errors import BadInput

WINDOW = 128


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


def dataset_dir(root: Path) -> Path:
    """The folder holding ``activity_labels.txt`` and ``train/``, wherever the archive put it."""
    for candidate in sorted(root.rglob("activity_labels.txt*")):
        if (candidate.parent / "train").is_dir():
            return candidate.parent
    raise BadInput(f"{root}: no 'UCI HAR Dataset' folder (activity_labels.txt + train/) found")


def read_classes(folder: Path) -> list[str]:
    table = read_bytes(find_file(folder, "activity_labels.txt")).decode().split()
    return table[1::2]


def read_split(folder: Path, split: str, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    part = folder / split
    y = read_matrix(find_file(part, f"y_{split}.txt"), ncols=1, dtype=np.int64)[:, 0]
    subject = read_matrix(find_file(part, f"subject_{split}.txt"), ncols=1, dtype=np.int64)[:, 0]
    if len(y) != len(subject):
        raise BadInput(f"{part}: y_{split}.txt has {len(y)} rows but subject_{split}.txt {len(subject)}")
    bad = (y < 1) | (y > n_classes)
    if bad.any():
        raise BadInput(
            f"{part / f'y_{split}.txt'}: label {int(y[bad][0])} is outside the class list 1-{n_classes} "
            "(activity_labels.txt)"
        )
    signals = []
    for channel in UCI_CHANNELS:
        path = find_file(part / "Inertial Signals", f"{channel}_{split}.txt")
        values = read_matrix(path, ncols=WINDOW, dtype=np.float32)
        if len(values) != len(y):
            raise BadInput(f"{path}: {len(values)} windows but y_{split}.txt has {len(y)}")
        signals.append(values)
    return np.stack(signals, axis=-1), y - 1, subject


def read(root: Path, spec: DatasetSpec, options: Options) -> ReadResult:
    if (spec.window.size, spec.window.step) != (WINDOW, WINDOW // 2):
        raise BadInput(
            f"datasets.{spec.name}.window: UCI HAR is published as 128-sample windows with 50% overlap; "
            "remove the override (use uci_hapt to re-window the raw signals)"
        )
    folder = dataset_dir(root)
    classes = read_classes(folder)
    parts = [read_split(folder, split, len(classes)) for split in ("train", "test")]
    X = np.concatenate([p[0] for p in parts])
    windows = Windows(
        X=X,
        y=np.concatenate([p[1] for p in parts]),
        subject=np.concatenate([p[2] for p in parts]).astype(np.int32),
        test=np.concatenate([np.zeros(len(parts[0][1]), bool), np.ones(len(parts[1][1]), bool)]),
    )
    return ReadResult(windows, classes, {"windows_train": len(parts[0][1]), "windows_test": len(parts[1][1])})
