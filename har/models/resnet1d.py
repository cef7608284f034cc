"""``resnet1d``: a modern 1D-CNN baseline — the residual network of Wang, Yan & Oates (2017).

Three residual blocks (64, 128, 128 filters), each three Conv1D layers (kernels 8, 5, 3, same padding)
with BatchNorm and ReLU and a 1x1-conv shortcut, then global average pooling and a linear classifier.
No recurrence: fast on CPU and GPU, any window length, and a strong reference for the published models.
"""

from __future__ import annotations

import torch
from torch import nn

from har.models.recipes import POOLED_STATS_TRAIN
from har.models.registry import Preset, register
from har.models.same_conv import SameConv1d
from har.models.window_stats import check_triplets, feature_count, window_features, with_window_stats

POOLED_STATS = {
    "widths": (64, 128, 128),
    "kernels": (7, 5, 3),
    "pools": (2, 2),
    "dropout": 0.3,
    "input_stats": True,
}
PRESETS = (
    Preset(
        model="resnet1d",
        name="wang2017",
        hparams={"widths": (64, 128, 128), "kernels": (8, 5, 3), "dropout": 0.0},
        train={"lr": 0.001, "batch_size": 64, "max_epochs": 60, "patience": 12, "weight_decay": 1e-4},
        source="Wang, Yan & Oates, Time series classification from scratch with deep neural networks (2017)",
        published="no published HAR figure: har-lab's own baseline",
    ),
    Preset(
        model="resnet1d",
        name="wang2017_ema",
        hparams={"widths": (64, 128, 128), "kernels": (8, 5, 3), "dropout": 0.0},
        train={
            "lr": 0.001,
            "batch_size": 64,
            "max_epochs": 60,
            "patience": 12,
            "weight_decay": 1e-4,
            "ema_decay": 0.998,
        },
        source="har-lab: wang2017 validated, selected and kept as an exponential moving average of its weights "
        "(decay 0.998 per step, about 5 epochs of UCI HAR); docs/results.md",
        published="no published HAR figure: har-lab's own model",
    ),
    Preset(
        model="resnet1d",
        name="pooled_stats",
        hparams=POOLED_STATS,
        train=POOLED_STATS_TRAIN,
        source="har-lab: wang2017 with max-pooling between blocks, window mean/std features, augmentation, "
        "cosine schedule and label smoothing; chosen on the validation subjects (docs/results.md)",
        published="no published HAR figure: har-lab's own model",
    ),
    Preset(
        model="resnet1d",
        name="pooled_features",
        hparams={**POOLED_STATS, "uci_features": True, "triplets": True},
        train=POOLED_STATS_TRAIN,
        source="har-lab: pooled_stats with the UCI HAR feature families (har.models.window_stats, "
        "batch-normalised) beside the pooled features; channels in x/y/z triplets",
        published="no published HAR figure: har-lab's own model",
    ),
)


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernels: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, k in enumerate(kernels):
            layers += [
                SameConv1d(c_in if i == 0 else c_out, c_out, k, bias=False),
                nn.BatchNorm1d(c_out),
            ]
            if i < len(kernels) - 1:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet1D(nn.Module):
    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        widths: tuple[int, ...],
        kernels: tuple[int, ...],
        dropout: float,
        pools: tuple[int, ...] = (),
        input_stats: bool = False,
        uci_features: bool = False,
        triplets: bool = False,
        window: int = 128,
    ) -> None:
        super().__init__()
        self.input_stats = input_stats
        self.triplets = triplets
        n_features = feature_count(n_channels, window, triplets) if uci_features else 0
        self.features = nn.BatchNorm1d(n_features) if uci_features else None
        chans = [n_channels, *widths]
        layers: list[nn.Module] = []
        for i in range(len(widths)):
            layers.append(ResidualBlock(chans[i], chans[i + 1], kernels))
            if i < len(pools) and pools[i] > 1:  # max-pool between blocks: fewer time steps, cheaper
                layers.append(nn.MaxPool1d(pools[i], ceil_mode=True))
        self.blocks = nn.Sequential(*layers)
        features = widths[-1] + (2 * n_channels if input_stats else 0) + n_features
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        pooled = self.blocks(x.transpose(1, 2)).mean(dim=-1)
        if self.input_stats:
            pooled = with_window_stats(pooled, x)
        if self.features is not None:
            pooled = torch.cat([pooled, self.features(window_features(x, self.triplets))], dim=1)
        return self.head(pooled)


@register(
    "resnet1d",
    "residual 1D-CNN baseline (Wang et al. 2017)",
    min_window=lambda hp: 4 if hp.get("uci_features") else 1,  # the window features need 4 samples
    presets=PRESETS,
)
def build_resnet1d(
    n_channels: int,
    n_classes: int,
    window: int,
    widths: tuple[int, ...] = (64, 128, 128),
    kernels: tuple[int, ...] = (8, 5, 3),
    dropout: float = 0.0,
    pools: tuple[int, ...] = (),
    input_stats: bool = False,
    uci_features: bool = False,
    triplets: bool = False,
) -> nn.Module:
    """``pools[i] > 1`` max-pools the time axis by that factor after block ``i`` (default: none);
    ``input_stats`` feeds each window's per-channel mean and std to the classifier beside the pooled
    features (the static posture cue: the gravity direction in the total-acceleration channels);
    ``uci_features`` adds the UCI HAR feature families (har.models.window_stats, batch-normalised), with
    ``triplets`` when consecutive channels are one 3-axis sensor's x, y, z."""
    if uci_features:
        check_triplets("resnet1d", n_channels, triplets)
    return ResNet1D(
        n_channels, n_classes, tuple(widths), tuple(kernels), dropout, tuple(pools), input_stats,
        uci_features, triplets, window,
    )  # fmt: skip
