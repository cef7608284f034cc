"""``res_bilstm``: Deep Residual Bidir-LSTM (Zhao, Yang, Chevalier, Gong 2017).

``n_stacked`` blocks of ``n_residual`` bidirectional LSTM cells. In each cell the forward and backward
outputs are concatenated and a ReLU dense layer brings them back to ``hidden`` features; inside a block,
each cell's output is added to its input (residual). A ReLU projection feeds the first block; the last
time step is classified. Best published: "3x3", lr 0.001, L2 0.005 (UCI HAR 94% at the best epoch,
91% final; Opportunity F1 0.893).
"""

from __future__ import annotations

import torch
from torch import nn

from har.models.registry import Preset, register

SOURCE = "Zhao, Yang, Chevalier, Gong 2017, arXiv:1708.08989; HAR-stacked-residual-bidir-LSTMs README"
TRAIN = {
    "lr": 0.001,
    "l2": 0.005,
    "weight_decay": 0.0,
    "batch_size": 100,
    "max_epochs": 100,
    "clip_grad_norm": 15.0,
}


def _preset(name: str, stacked: int, residual: int, published: str = "") -> Preset:
    return Preset(
        model="res_bilstm",
        name=name,
        hparams={"n_stacked": stacked, "n_residual": residual, "hidden": 28, "bidirectional": True},
        train=dict(TRAIN),
        source=SOURCE,
        published=published,
    )


PRESETS = (
    _preset("1x1", 1, 1),
    _preset("2x2", 2, 2),
    _preset(
        "3x3",
        3,
        3,
        "UCI HAR test accuracy 94% at the best epoch (chosen on the test set), 91% final; "
        "Opportunity gestures F1 0.893",
    ),
)


class BiCell(nn.Module):
    """One (bi)directional LSTM layer; concatenated directions are reduced by a ReLU dense layer."""

    def __init__(self, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=bidirectional)
        width = 2 * hidden if bidirectional else hidden
        self.reduce = nn.Sequential(nn.Linear(width, hidden), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.reduce(out)


def _norm(kind: str, hidden: int) -> nn.Module:
    """Normalisation between stacked blocks (the reference code batch-normalises there)."""
    return {"batch": nn.BatchNorm1d(hidden), "layer": nn.LayerNorm(hidden), "none": nn.Identity()}[kind]


class ResidualBiLSTM(nn.Module):
    def __init__(
        self, n_channels: int, n_classes: int, hidden: int, n_stacked: int, n_residual: int, bidirectional: bool,
        dropout: float, norm: str,
    ) -> None:  # fmt: skip
        super().__init__()
        self.project = nn.Sequential(nn.Linear(n_channels, hidden), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.ModuleList(BiCell(hidden, bidirectional) for _ in range(n_residual)) for _ in range(n_stacked)
        )
        self.norms = nn.ModuleList(_norm(norm, hidden) for _ in range(n_stacked))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(x)
        for cells, norm in zip(self.blocks, self.norms, strict=True):
            h = cells[0](h)
            for cell in cells[1:]:
                h = h + cell(h)
            h = norm(h.transpose(1, 2)).transpose(1, 2) if isinstance(norm, nn.BatchNorm1d) else norm(h)
        return self.head(self.dropout(h[:, -1]))


@register(
    "res_bilstm", "n_stacked x n_residual residual bidirectional LSTM (Zhao et al. 2017)", presets=PRESETS
)
def build_res_bilstm(
    n_channels: int,
    n_classes: int,
    window: int,
    n_stacked: int = 3,
    n_residual: int = 3,
    hidden: int = 28,
    bidirectional: bool = True,
    dropout: float = 0.0,
    norm: str = "batch",
) -> nn.Module:
    if norm not in ("batch", "layer", "none"):
        from har.errors import BadInput

        raise BadInput(f"res_bilstm: norm must be batch, layer or none, got {norm!r}")
    return ResidualBiLSTM(n_channels, n_classes, hidden, n_stacked, n_residual, bidirectional, dropout, norm)
