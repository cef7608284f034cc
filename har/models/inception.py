"""``inception``: InceptionTime's network (Ismail Fawaz et al., InceptionTime: Finding AlexNet for Time
Series Classification, 2020), the other standard deep baseline of time-series classification.

Six Inception modules; each has a 1x1 bottleneck (32 filters; skipped on a one-channel input) feeding
three parallel convolutions of different lengths (32 filters each) plus a max-pool -> 1x1-conv branch,
concatenated (128 channels), BatchNorm, ReLU. A residual shortcut (1x1 conv + BatchNorm) every three
modules, global average pooling, a linear classifier. The paper's kernels are 40, 20 and 10 samples;
here they are 39, 19 and 9 so that "same" padding is symmetric. The paper ensembles five such networks;
one network is one model here (a seed ensemble is ``har evaluate A B C``: the mean of their probabilities).
"""

from __future__ import annotations

import torch
from torch import nn

from har.errors import BadInput
from har.models.recipes import POOLED_STATS_TRAIN
from har.models.registry import Preset, register
from har.models.same_conv import SameConv1d
from har.models.window_stats import with_window_stats

PRESETS = (
    Preset(
        model="inception",
        name="fawaz2020",
        hparams={"filters": 32, "bottleneck": 32, "kernels": (39, 19, 9), "depth": 6, "residual": True},
        train={"lr": 0.001, "batch_size": 64, "max_epochs": 60, "patience": 12, "plateau_factor": 0.5},
        source="Ismail Fawaz et al., InceptionTime (2020): network, Adam lr 0.001, batch 64, learning rate "
        "halved on plateau; epochs capped at 60 with early stopping on the validation subjects (the paper "
        "trains 1500 epochs and keeps the lowest training loss)",
        published="no published HAR figure: har-lab's own baseline",
    ),
    Preset(
        model="inception",
        name="pooled_stats",
        hparams={
            "filters": 32,
            "bottleneck": 32,
            "kernels": (39, 19, 9),
            "depth": 6,
            "residual": True,
            "dropout": 0.3,
            "input_stats": True,
        },
        train=POOLED_STATS_TRAIN,
        source="har-lab: InceptionTime's network trained with resnet1d:pooled_stats' recipe (window mean/std "
        "features, dropout, augmentation, cosine schedule, label smoothing): one change, the backbone",
        published="no published HAR figure: har-lab's own model",
    ),
)


class InceptionModule(nn.Module):
    def __init__(self, c_in: int, filters: int, kernels: tuple[int, ...], bottleneck: int) -> None:
        super().__init__()
        squeeze = bottleneck > 0 and c_in > 1
        self.bottleneck = nn.Conv1d(c_in, bottleneck, 1, bias=False) if squeeze else nn.Identity()
        width = bottleneck if squeeze else c_in
        self.convs = nn.ModuleList(SameConv1d(width, filters, k, bias=False) for k in kernels)
        self.pool_branch = nn.Sequential(
            nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(c_in, filters, 1, bias=False)
        )
        self.out = nn.Sequential(nn.BatchNorm1d(filters * (len(kernels) + 1)), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T]
        z = self.bottleneck(x)
        return self.out(torch.cat([conv(z) for conv in self.convs] + [self.pool_branch(x)], dim=1))


class InceptionNet(nn.Module):
    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        filters: int,
        bottleneck: int,
        kernels: tuple[int, ...],
        depth: int,
        residual: bool,
        dropout: float,
        input_stats: bool,
    ) -> None:
        super().__init__()
        width = filters * (len(kernels) + 1)
        self.stack = nn.ModuleList(
            InceptionModule(n_channels if i == 0 else width, filters, kernels, bottleneck)
            for i in range(depth)
        )
        # a shortcut closes every third module, from the input of the first of the three
        self.shortcuts = nn.ModuleDict(
            {
                str(i): nn.Sequential(
                    nn.Conv1d(n_channels if i == 2 else width, width, 1, bias=False), nn.BatchNorm1d(width)
                )
                for i in range(2, depth, 3)
            }
            if residual
            else {}
        )
        self.act = nn.ReLU()
        self.input_stats = input_stats
        features = width + (2 * n_channels if input_stats else 0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        h = residual_in = x.transpose(1, 2)
        for i, module in enumerate(self.stack):
            h = module(h)
            if str(i) in self.shortcuts:
                h = residual_in = self.act(h + self.shortcuts[str(i)](residual_in))
        pooled = h.mean(dim=-1)
        return self.head(with_window_stats(pooled, x) if self.input_stats else pooled)


@register("inception", "InceptionTime network (Ismail Fawaz et al. 2020)", presets=PRESETS)
def build_inception(
    n_channels: int,
    n_classes: int,
    window: int,
    filters: int = 32,
    bottleneck: int = 32,
    kernels: tuple[int, ...] = (39, 19, 9),
    depth: int = 6,
    residual: bool = True,
    dropout: float = 0.0,
    input_stats: bool = False,
) -> nn.Module:
    """``filters`` per branch (a module outputs ``filters * (len(kernels) + 1)`` channels); ``bottleneck``
    0 turns the 1x1 squeeze off; ``input_stats`` as in resnet1d (window mean/std to the classifier)."""
    if depth < 1 or filters < 1 or not kernels:
        raise BadInput(
            f"inception: depth {depth}, filters {filters}, kernels {kernels}: give depth >= 1, filters >= 1 "
            "and at least one kernel size"
        )
    return InceptionNet(
        n_channels, n_classes, filters, bottleneck, tuple(kernels), depth, residual, dropout, input_stats
    )
