"""Learning-rate schedules set per batch by the trainer (``TrainConfig.schedule``).

``plateau`` (default) leaves the learning rate to ReduceLROnPlateau on the validation loss.
``cosine`` anneals it per batch from ``lr`` to ``min_lr`` over ``max_epochs`` after a linear warm-up
of ``warmup_epochs``; ``step`` multiplies it by ``step_gamma`` every ``step_epochs`` epochs (the workout
tutorial's StepLR: x0.1 after 7 epochs); ``none`` keeps ``lr``. All but ``plateau`` are pure functions
of the step, so a resumed run continues them exactly.
"""

from __future__ import annotations

import math

import torch


def cosine_lr(lr: float, min_lr: float, step: int, total: int, warmup: int = 0) -> float:
    """Learning rate at ``step`` (0-based) of ``total`` steps, with ``warmup`` linear warm-up steps."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, cfg, epoch: int, batch: int, n_batches: int) -> None:
    """Set the learning rate of every parameter group for ``batch`` (0-based) of ``epoch`` (1-based)."""
    if cfg.schedule == "plateau":
        return
    if cfg.schedule == "cosine":
        step = (epoch - 1) * n_batches + batch
        value = cosine_lr(cfg.lr, cfg.min_lr, step, cfg.max_epochs * n_batches, cfg.warmup_epochs * n_batches)
    elif cfg.schedule == "step":  # the tutorial's StepLR: x step_gamma every step_epochs epochs
        value = cfg.lr * cfg.step_gamma ** ((epoch - 1) // cfg.step_epochs)
    else:
        value = cfg.lr
    for group in optimizer.param_groups:
        group["lr"] = value
