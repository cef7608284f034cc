"""The training loop: Adam/RMSProp, L2 or weight decay, ReduceLROnPlateau, early stopping, clipping.

``fit`` trains on the training split, selects the best epoch on the validation split (subjects carved
from training subjects) and calls ``report(epoch, metrics)`` after every epoch so that a tuner can record
and stop it. Seeded and deterministic on CPU: the same seed gives the same metrics.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from har.errors import HarError
from har.metrics import classification_metrics
from har.train import augment, schedule
from har.train.adapt import predict_adapted
from har.train.averaging import exponential_average

MONITOR_MODE = {"val/macro_f1": "max", "val/accuracy": "max", "val/loss": "min"}


class TrainConfig(BaseModel):
    """Training settings; presets set the published ones, CLI flags and studies override them."""

    model_config = ConfigDict(extra="forbid")
    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr: float = Field(0.001, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    rho: float = Field(0.9, gt=0, lt=1, description="RMSProp smoothing constant")
    weight_decay: float = Field(0.0, ge=0, description="coupled weight decay in the optimiser")
    l2: float = Field(0.0, ge=0, description="explicit L2 penalty l2 * sum(w^2) / 2 (TensorFlow's l2_loss)")
    l2_skip_biases: bool = Field(
        False, description="the L2 penalty leaves out 1-D parameters (biases, normalisation gains and shifts)"
    )
    batch_size: int = Field(64, gt=0)
    max_epochs: int = Field(50, gt=0)
    patience: int = Field(10, gt=0, description="early stopping: epochs without improvement of monitor")
    keep: Literal["best", "last"] = Field(
        "best",
        description="weights kept: the best validation epoch (by monitor), or the last epoch (no early "
        "stopping; for a schedule that anneals the learning rate, and for a refit with nothing to validate)",
    )
    monitor: Literal["val/macro_f1", "val/accuracy", "val/loss"] = "val/macro_f1"
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(3, ge=0)
    min_lr: float = Field(1e-5, ge=0)
    clip_grad_norm: float | None = Field(None, gt=0)
    class_weighting: Literal["none", "balanced"] = "none"
    seed: int = 0
    num_threads: int | None = Field(None, gt=0, description="CPU threads (default: PyTorch's choice)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(
        False, description="mixed precision on CUDA (float16 autocast, scaled gradients); ignored on CPU"
    )
    augment: list[str] = Field(
        default_factory=list,
        description="training-time augmentations (har.train.augment), e.g. scale, jitter=0.03",
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the training loss")
    schedule: Literal["plateau", "cosine", "step", "none"] = "plateau"
    warmup_epochs: int = Field(0, ge=0, description="cosine schedule: linear warm-up epochs")
    step_epochs: int = Field(7, gt=0, description="step schedule: epochs between learning-rate drops")
    step_gamma: float = Field(0.1, gt=0, lt=1, description="step schedule: factor of each drop")
    image_augment: Literal["none", "flip", "published", "strong"] = Field(
        "published", description="image datasets: training augmentation (har.train.images)"
    )
    loader_workers: int = Field(0, ge=0, description="image datasets: decoding processes (0: in the trainer)")
    ema_decay: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="per-step decay of an exponential moving average of the weights (0: off); validation, "
        "epoch selection and the kept weights use the average (har.train.averaging)",
    )

    @field_validator("augment")
    @classmethod
    def _known_augmentations(cls, value: list[str]) -> list[str]:
        for spec in value:
            augment.parse(spec)
        return value


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best: dict[str, float]
    stopped_early: bool
    seconds_per_epoch: float
    state_dict: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)


class StopTraining(Exception):
    """Raised by a report callback to end training (e.g. an ASHA decision)."""


TrainState = dict[str, Any]
"""Everything needed to continue ``fit`` after an interruption: weights, optimiser, scheduler, sampler
state, history and the best epoch so far. Only tensors, numbers, strings, lists and dicts, so it
round-trips through ``torch.save`` / ``torch.load(weights_only=True)``."""
EpochHook = Callable[[int, dict[str, float], Callable[[], TrainState]], None]


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise HarError("device 'cuda' requested but no CUDA device is available; use --device cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            model.parameters(), lr=cfg.lr, alpha=cfg.rho, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    return torch.optim.Adam(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )


def _class_weights(y: np.ndarray, n_classes: int, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


@torch.inference_mode()  # no autograd bookkeeping at all (a batch-1 call of a small model feels it)
def predict_logits(
    model: nn.Module, X: np.ndarray, batch_size: int = 512, device: torch.device | None = None
) -> np.ndarray:
    """Logits [N, K] for normalised windows X [N, T, C] (or an image set), in eval mode."""
    device = device or next(model.parameters()).device
    if not isinstance(X, np.ndarray):  # images: decoded per batch, large activations
        batch_size = min(batch_size, 64)
    model.eval()
    out = [
        model(torch.from_numpy(X[i : i + batch_size]).to(device)).float().cpu()
        for i in range(0, len(X), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.empty((0, 0), dtype=np.float32)


def evaluate(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    prefix: str,
    loss_fn: nn.Module | None = None,
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on (X, y), keys prefixed (``val/``, ``test/``); includes ``<prefix>loss``.
    With ``groups`` (a subject per window) each group is predicted with BatchNorm statistics adapted on
    its own windows (har.train.adapt)."""
    logits = predict_logits(model, X) if groups is None else predict_adapted(model, X, groups, predict_logits)
    metrics = classification_metrics(y, logits.argmax(axis=1), classes, prefix=prefix)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    metrics[f"{prefix}loss"] = float(loss_fn(torch.from_numpy(logits), torch.from_numpy(y)))
    return metrics


