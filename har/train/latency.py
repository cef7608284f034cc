"""Inference latency of a model for one window (batch 1, one CPU thread): the cost a wearable pays."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def latency_ms(
    model: nn.Module,
    window: int,
    channels: int,
    calls: int = 200,
    warmup: int = 10,
    shape: tuple[int, ...] | None = None,
) -> float:
    """Median wall time of one forward pass on a [1, window, channels] input (or [1, *shape]: an image
    [3, H, W]), in milliseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    was_training = model.training
    device = next(model.parameters()).device
    model = model.cpu().eval()
    x = torch.randn(1, *(shape or (window, channels)))
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
        model.to(device).train(was_training)
    return 1000 * statistics.median(times)
