"""``lstm``: Chevalier's LSTM for UCI HAR — ReLU input projection, 2 stacked LSTM layers, last time step.

UCI HAR notebook (seeds/lstm-uci-har-notebook): 32 hidden units, Adam lr 0.0025, L2 0.0015 on all
weights, batch 1500, 300 epochs; 91.65% test accuracy: the final weights of one run trained on every
training window (no validation split; the test curve it printed for diagnosis peaked at 92.74%).
"""

from __future__ import annotations

import torch
from torch import nn

from har.models.registry import Preset, register

PRESETS = (
    Preset(
        model="lstm",
        name="chevalier",
        hparams={"hidden": 32, "layers": 2},
        # batch 1500 gives only ~4 steps per UCI HAR epoch: patience is counted in epochs, so it is long
        train={
            "lr": 0.0025,
            "l2": 0.0015,
            "weight_decay": 0.0,
            "batch_size": 1500,
            "max_epochs": 300,
            "patience": 50,
            "plateau_patience": 15,
        },
        source="Chevalier, LSTMs for Human Activity Recognition (2016), UCI HAR notebook",
        published="UCI HAR test accuracy 91.65% (single run, final weights after 300 epochs)",
    ),
)


class StackedLSTM(nn.Module):
    def __init__(self, n_channels: int, n_classes: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(n_channels, hidden), nn.ReLU())
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, C]
        out, _ = self.lstm(self.project(x))
        return self.head(out[:, -1])


@register("lstm", "2x32 stacked LSTM with a ReLU input projection (Chevalier 2016)", presets=PRESETS)
def build_lstm(
    n_channels: int, n_classes: int, window: int, hidden: int = 32, layers: int = 2, dropout: float = 0.0
) -> nn.Module:
    return StackedLSTM(n_channels, n_classes, hidden, layers, dropout)
