"""Each window's per-channel mean and std beside a network's pooled features (``input_stats``).

Its own module so that an architecture using it imports no other architecture (importing one registers
it, which would reorder the zoo).
"""

from __future__ import annotations

import torch


def with_window_stats(pooled: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``pooled`` [B, F] followed by each window's per-channel mean and std (x: [B, T, C]): the static
    posture cue, the gravity direction in the total-acceleration channels, handed to the classifier."""
    return torch.cat([pooled, x.mean(dim=1), x.std(dim=1, correction=0)], dim=1)
