"""``cnn_resbigru``: CNN-ResBiGRU (Mekruksavanich & Jitpattanakul 2024) as in the MyoGym notebook.

Conv block: Conv1D (kernel 10, same), BatchNorm, MaxPool 3 (stride 1, same), Dropout 0.25. Then
ResBiGRU blocks: a bidirectional GRU layer, a second GRU per direction on that direction's output,
residual add of first and second layer per direction, LayerNorm (shared by both directions), concat.
Optional residual adds between blocks (the notebook's model 4, where filters == 2 * hidden); where the conv
block's width differs from a block's (filters != 2 * hidden), the first block has no residual add, so every
point of a search space is a valid model. Global max pool over time, dense.
Deviation: PyTorch's fused GRU uses tanh; the notebook's GRUs use a linear activation.
"""

from __future__ import annotations

import torch
from torch import nn

from har.models.registry import Preset, register
from har.models.same_conv import SameConv1d

SOURCE = (
    "CNN-ResBiGRU MyoGym notebook (seeds/cnn-resbigru-myogym-notebook); Mekruksavanich & Jitpattanakul 2024"
)
PAPER = "paper: MyoGym EMG+IMU 97.29% accuracy / 92.68% macro F1 (window-level cross-validation)"


def _preset(
    name: str, filters: int, blocks: int, hidden: int, between: bool, beta1: float, beta2: float
) -> Preset:
    return Preset(
        model="cnn_resbigru",
        name=name,
        hparams={"filters": filters, "blocks": blocks, "hidden": hidden, "block_residual": between},
        train={
            "lr": 0.001,
            "betas": (beta1, beta2),
            "eps": 1e-8,
            "batch_size": 64,
            "max_epochs": 25,
            "patience": 5,
            "monitor": "val/accuracy",
            "plateau_patience": 2,
            "plateau_factor": 0.5,
            "min_lr": 1e-4,
        },
        source=SOURCE,
        published=PAPER,
    )


PRESETS = (
    _preset("model1", 32, 3, 32, False, 0.9, 0.999),
    _preset("model2", 64, 2, 64, False, 0.9, 0.99),
    _preset("model3", 32, 1, 32, False, 0.9, 0.99),
    _preset("model4", 64, 5, 32, True, 0.95, 0.99),
)


class ResBiGRU(nn.Module):
    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.first = nn.GRU(in_features, hidden, batch_first=True, bidirectional=True)
        self.second_fw = nn.GRU(hidden, hidden, batch_first=True)
        self.second_bw = nn.GRU(hidden, hidden, batch_first=True)
        self.norm = nn.LayerNorm(hidden)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.first(x)
        fw, bw = z[..., : self.hidden], z[..., self.hidden :]  # backward output is time-aligned
        fw = self.norm(fw + self.second_fw(fw)[0])
        bw = self.norm(bw + self.second_bw(bw)[0])
        return torch.cat([fw, bw], dim=-1)


class CNNResBiGRU(nn.Module):
    def __init__(
        self, n_channels: int, n_classes: int, filters: int, kernel: int, blocks: int, hidden: int,
        block_residual: bool, dropout: float,
    ) -> None:  # fmt: skip
        super().__init__()
        self.conv = nn.Sequential(
            SameConv1d(n_channels, filters, kernel),
            nn.BatchNorm1d(filters),
            nn.MaxPool1d(3, stride=1, padding=1),
            nn.Dropout(dropout),
        )
        widths = [filters] + [2 * hidden] * blocks
        self.blocks = nn.ModuleList(ResBiGRU(widths[i], hidden) for i in range(blocks))
        self.residual = [block_residual and widths[i] == 2 * hidden for i in range(blocks)]
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        z = self.conv(x.transpose(1, 2)).transpose(1, 2)
        for block, residual in zip(self.blocks, self.residual, strict=True):
            z = z + block(z) if residual else block(z)
        return self.head(z.amax(dim=1))


@register(
    "cnn_resbigru", "conv block + residual bidirectional GRU blocks (Mekruksavanich 2024)", presets=PRESETS
)
def build_cnn_resbigru(
    n_channels: int,
    n_classes: int,
    window: int,
    filters: int = 64,
    kernel: int = 10,
    blocks: int = 2,
    hidden: int = 32,
    block_residual: bool = False,
    dropout: float = 0.25,
) -> nn.Module:
    return CNNResBiGRU(n_channels, n_classes, filters, kernel, blocks, hidden, block_residual, dropout)
