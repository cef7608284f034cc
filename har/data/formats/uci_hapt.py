"""UCI HAPT ``RawData/``: raw 50 Hz acc (g) + gyro (rad/s) per experiment, with ``labels.txt``.

Reproduces UCI HAR's preprocessing: median filter, low-pass Butterworth (20 Hz, order 3) against noise,
and a 0.3 Hz Butterworth low-pass that separates gravity from body acceleration. Channels:
total_acc, body_acc, body_gyro (x, y, z).
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import signal

from har.data.formats import ReadResult
from har.data.registry import UCI_BASIC, UCI_TRANSITIONS
from har.data.spec import DatasetSpec
from har.data.textio import find_file, read_matrix
from har.data.windows import UNLABELLED, Recording, cut_windows
from har.errors import BadInput

RAW_NAME = re.compile(r"^acc_exp(\d+)_user(\d+)\.txt(\.gz)?$")


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    activities: Literal["basic", "all"] = Field("basic", description="basic: the 6 UCI HAR classes; all: 12")
    median_kernel: int = Field(3, ge=1, description="odd kernel of the median filter (1 = off)")
    lowpass_hz: float = Field(20.0, gt=0)
    lowpass_order: int = Field(3, ge=1)
    gravity_hz: float = Field(0.3, gt=0)
    gravity_order: int = Field(3, ge=1)


def classes(options: Options) -> list[str]:
    return UCI_BASIC if options.activities == "basic" else UCI_BASIC + UCI_TRANSITIONS


def raw_dir(root: Path) -> Path:
    """The folder holding ``labels.txt`` (``RawData/``), wherever the archive put it."""
    hits = sorted(p.parent for p in root.rglob("labels.txt*") if p.name in ("labels.txt", "labels.txt.gz"))
    if not hits:
        raise BadInput(f"{root}: no RawData/labels.txt(.gz) found; is this the UCI HAPT archive?")
    return hits[0]


def preprocess(acc: np.ndarray, gyro: np.ndarray, rate_hz: float, opt: Options) -> np.ndarray:
    """[T, 3] acc and gyro -> [T, 9] total_acc, body_acc, body_gyro (UCI HAR's filters, zero phase)."""
    both = np.concatenate([acc, gyro], axis=1)
    if opt.median_kernel > 1:
        both = signal.medfilt(both, kernel_size=(opt.median_kernel, 1))
    if opt.lowpass_hz < rate_hz / 2:
        noise = signal.butter(opt.lowpass_order, opt.lowpass_hz, fs=rate_hz, output="sos")
        both = signal.sosfiltfilt(noise, both, axis=0)
    total_acc, body_gyro = both[:, :3], both[:, 3:]
    gravity_filter = signal.butter(opt.gravity_order, opt.gravity_hz, fs=rate_hz, output="sos")
    gravity = signal.sosfiltfilt(gravity_filter, total_acc, axis=0)
    return np.concatenate([total_acc, total_acc - gravity, body_gyro], axis=1)


def read_experiment(folder: Path, exp: int, user: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw acc and gyro [T, 3] of one experiment (plain or .gz files)."""

    acc, gyro = (
        read_matrix(find_file(folder, f"{sensor}_exp{exp:02d}_user{user:02d}.txt"), ncols=3)
        for sensor in ("acc", "gyro")
    )
    if len(acc) != len(gyro):
        raise BadInput(f"{folder}: experiment {exp} has {len(acc)} acc but {len(gyro)} gyro samples")
    return acc, gyro


def read_labels(folder: Path) -> np.ndarray:
    """labels.txt rows: experiment, user, activity (1-12), start, end (1-based, inclusive)."""

    labels = read_matrix(find_file(folder, "labels.txt"), ncols=5, dtype=np.int64)
    bad = labels[(labels[:, 2] < 1) | (labels[:, 2] > 12)]
    if len(bad):
        raise BadInput(
            f"{folder / 'labels.txt'}: activity {int(bad[0, 2])} is outside the class list 1-12; "
            "is this UCI HAPT's labels.txt?"
        )
    return labels


def read(root: Path, spec: DatasetSpec, options: Options) -> ReadResult:
    recordings, notes = read_recordings(root, spec, options)
    return ReadResult(cut_windows(recordings, spec.window), classes(options), notes)


def read_recordings(
    root: Path, spec: DatasetSpec, options: Options, users: set[int] | None = None
) -> tuple[list[Recording], dict[str, object]]:
    """Every experiment (of ``users``, default all) as a filtered recording with per-sample labels."""
    folder = raw_dir(root)
    labels = read_labels(folder)
    experiments = sorted({(int(e), int(u)) for e, u in labels[:, :2] if users is None or u in users})
    present = {(int(m[1]), int(m[2])) for p in folder.iterdir() if (m := RAW_NAME.match(p.name))}
    missing = [e for e in experiments if e not in present]
    experiments = [e for e in experiments if e in present]
    if not experiments:
        raise BadInput(f"{folder}: labels.txt names experiments but no acc_expXX_userYY.txt file is present")
    n_classes = 6 if options.activities == "basic" else 12
    with ThreadPoolExecutor(max_workers=4) as pool:
        raw = list(pool.map(lambda eu: read_experiment(folder, *eu), experiments))
    recordings = []
    for (exp, user), (acc, gyro) in zip(experiments, raw, strict=True):
        signals = preprocess(acc, gyro, spec.rate_hz, options)
        per_sample = np.full(len(signals), UNLABELLED, dtype=np.int64)
        rows = labels[labels[:, 0] == exp]
        if rows[:, 4].max() > len(signals):
            raise BadInput(
                f"{folder}/labels.txt: experiment {exp} has a label past its {len(signals)} samples"
            )
        for _, _, activity, start, end in rows:
            if activity <= n_classes:
                per_sample[start - 1 : end] = activity - 1
        recordings.append(Recording(f"exp{exp:02d}_user{user:02d}", user, signals, per_sample))
    notes: dict[str, object] = {"experiments": len(experiments)}
    if missing:
        notes["experiments_missing"] = len(missing)
    return recordings, notes
