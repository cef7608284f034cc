"""``feature_mlp``: a multilayer perceptron on fixed window features (har.models.window_stats), the
deep-learning counterpart of the UCI HAR authors' support-vector machine on hand-crafted features.

The features are computed inside the model from the normalised window (no learned filters), then
BatchNorm, ``len(hidden)`` ReLU layers with dropout, and a linear classifier. Checkpoints, ``har predict``
and per-subject adaptation (the BatchNorm layers) work as for any other model.
"""

from __future__ import annotations

import torch
from torch import nn

from har.models.recipes import POOLED_STATS_TRAIN
from har.models.registry import Preset, register
from har.models.window_stats import check_triplets, feature_count, window_features

PRESETS = (
    Preset(
        model="feature_mlp",
        name="uci",
        hparams={"hidden": (256, 256), "dropout": 0.3, "triplets": True},
        train=POOLED_STATS_TRAIN,
        source="har-lab: the feature families of UCI HAR's 561 features (Anguita et al. 2013) computed from "
        "the window, an MLP, trained with resnet1d:pooled_stats' recipe; channels in x/y/z triplets",
        published="no published HAR figure: har-lab's own model",
    ),
)


class FeatureMLP(nn.Module):
    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        window: int,
        hidden: tuple[int, ...],
        dropout: float,
        triplets: bool,
    ) -> None:
        super().__init__()
        self.triplets = triplets
        width = feature_count(n_channels, window, triplets)
        layers: list[nn.Module] = [nn.BatchNorm1d(width)]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C]
        return self.net(window_features(x, self.triplets))


@register(
    "feature_mlp",
    "MLP on fixed UCI-HAR-style window features",
    min_window=lambda hp: 4,
    presets=PRESETS,
)
def build_feature_mlp(
    n_channels: int,
    n_classes: int,
    window: int,
    hidden: tuple[int, ...] = (256, 256),
    dropout: float = 0.3,
    triplets: bool = False,
) -> nn.Module:
    """``triplets``: consecutive channels are one 3-axis sensor's x, y, z (adds magnitudes, axis
    correlations and the mean direction; the channel count must be a multiple of 3)."""
    check_triplets("feature_mlp", n_channels, triplets)
    return FeatureMLP(n_channels, n_classes, window, tuple(hidden), dropout, triplets)
