"""``lstm_dense``: the tutorial's LSTM (100 units) + dropout 0.5 + dense 100 (ReLU) + softmax.

Brownlee's UCI HAR tutorial (seeds/lstm-cnnlstm-convlstm-tutorial): Adam (Keras defaults), batch 64,
15 epochs; 10 repeats: 89.7% mean test accuracy (std about 1.3).
"""

from __future__ import annotations

import torch
from torch import nn

from har.models.registry import Preset, register

PRESETS = (
    Preset(
        model="lstm_dense",
        name="tutorial",
        hparams={"hidden": 100, "dense": 100, "dropout": 0.5},
        train={"lr": 0.001, "batch_size": 64, "max_epochs": 15, "patience": 15},
        source="Brownlee, LSTMs for Human Activity Recognition Time Series Classification (tutorial)",
        published="UCI HAR test accuracy 89.7% mean of 10 repeats (fixed 15 epochs, no validation split)",
    ),
)


class LSTMDense(nn.Module):
    def __init__(self, n_channels: int, n_classes: int, hidden: int, dense: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_channels, hidden, batch_first=True)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden, dense), nn.ReLU(), nn.Linear(dense, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


@register("lstm_dense", "LSTM 100 + dropout + dense 100 (Brownlee tutorial)", presets=PRESETS)
def build_lstm_dense(
    n_channels: int, n_classes: int, window: int, hidden: int = 100, dense: int = 100, dropout: float = 0.5
) -> nn.Module:
    return LSTMDense(n_channels, n_classes, hidden, dense, dropout)
