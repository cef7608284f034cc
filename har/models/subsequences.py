"""Split windows into equal sub-sequences (the tutorial's CNN-LSTM and ConvLSTM read 4 x 32 samples)."""

from __future__ import annotations

import torch


def sub_length(window: int, n_steps: int) -> int:
    """Samples per sub-sequence; a remainder is dropped from the start of the window."""
    return window // n_steps


def sub_sequences(x: torch.Tensor, n_steps: int) -> torch.Tensor:
    """[B, T, C] -> [B, n_steps, C, L] using the last n_steps * L samples of each window."""
    b, t, c = x.shape
    length = sub_length(t, n_steps)
    return x[:, t - n_steps * length :].reshape(b, n_steps, length, c).transpose(2, 3)
