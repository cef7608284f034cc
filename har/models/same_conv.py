"""``SameConv1d``: a Conv1d whose output keeps the input's length for any kernel size.

PyTorch's ``padding="same"`` pads an even kernel asymmetrically through a padded copy of the input and
warns about it on every model build. This layer does the same thing openly: symmetric padding of
``(k - 1) // 2`` (times the dilation) plus the one extra zero on the right, so the outputs and the
``state_dict`` keys are exactly those of ``nn.Conv1d(..., padding="same")``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SameConv1d(nn.Conv1d):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> None:
        total = kwargs.get("dilation", 1) * (kernel_size - 1)
        super().__init__(in_channels, out_channels, kernel_size, padding=total // 2, **kwargs)
        # an odd total: one more zero on the right, as PyTorch's own "same" adds it (bit-identical output)
        self.extra_pad = (0, total % 2) if total % 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra_pad is not None:
            x = F.pad(x, self.extra_pad)
        return super().forward(x)
