"""``TrainData``: one prepared dataset and sensor permutation as train / val / test splits, the type
shared by window and image data (``har.train.data``, ``har.train.images``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml


@dataclass
class TrainData:
    dataset: str
    sensors: str
    channels: list[str]
    classes: list[str]
    window: int
    rate_hz: float
    mean: np.ndarray
    std: np.ndarray
    splits: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (X normalised [N,T,C] float32, y)
    val_subjects: list[int]
    val_missing: list[
        str
    ]  # training classes no validation subject performed (a warning, see carve_validation)
    data_version: str
    reader_options: dict = field(default_factory=dict)  # how prepare derived the channels (for raw input)
    kind: str = "windows"  # or "images": splits hold (har.train.images.ImageSet, labels)
    subjects: dict[str, np.ndarray] = field(default_factory=dict)  # split -> subject of each window

    def input_shape(self) -> tuple[int, ...]:
        """One example's shape as the model takes it: [window, channels] or [3, crop, crop]."""
        if self.kind == "images":
            return (len(self.channels), self.window, self.window)
        return (self.window, len(self.channels))

    def val_warning(self) -> str | None:
        """What a run says (console, MLflow, report) when validation lacks training classes."""
        if not self.val_missing:
            return None
        return (
            f"validation subjects {self.val_subjects} performed no {', '.join(self.val_missing)} (no other training "
            "subject could be spared for it): validation scores, and every selection made on them, ignore "
            "these classes"
        )

    def normalise(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.std).astype(np.float32)


def data_version(folder: Path, files: tuple[str, ...] = ("y.npy",)) -> str:
    """The DVC md5 of the prepared folder when dvc.lock records it, else a sha256 of meta.json + files."""
    lock = Path("dvc.lock")
    if lock.is_file():
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        for stage in stages.values():
            for out in stage.get("outs", []):
                if Path(out.get("path", "")) == folder:
                    return f"dvc-md5:{out.get('md5')}"
    digest = hashlib.sha256(b"".join((folder / name).read_bytes() for name in ("meta.json", *files)))
    return f"sha256:{digest.hexdigest()[:16]}"
