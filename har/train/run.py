"""One training run end to end: resolve model + preset + overrides, train, test once, checkpoint.

Shared by ``har train``, ``har evaluate --repeats``, the benchmarks and (later) the tuner's trials.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from torch import nn

from har import __version__
from har.errors import BadInput, validation_message
from har.metrics import scalars
from har.models import build, count_parameters, preset
from har.models.vision import scratch_note
from har.train.data import load_train_data
from har.train.dataset import TrainData
from har.train.loop import FitResult, TrainConfig, evaluate, fit, seed_everything


@dataclass
class RunSpec:
    dataset: str
    sensors: str = "all"
    model: str = "resnet1d"
    preset: str | None = None  # preset name without the model prefix
    hparams: dict[str, Any] | None = None  # overrides of the preset / builder defaults
    train: dict[str, Any] | None = None  # overrides of the preset's training settings
    val_fraction: float = 0.2
    split_seed: int = 0


@dataclass
class RunResult:
    model: nn.Module
    data: TrainData
    fit: FitResult
    hparams: dict[str, Any]
    config: TrainConfig
    val: dict[str, Any]
    test: dict[str, Any] | None
    parameters: int


def resolve(spec: RunSpec) -> tuple[dict[str, Any], TrainConfig]:
    """Architecture hyper-parameters and training config: builder defaults < preset < overrides."""
    hparams: dict[str, Any] = {}
    train: dict[str, Any] = {}
    if spec.preset:
        chosen = preset(f"{spec.model}:{spec.preset}")
        hparams.update(chosen.hparams)
        train.update(chosen.train)
    hparams.update(spec.hparams or {})
    train.update(spec.train or {})
    try:
        return hparams, TrainConfig.model_validate(train)
    except ValidationError as exc:
        raise BadInput(validation_message("training settings", "", exc)) from exc


def run(
    spec: RunSpec,
    prepared_dir: Path = Path("data/prepared"),
    data: TrainData | None = None,
    test: bool = True,
    report=None,
    on_batch=None,
) -> RunResult:
    """Train one model; evaluate the selected epoch on validation and (once) on the test split."""
    hparams, cfg = resolve(spec)
    data = data or load_train_data(
        prepared_dir, spec.dataset, spec.sensors, spec.val_fraction, spec.split_seed
    )
    seed_everything(cfg.seed)  # the initial weights depend on the seed too, not on earlier runs

    note = scratch_note(spec.model, hparams)
    if note:
        print(note, file=sys.stderr, flush=True)
    model = build(spec.model, len(data.channels), len(data.classes), data.window, **hparams)
    result = fit(
        model, data.splits["train"], data.splits["val"], data.classes, cfg, report=report, on_batch=on_batch
    )
    val = evaluate(model, *data.splits["val"], data.classes, "val/")
    test_metrics = evaluate(model, *data.splits["test"], data.classes, "test/") if test else None
    return RunResult(model, data, result, hparams, cfg, val, test_metrics, count_parameters(model))


def checkpoint_info(spec: RunSpec, result: RunResult) -> dict[str, Any]:
    """Everything needed to rebuild the model and apply it to new data (see har.train.checkpoint)."""
    return make_checkpoint_info(
        spec,
        result.data,
        result.hparams,
        result.config,
        result.fit.best_epoch,
        result.fit.history,
        {**scalars(result.val), **scalars(result.test or {})},
        result.parameters,
    )


def make_checkpoint_info(
    spec: RunSpec,
    data: TrainData,
    hparams: dict[str, Any],
    config: TrainConfig,
    best_epoch: int,
    history: list[dict[str, float]],
    metrics: dict[str, float],
    parameters: int,
) -> dict[str, Any]:
    return {
        "model": spec.model,
        "kind": data.kind,  # windows | images
        "image": data.reader_options if data.kind == "images" else None,  # size (resize), crop
        "preset": spec.preset,
        "hparams": hparams,
        "dataset": data.dataset,
        "sensors": data.sensors,
        "channels": data.channels,
        "classes": data.classes,
        "window": data.window,
        "rate_hz": data.rate_hz,
        "normalization": {
            "mean": data.mean.tolist(),
            "std": data.std.tolist(),
            "fitted_on": "train (val carved out)",
        },
        "val_subjects": data.val_subjects,
        "val_missing": data.val_missing,
        "val_fraction": spec.val_fraction,
        "split_seed": spec.split_seed,
        "data_version": data.data_version,
        "reader_options": data.reader_options,
        "train_config": config.model_dump(),
        "best_epoch": best_epoch,
        "history": history,
        "metrics": metrics,
        "parameters": parameters,
        "har_version": __version__,
    }