def _copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def fit(
    model: nn.Module,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    cfg: TrainConfig,
    report: Callable[[int, dict[str, float]], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: EpochHook | None = None,
    resume: TrainState | None = None,
) -> FitResult:
    """Train ``model``; keep the weights of the best validation epoch (by ``cfg.monitor``), or of the
    last epoch with ``cfg.keep == "last"``.

    ``on_epoch(epoch, row, state)`` is the tuner's hook: ``state()`` builds a ``TrainState`` to
    checkpoint; ``resume`` continues from such a state (same config), epoch numbers included.
    Either hook may raise ``StopTraining``.
    """
    seed_everything(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = pick_device(cfg.device)
    model.to(device)
    cuda = device.type == "cuda"
    lazy = not isinstance(train[0], np.ndarray)  # images: decoded and augmented batch by batch
    X_train = train[0] if lazy else torch.from_numpy(train[0])
    y_train = torch.from_numpy(train[1])
    if cuda:  # page-locked host memory: the batches' copies to the GPU overlap the computation
        y_train = y_train.pin_memory()
        X_train = X_train if lazy else X_train.pin_memory()
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and cuda)  # disabled: a plain optimiser step
    weights = _class_weights(train[1], len(classes), cfg.class_weighting)
    loss_fn = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))
    optimizer = _optimizer(model, cfg)
    penalised = [p for p in model.parameters() if p.requires_grad and not (cfg.l2_skip_biases and p.ndim < 2)]
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience, min_lr=cfg.min_lr
    )
    averaged = exponential_average(model, cfg.ema_decay) if cfg.ema_decay else None
    judged = averaged.module if averaged is not None else model  # the weights validated and kept
    generator = torch.Generator().manual_seed(cfg.seed)
    mode = MONITOR_MODE[cfg.monitor]
    history: list[dict[str, float]] = []
    best_value, best_epoch, best_state, since_best = None, 0, None, 0
    n_batches = math.ceil(len(X_train) / cfg.batch_size)
    epoch_times: list[float] = []
    stopped_early = False
    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        if averaged is not None:
            averaged.load_state_dict(resume["averaged"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        generator.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])  # dropout and augmentation draw from it
        history = list(resume["history"])
        best_value, best_epoch, since_best = resume["best_value"], resume["best_epoch"], resume["since_best"]
        best_state = resume["best_state"]
        epoch_times = [row["epoch_seconds"] for row in history]
        first_epoch = int(resume["epoch"]) + 1
        if "scaler" in resume:
            scaler.load_state_dict(resume["scaler"])

    def state(epoch: int) -> TrainState:
        return {
            "epoch": epoch,
            "model": _copy(model.state_dict()),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": history,
            "best_value": best_value,
            "best_epoch": best_epoch,
            "since_best": since_best,
            "best_state": best_state,
            **({"averaged": _copy(averaged.state_dict())} if averaged is not None else {}),
            **({"scaler": scaler.state_dict()} if scaler.is_enabled() else {}),
        }

    for epoch in range(first_epoch, cfg.max_epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(X_train), generator=generator)
        total, seen = 0.0, 0
        chunks = [order[b * cfg.batch_size : (b + 1) * cfg.batch_size] for b in range(n_batches)]
        if lazy:
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator)) if cfg.loader_workers else 0
            images = X_train.loader(chunks, cfg.image_augment, cfg.loader_workers, seed)
        for b, idx in enumerate(chunks):
            xb = next(images) if lazy else X_train[idx]
            xb, yb = xb.to(device, non_blocking=True), y_train[idx].to(device, non_blocking=True)
            if not lazy:
                xb = augment.apply(xb, cfg.augment, generator)  # no random draws when cfg.augment is empty
            schedule.set_lr(optimizer, cfg, epoch, b, n_batches)  # cosine / step / none; plateau: per epoch
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
                logits = model(xb)
            loss = nn.functional.cross_entropy(
                logits.float(), yb, weight=loss_fn.weight, label_smoothing=cfg.label_smoothing
            )
            if cfg.l2:
                loss = loss + cfg.l2 * sum((p**2).sum() for p in penalised) / 2
            if not torch.isfinite(loss):
                raise HarError(
                    f"training diverged: loss is {loss.item()} at epoch {epoch}, batch {b + 1}; lower the learning rate"
                )
            scaler.scale(loss).backward()
            if cfg.clip_grad_norm:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            if averaged is not None:
                averaged.update_parameters(model)
            total += loss.item() * len(idx)
            seen += len(idx)
            if on_batch:
                on_batch(b + 1, n_batches)
        epoch_times.append(time.perf_counter() - start)
        val_metrics = evaluate(judged, val[0], val[1], classes, "val/", loss_fn)
        row = {
            "epoch": epoch,
            "train/loss": total / max(seen, 1),
            "val/loss": val_metrics["val/loss"],
            "val/accuracy": val_metrics["val/accuracy"],
            "val/macro_f1": val_metrics["val/macro_f1"],
            "val/weighted_f1": val_metrics["val/weighted_f1"],
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_seconds": epoch_times[-1],
        }
        history.append(row)
        if cfg.schedule == "plateau":
            scheduler.step(row["val/loss"])
        if cfg.keep == "last" or _improved(row[cfg.monitor], best_value, mode):
            best_value, best_epoch, since_best = row[cfg.monitor], epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in judged.state_dict().items()})
        else:
            since_best += 1
        try:
            if report is not None:
                report(epoch, row)
            if on_epoch is not None:
                on_epoch(epoch, row, lambda e=epoch: state(e))
        except StopTraining:
            stopped_early = True
            break
        if since_best >= cfg.patience:
            stopped_early = epoch < cfg.max_epochs
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    return FitResult(
        history=history,
        best_epoch=best_epoch,
        best=history[best_epoch - 1],
        stopped_early=stopped_early,
        seconds_per_epoch=float(np.mean(epoch_times)),
        state_dict=best_state,
    )
