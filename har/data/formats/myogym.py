"""MyoGym ``MyoGym.mat``: ``raw_data`` [N, 17] and ``raw_data_labels`` [N, 2], MATLAB v5 or v7.3 (HDF5).

raw_data columns (1-based): 1, 10, 14 timestamps (ms); 2-9 EMG; 11-13 accelerometer; 15-17 gyroscope.
raw_data_labels: column 1 exercise 1-30 or 99 (NULL), column 2 person 1-10. 50 Hz.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse
from pydantic import BaseModel, ConfigDict
from scipy.io import loadmat
from scipy.io.matlab import MatReadError

from har.data.formats import ReadResult
from har.data.spec import DatasetSpec
from har.data.textio import note_read, read_bytes, reason
from har.data.windows import Recording, cut_windows, fill_gaps, runs
from har.errors import BadInput

SIGNAL_COLUMNS = [*range(1, 9), 10, 11, 12, 14, 15, 16]  # 0-based: EMG, acc, gyro
NULL_LABEL = 99
N_EXERCISES = 30
SHAPES = {"raw_data": 17, "raw_data_labels": 2}  # variable -> columns
NUMERIC_CLASSES = {"double", "single", "logical", *(f"{s}int{b}" for s in ("", "u") for b in (8, 16, 32, 64))}
# what scipy.io.loadmat and h5py raise on a truncated or corrupt file (found by truncating and bit-flipping)
MAT_ERRORS = (
    OSError, EOFError, ValueError, TypeError, IndexError, KeyError, OverflowError, MemoryError,
    NotImplementedError, RuntimeError, struct.error, zlib.error, MatReadError,
)  # fmt: skip


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


def find(root: Path) -> Path:
    hits = sorted(p for p in root.rglob("*.mat*") if p.name.endswith((".mat", ".mat.gz")))
    if not hits:
        raise BadInput(f"{root}: no MyoGym.mat found; run 'har data fetch myogym' or fix the mirror")
    return hits[0]


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(source: Path | io.BytesIO | bytes) -> bool:
    """HDF5 files (MATLAB v7.3) carry the signature at offset 0 or after a 512, 1024, 2048 byte user block."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(2056)
    else:
        head = (source.getvalue() if isinstance(source, io.BytesIO) else source)[:2056]
    return any(head[o : o + 8] == HDF5_SIGNATURE for o in (0, 512, 1024, 2048))


def describe(value: object) -> str | None:
    """What a loaded MATLAB variable is when it is not a full real numeric matrix, else None."""
    if scipy.sparse.issparse(value):
        return "a sparse matrix"
    if isinstance(value, h5py.Group):
        return "a MATLAB struct"
    if isinstance(value, h5py.Dataset):
        matlab_class = value.attrs.get("MATLAB_class", b"double")
        matlab_class = matlab_class.decode() if isinstance(matlab_class, bytes) else str(matlab_class)
        if matlab_class not in NUMERIC_CLASSES:
            return f"a MATLAB {matlab_class}"
        if value.attrs.get("MATLAB_empty", 0):
            return "empty"
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return f"a {type(value).__name__}"
    if dtype.names:
        return "a MATLAB struct"
    if dtype.kind == "O":
        return "a MATLAB cell array or struct"
    if dtype.kind in "US":
        return "text (a MATLAB char array)"
    if dtype.kind == "c":
        return "complex"
    if dtype.kind not in "biuf":
        return f"of type {dtype}"
    return None


def checked(path: Path, name: str, value: object, rows: int | None = None) -> np.ndarray:
    """``value`` as an [N, columns] numeric array; BadInput saying what is wrong with it otherwise."""
    columns = SHAPES[name]
    if (what := describe(value)) is not None:
        raise BadInput(f"{path}: {name} is {what}, expected a numeric [N, {columns}] matrix")
    array = np.asarray(value)
    if isinstance(value, h5py.Dataset):  # v7.3: HDF5 stores MATLAB's column-major matrices transposed
        array = array.T
    if (what := describe(array)) is not None:
        raise BadInput(f"{path}: {name} is {what}, expected a numeric [N, {columns}] matrix")
    want = f"[{rows if rows is not None else 'N'}, {columns}]"
    if array.ndim != 2 or array.shape[1] != columns or (rows is not None and len(array) != rows):
        raise BadInput(f"{path}: {name} has shape {array.shape}, expected {want}")
    if not len(array):
        raise BadInput(f"{path}: {name} has no rows; fetch it again")
    return array


def load_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``raw_data`` and ``raw_data_labels`` as [N, 17] and [N, 2] arrays, from MATLAB v5 or v7.3 files."""
    if path.suffix == ".gz":
        content = read_bytes(path)  # notes the read
        source: Path | io.BytesIO = io.BytesIO(content)
        head = content[:2056]
    else:
        note_read(path)
        source = path
        try:
            with path.open("rb") as handle:
                head = handle.read(2056)
        except OSError as exc:
            raise BadInput(f"{path}: cannot read ({reason(exc)})") from exc
    if not head:
        raise BadInput(f"{path}: empty file; fetch it again")
    hdf5 = is_hdf5(head)
    try:
        if hdf5:
            with h5py.File(source, "r") as f:
                missing = [k for k in SHAPES if k not in f]
                if missing:
                    raise BadInput(f"{path}: variable {missing[0]!r} not found; is this MyoGym.mat?")
                data = checked(path, "raw_data", f["raw_data"])
                labels = checked(path, "raw_data_labels", f["raw_data_labels"], len(data))
        else:
            mat = loadmat(source, variable_names=list(SHAPES))
            missing = [k for k in SHAPES if k not in mat]
            if missing:
                raise BadInput(f"{path}: variable {missing[0]!r} not found; is this MyoGym.mat?")
            data = checked(path, "raw_data", mat["raw_data"])
            labels = checked(path, "raw_data_labels", mat["raw_data_labels"], len(data))
    except MAT_ERRORS as exc:
        if hdf5 or head.startswith(b"MATLAB"):
            kind = "MATLAB v7.3 (HDF5)" if hdf5 else "MATLAB"
            raise BadInput(
                f"{path}: truncated or corrupt {kind} file ({reason(exc)}); fetch it again"
            ) from exc
        raise BadInput(f"{path}: not a MATLAB .mat file (no v5 or v7.3 header); fetch it again") from exc
    return data, whole_labels(path, labels)


def whole_labels(path: Path, labels: np.ndarray) -> np.ndarray:
    """Labels as int64; BadInput naming the first row with a NaN, infinite, fractional or huge value."""
    if labels.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(labels) | (labels != np.round(labels)) | (np.abs(labels) >= 2**31)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise BadInput(
                f"{path}: raw_data_labels row {row + 1} holds {float(labels[row, col])!r}, expected whole numbers "
                "(exercise 1-30 or 99, person 1-10)"
            )
    return labels.astype(np.int64)


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
    signals = data[:, SIGNAL_COLUMNS].astype(np.float64)
    if np.isinf(signals).any():
        row, col = (int(i) for i in np.argwhere(np.isinf(signals))[0])
        raise BadInput(f"{path}: raw_data row {row + 1} column {SIGNAL_COLUMNS[col] + 1} is infinite")
    signals, _ = fill_gaps(signals, spec.channels, str(path))
    recordings = [
        Recording(f"person{int(p)}_{int(s)}", int(p), signals[s:e], classes_idx[s:e])
        for s, e, p in zip(*runs(person), strict=True)
    ]
    return ReadResult(cut_windows(recordings, spec.window), list(spec.classes), {"rows": len(data)})
