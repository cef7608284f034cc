"""Fixed, parameter-free features of each window, handed to a classifier beside (or instead of) a
network's pooled features.

- ``with_window_stats`` (``input_stats``): each channel's mean and std, the static posture cue (the
  gravity direction in the total-acceleration channels).
- ``window_features`` (resnet1d's ``uci_features``, ``feature_mlp``): the feature families of the UCI HAR
  dataset's 561 features (features_info.txt), computed in the model from the normalised window: per
  channel (and per triplet magnitude) mean, std, min, max, median, mean absolute deviation, interquartile
  range, energy, skewness, kurtosis, jerk (first difference) mean absolute value and std, min and max of a
  25-sample moving average (0.5 s at 50 Hz), log energy in 8 frequency bands, dominant frequency and
  spectral entropy; per triplet the three axis correlations and the direction of the mean vector. The
  dataset's authors report about 96% test accuracy for a support-vector machine on their 561 features
  (Anguita et al., ESANN 2013; a figure from the literature, not from ../shared/seeds).

Its own module so that an architecture using it imports no other architecture (importing one registers
it, which would reorder the zoo).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from har.errors import BadInput

BANDS = 8
SMOOTH = 25  # samples of the moving average for the smoothed min/max (0.5 s at 50 Hz)
EPS = 1e-6


def with_window_stats(pooled: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``pooled`` [B, F] followed by each window's per-channel mean and std (x: [B, T, C]): the static
    posture cue, the gravity direction in the total-acceleration channels, handed to the classifier."""
    return torch.cat([pooled, x.mean(dim=1), x.std(dim=1, correction=0)], dim=1)


def check_triplets(name: str, n_channels: int, triplets: bool) -> None:
    """Bad input unless the channels can be read as x, y, z triplets (when ``triplets`` asks for it)."""
    if triplets and n_channels % 3:
        raise BadInput(
            f"{name}: triplets=true reads the channels as x, y, z triplets, but there are {n_channels} "
            "channels (not a multiple of 3); choose a sensor set of 3-axis sensors or set --hparam triplets=false"
        )


def feature_count(n_channels: int, window: int, triplets: bool) -> int:
    """Length of ``window_features``' output for windows of ``n_channels`` x ``window``."""
    series = n_channels + (n_channels // 3 if triplets else 0)
    return series * (16 + min(BANDS, window // 2)) + (2 * n_channels if triplets else 0)


def window_features(x: torch.Tensor, triplets: bool) -> torch.Tensor:
    """[B, T, C] -> [B, F] (``feature_count``). ``triplets``: consecutive channels are the x, y, z axes
    of one sensor (C divisible by 3): add each triplet's magnitude series, axis correlations and mean
    direction. No gradient flows to the window (the features are inputs, not learned)."""
    with torch.no_grad():
        if not triplets:
            return _per_series(x)
        B, T, C = x.shape
        axes = x.reshape(B, T, C // 3, 3)
        return torch.cat([_per_series(torch.cat([x, axes.norm(dim=-1)], dim=2)), _per_triplet(axes)], dim=1)


def _per_series(s: torch.Tensor) -> torch.Tensor:
    T = s.shape[1]
    mean = s.mean(dim=1)
    centred = s - mean.unsqueeze(1)
    std = centred.pow(2).mean(dim=1).sqrt()
    z = centred / (std.unsqueeze(1) + EPS)
    q25, median, q75 = torch.quantile(s, s.new_tensor([0.25, 0.5, 0.75]), dim=1)
    jerk = s.diff(dim=1)
    smooth = F.avg_pool1d(s.transpose(1, 2), min(SMOOTH, T), stride=1).transpose(1, 2)
    power = torch.fft.rfft(centred, dim=1).abs().pow(2)[:, 1:]  # no DC: the mean is a feature already
    bands = torch.stack([b.sum(dim=1) for b in power.tensor_split(min(BANDS, power.shape[1]), dim=1)], 2)
    share = power / (power.sum(dim=1, keepdim=True) + EPS)
    entropy = -(share * (share + EPS).log()).sum(dim=1) / math.log(power.shape[1])
    dominant = (power.argmax(dim=1).to(s.dtype) + 1) / power.shape[1]
    stats = [
        mean, std, s.amin(dim=1), s.amax(dim=1), median, centred.abs().mean(dim=1), q75 - q25,
        s.pow(2).mean(dim=1), z.pow(3).mean(dim=1), z.pow(4).mean(dim=1),
        jerk.abs().mean(dim=1), jerk.std(dim=1, correction=0), smooth.amin(dim=1), smooth.amax(dim=1),
        dominant, entropy,
    ]  # fmt: skip
    return torch.cat([torch.stack(stats, dim=2), torch.log1p(bands)], dim=2).flatten(1)  # [B, C' * F]


def _per_triplet(axes: torch.Tensor) -> torch.Tensor:
    """axes [B, T, K, 3] -> [B, 6K]: the correlations xy, xz, yz and the mean vector's unit direction."""
    centred = axes - axes.mean(dim=1, keepdim=True)
    unit = centred / (centred.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
    corr = torch.stack([(unit[..., i] * unit[..., j]).sum(dim=1) for i, j in ((0, 1), (0, 2), (1, 2))], 2)
    mean = axes.mean(dim=1)
    direction = mean / (mean.norm(dim=-1, keepdim=True) + EPS)
    return torch.cat([corr.flatten(1), direction.flatten(1)], dim=1)
