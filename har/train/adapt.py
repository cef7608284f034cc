"""Unsupervised per-subject adaptation of BatchNorm statistics (AdaBN; Li et al., Revisiting Batch
Normalization for Practical Domain Adaptation, 2016).

A model trained on some subjects meets a new subject whose sensor placement and movement style shift
the activations' distribution. AdaBN re-estimates every BatchNorm layer's running mean and variance on
the new subject's own windows (no labels, no gradient step) and predicts that subject with them; the
learned weights are untouched. This is transductive: a subject's windows are all seen before any of
them is classified, as a deployed model would calibrate on a user's unlabeled recent data. Results with
and without it are reported apart (``har cv --adapt``, ``har evaluate --adapt subject``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from har.errors import BadInput

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _running_norms(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers that keep running statistics: what adaptation re-estimates."""
    return [m for m in model.modules() if isinstance(m, _NORMS) and m.track_running_stats]


def check_adaptable(model: nn.Module, name: str) -> None:
    if not _running_norms(model):
        raise BadInput(
            f"model {name!r}: has no BatchNorm layer with running statistics, so there is nothing to adapt; "
            "drop --adapt or choose a model with BatchNorm (e.g. resnet1d)"
        )


def adapt_batchnorm(model: nn.Module, X: np.ndarray, batch_size: int = 512) -> nn.Module:
    """A copy of ``model`` (eval mode) whose BatchNorm running statistics are estimated on ``X``; dropout
    stays off while they are collected and no weight changes.

    Batches are drawn in a fixed shuffled order (windows come in time order, so one activity per batch
    would bias the variances low) and weighted by their size; a subject usually fits in one batch."""
    adapted = copy.deepcopy(model)
    norms = _running_norms(adapted)
    for norm in norms:
        norm.reset_running_stats()
    adapted.eval()
    for norm in norms:
        norm.train()
    device = next(adapted.parameters()).device
    order = np.random.default_rng(0).permutation(len(X))
    seen = 0
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            rows = np.sort(order[i : i + batch_size])
            if len(rows) == 1 and seen:  # a lone trailing window: no batch variance to add
                continue
            for norm in norms:  # running = weighted mean over the batches so far
                norm.momentum = len(rows) / (seen + len(rows))
            adapted(torch.from_numpy(np.ascontiguousarray(X[rows])).to(device))
            seen += len(rows)
    return adapted.eval()


def predict_adapted(
    model: nn.Module,
    X: np.ndarray,
    groups: np.ndarray,
    predict: Callable[[nn.Module, np.ndarray], np.ndarray],
    batch_size: int = 512,
    calibrate: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Logits [N, K] where each group's windows (one subject, one recording) are predicted by the model
    adapted on that group alone. ``predict(model, X) -> logits`` is the plain prediction function;
    ``calibrate(rows) -> rows`` picks the group's windows the statistics come from (default: all)."""
    if len(groups) != len(X):
        raise ValueError(f"{len(groups)} group labels for {len(X)} windows")
    out: np.ndarray | None = None
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        used = rows if calibrate is None else calibrate(rows)
        logits = predict(adapt_batchnorm(model, X[used], batch_size), X[rows])
        if out is None:
            out = np.empty((len(X), logits.shape[1]), dtype=logits.dtype)
        out[rows] = logits
    return out if out is not None else np.empty((0, 0), dtype=np.float32)
