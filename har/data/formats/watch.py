"""The seglearn smartwatch exercise set: ``watch_dataset.npy`` (a pickled dict), checked before unpickling."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from har.data.formats import ReadResult
from har.data.pins import pinned_sha256
from har.data.spec import DatasetSpec
from har.data.textio import read_bytes
from har.data.windows import Recording, cut_windows
from har.errors import BadInput

CHANNELS_IN_FILE = ["ax", "ay", "az", "wx", "wy", "wz"]


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


def find(root: Path) -> Path:
    hits = sorted(
        p for p in root.rglob("watch_dataset.npy*") if p.name in ("watch_dataset.npy", "watch_dataset.npy.gz")
    )
    if not hits:
        raise BadInput(f"{root}: no watch_dataset.npy(.gz) found; run 'har data fetch watch'")
    return hits[0]


def load_verified(path: Path) -> dict:
    """Unpickle only the exact published file: pickles can run code, so the sha256 is checked first."""
    raw = read_bytes(path)
    digest = hashlib.sha256(raw).hexdigest()
    published = pinned_sha256("watch.sha256", "watch_dataset.npy")
    if digest != published:
        raise BadInput(
            f"{path}: sha256 {digest} is not the published {published}; refusing to unpickle it. "
            "Fetch the file again ('har data fetch watch')"
        )
    return np.load(io.BytesIO(raw), allow_pickle=True).item()


def read(root: Path, spec: DatasetSpec, options: Options) -> ReadResult:
    path = find(root)
    data = load_verified(path)
    if list(data.get("X_labels", [])) != CHANNELS_IN_FILE:
        raise BadInput(f"{path}: channels {data.get('X_labels')} differ from {CHANNELS_IN_FILE}")
    classes = [str(c) for c in data["y_labels"]]
    recordings = [
        Recording(f"series{i:03d}", int(subject), np.asarray(x, dtype=np.float64), np.full(len(x), int(y)))
        for i, (x, y, subject) in enumerate(zip(data["X"], data["y"], data["subject"], strict=True))
    ]
    return ReadResult(cut_windows(recordings, spec.window), classes, {"series": len(recordings)})
