"""MyoGym ``MyoGym.mat``: ``raw_data`` [N, 17] and ``raw_data_labels`` [N, 2], MATLAB v5 or v7.3 (HDF5).

raw_data columns (1-based): 1, 10, 14 timestamps (ms); 2-9 EMG; 11-13 accelerometer; 15-17 gyroscope.
raw_data_labels: column 1 exercise 1-30 or 99 (NULL), column 2 person 1-10. 50 Hz.
"""

from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.io import loadmat

from har.data.formats import ReadResult
from har.data.spec import DatasetSpec
from har.data.textio import read_bytes
from har.data.windows import Recording, cut_windows, fill_gaps, runs
from har.errors import BadInput

SIGNAL_COLUMNS = [*range(1, 9), 10, 11, 12, 14, 15, 16]  # 0-based: EMG, acc, gyro
NULL_LABEL = 99
N_EXERCISES = 30


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


def find(root: Path) -> Path:
    hits = sorted(p for p in root.rglob("*.mat*") if p.name.endswith((".mat", ".mat.gz")))
    if not hits:
        raise BadInput(f"{root}: no MyoGym.mat found; run 'har data fetch myogym' or fix the mirror")
    return hits[0]


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(source: Path | io.BytesIO) -> bool:
    """HDF5 files (MATLAB v7.3) carry the signature at offset 0 or after a 512, 1024, 2048 byte user block."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(2056)
    else:
        head = source.getvalue()[:2056]
    return any(head[o : o + 8] == HDF5_SIGNATURE for o in (0, 512, 1024, 2048))


def load_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``raw_data`` and ``raw_data_labels`` as [N, 17] and [N, 2] arrays, from MATLAB v5 or v7.3 files."""

    source = io.BytesIO(read_bytes(path)) if path.suffix == ".gz" else path
    try:
        if is_hdf5(source):  # v7.3: HDF5 stores MATLAB's column-major matrices transposed
            with h5py.File(source, "r") as f:
                missing = [k for k in ("raw_data", "raw_data_labels") if k not in f]
                if missing:
                    raise BadInput(f"{path}: variable {missing[0]!r} not found; is this MyoGym.mat?")
                data, labels = np.asarray(f["raw_data"]).T, np.asarray(f["raw_data_labels"]).T
        else:
            mat = loadmat(source, variable_names=["raw_data", "raw_data_labels"])
            missing = [k for k in ("raw_data", "raw_data_labels") if k not in mat]
            if missing:
                raise BadInput(f"{path}: variable {missing[0]!r} not found; is this MyoGym.mat?")
            data, labels = mat["raw_data"], mat["raw_data_labels"]
    except (OSError, ValueError, TypeError) as exc:
        raise BadInput(f"{path}: unreadable MATLAB file ({exc}); fetch it again") from exc
    if data.ndim != 2 or data.shape[1] != 17:
        raise BadInput(f"{path}: raw_data has shape {data.shape}, expected [N, 17] columns")
    if labels.ndim != 2 or labels.shape[1] != 2 or len(labels) != len(data):
        raise BadInput(f"{path}: raw_data_labels has shape {labels.shape}, expected [{len(data)}, 2]")
    return data, labels.astype(np.int64)


def read(root: Path, spec: DatasetSpec, options: Options) -> ReadResult:
    path = find(root)
    data, labels = load_mat(path)
    exercise, person = labels[:, 0], labels[:, 1]
    valid = ((exercise >= 1) & (exercise <= N_EXERCISES)) | (exercise == NULL_LABEL)
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        raise BadInput(
            f"{path}: raw_data_labels row {row + 1} has exercise {int(exercise[row])}, outside 1-30 and 99 (NULL)"
        )
    classes_idx = np.where(exercise == NULL_LABEL, 0, exercise)
    signals, _ = fill_gaps(data[:, SIGNAL_COLUMNS].astype(np.float64), spec.channels, str(path))
    recordings = [
        Recording(f"person{int(p)}_{int(s)}", int(p), signals[s:e], classes_idx[s:e])
        for s, e, p in zip(*runs(person), strict=True)
    ]
    return ReadResult(cut_windows(recordings, spec.window), list(spec.classes), {"rows": len(data)})
