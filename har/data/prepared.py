"""Load a prepared dataset (``data/prepared/<name>/``) and select a sensor permutation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from har.errors import BadInput
from har.sensors import channels_of

FILES = ("X.npy", "y.npy", "subject.npy", "split.npy", "meta.json")
EXTRA_FILE = "extra.npy"  # only with window.train_step: 1 = a training-only window between the step grid's


@dataclass
class Prepared:
    X: np.ndarray  # [N, T, C] float32, raw units (normalise with meta["normalization"])
    y: np.ndarray
    subject: np.ndarray
    test: np.ndarray  # bool: window belongs to the test split
    meta: dict[str, Any]
    extra: np.ndarray  # bool: a denser training-only window (window.train_step); never validated or tested

    def select(self, permutation: str) -> tuple[np.ndarray, list[str]]:
        """Windows restricted to a sensor permutation, and the channel names kept."""
        idx = channels_of(permutation, self.meta["groups"], self.meta["channels"], self.meta["dataset"])
        return self.X[:, :, idx], [self.meta["channels"][i] for i in idx]


def load_prepared(folder: Path, mmap: bool = True) -> Prepared:
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise BadInput(f"{folder}: {missing[0]} missing; run 'har data prepare {folder.name}'")
    mode = "r" if mmap else None
    y = np.load(folder / "y.npy")
    extra = folder / EXTRA_FILE  # only with window.train_step; otherwise every window is scored
    return Prepared(
        X=np.load(folder / "X.npy", mmap_mode=mode),
        y=y,
        subject=np.load(folder / "subject.npy"),
        test=np.load(folder / "split.npy").astype(bool),
        meta=json.loads((folder / "meta.json").read_text()),
        extra=np.load(extra).astype(bool) if extra.is_file() else np.zeros(len(y), dtype=bool),
    )
