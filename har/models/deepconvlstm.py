"""``deepconvlstm``: DeepConvLSTM (Ordóñez & Roggen 2016).

Four temporal convolutions (64 filters, kernel 5, valid, ReLU) applied to every channel separately,
then two LSTM layers (128 units, dropout 0.5 before each) over the (T - 16) steps of 64 x C features;
the last step is classified. RMSProp (lr 0.001, decay 0.9), batch 100; Opportunity gestures (18 classes
incl. Null) weighted F1 0.9157.
"""

from __future__ import annotations

import torch
from torch import nn

from har.models.registry import Preset, register

PRESETS = (
    Preset(
        model="deepconvlstm",
        name="ordonez",
        hparams={"filters": 64, "kernel": 5, "conv_layers": 4, "hidden": 128, "dropout": 0.5},
        train={"optimizer": "rmsprop", "lr": 0.001, "rho": 0.9, "batch_size": 100, "max_epochs": 100},
        source="Ordóñez & Roggen 2016, Sensors 16(1):115",
        published="Opportunity gestures weighted F1 0.9157 (challenge split)",
    ),
)


class DeepConvLSTM(nn.Module):
    def __init__(
        self, n_channels: int, n_classes: int, filters: int, kernel: int, conv_layers: int, hidden: int,
        dropout: float,
    ) -> None:  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(conv_layers):
            layers += [nn.Conv2d(1 if i == 0 else filters, filters, (kernel, 1)), nn.ReLU()]
        self.conv = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(filters * n_channels, hidden, num_layers=2, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        z = self.conv(x.unsqueeze(1))  # [B, F, T', C]
        b, f, t, c = z.shape
        z = z.permute(0, 2, 1, 3).reshape(b, t, f * c)
        out, _ = self.lstm(self.dropout(z))
        return self.head(self.dropout(out[:, -1]))


def _min_window(hp: dict) -> int:
    return hp["conv_layers"] * (hp["kernel"] - 1) + 1


@register("deepconvlstm", "4 temporal convs + 2 LSTM (Ordóñez & Roggen 2016)", _min_window, PRESETS)
def build_deepconvlstm(
    n_channels: int,
    n_classes: int,
    window: int,
    filters: int = 64,
    kernel: int = 5,
    conv_layers: int = 4,
    hidden: int = 128,
    dropout: float = 0.5,
) -> nn.Module:
    return DeepConvLSTM(n_channels, n_classes, filters, kernel, conv_layers, hidden, dropout)
