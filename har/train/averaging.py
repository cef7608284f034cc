"""An exponential moving average of a model's weights (``TrainConfig.ema_decay``).

The averaged copy changes slowly, so its accuracy moves less from epoch to epoch than the raw weights'
(on UCI HAR the raw weights of one run swing by several points between epochs). BatchNorm running
statistics are averaged with the parameters (``use_buffers``), so the copy needs no extra pass over the
data. Early in training the decay is ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the
average is not dominated by the random initial weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def exponential_average(model: nn.Module, decay: float) -> AveragedModel:
    """A copy of ``model`` to be updated with ``.update_parameters(model)`` after every optimiser step."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        rate = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        for a, c in zip(averaged, current, strict=True):
            if a.is_floating_point():
                a.lerp_(c, rate)
            else:  # integer buffers (BatchNorm's num_batches_tracked): follow the model
                a.copy_(c)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
