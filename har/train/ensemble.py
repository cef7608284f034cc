"""Ensembles of checkpoints: the mean of the members' class probabilities.

Members may differ in architecture, preset, seed and normalisation statistics; each normalises the raw
windows with its own statistics. They must read the same data: dataset, channels (names and order),
classes and window length, else the probabilities would not line up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from har.errors import BadInput
from har.train.checkpoint import load_checkpoint
from har.train.loop import predict_logits

Member = tuple[nn.Module, dict[str, Any]]
# what every member must agree on (reader_options: how raw input is turned into the channels)
SHARED = ("dataset", "channels", "classes", "window", "reader_options")


def check_same_data(folders: list[Path], infos: list[dict[str, Any]]) -> None:
    """Refuse a member whose ``checkpoint.json`` reads other data than the first one's (names the key)."""
    if not folders:
        raise BadInput("an ensemble needs at least one checkpoint")
    for folder, info in zip(folders[1:], infos[1:], strict=True):
        for key in SHARED:
            if info.get(key) != infos[0].get(key):
                raise BadInput(
                    f"{folder}: does not match {folders[0]}'s {key}; an ensemble's members must be "
                    f"trained on the same {', '.join(SHARED[:-1])} and reader options"
                )


def load_members(folders: list[Path]) -> list[Member]:
    """Load each checkpoint; refuse a member whose data differs from the first one's."""
    members = [load_checkpoint(folder) for folder in folders]
    check_same_data(folders, [info for _, info in members])
    return members


def normalised(info: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    """Raw windows [N, T, C] normalised with a checkpoint's own mean and std."""
    norm = info["normalization"]
    return ((raw - np.asarray(norm["mean"])) / np.asarray(norm["std"])).astype(np.float32)


class Ensemble(nn.Module):
    """The members behind one forward pass: raw windows [N, T, C] -> mean class probabilities [N, K]
    (each member normalises with its own statistics), so an ensemble is timed and run like one model."""

    def __init__(self, members: list[Member]) -> None:
        super().__init__()
        self.members = nn.ModuleList(model for model, _ in members)
        stats = [[info["normalization"][k] for k in ("mean", "std")] for _, info in members]
        self.register_buffer("means", torch.tensor([m for m, _ in stats], dtype=torch.float32))
        self.register_buffer("stds", torch.tensor([s for _, s in stats], dtype=torch.float32))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        probs = [
            torch.softmax(model((raw - mean) / std), dim=1)
            for model, mean, std in zip(self.members, self.means, self.stds, strict=True)
        ]
        return torch.stack(probs).mean(dim=0)


def mean_probs(members: list[Member], raw: np.ndarray) -> np.ndarray:
    """The members' mean class probabilities [N, K] for raw windows [N, T, C]."""

    return predict_logits(Ensemble(members), raw.astype(np.float32))
