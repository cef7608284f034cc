"""One trial of a study, on a Ray worker: train one sampled configuration, report every epoch.

Each report carries a resumable state (weights, optimiser, history) as a Tune checkpoint, so a retried
trial (lost node) or a resumed study (killed driver) continues from its last epoch. Trials never touch
MLflow: the driver's ``har.tracking.trial_logger.TrialLogger`` mirrors their reports.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from har.models import build, count_parameters
from har.train.latency import latency_ms
from har.train.loop import fit, seed_everything
from har.train.run import RunSpec, resolve
from har.tune.study import StudySpec

STATE_FILE = "state.pt"


def trial_device() -> str:
    """The device Ray gave this trial: its GPU (Ray sets CUDA_VISIBLE_DEVICES, so it is ``cuda``; trials
    with a fraction of one GPU share that device), else the CPU, even on a node that has GPUs."""
    return "cuda" if ray.get_gpu_ids() else "cpu"


def run_trial(config: dict[str, Any], payload: dict[str, Any]) -> None:
    """Train one sampled configuration; report metrics and a resumable state after every epoch."""
    study: StudySpec = payload["study"]
    data = payload["data"]
    setup = study.decode(config)
    spec = RunSpec(data.dataset, data.sensors, setup.model, setup.preset, setup.hparams, setup.train)
    hparams, cfg = resolve(spec)
    cfg = cfg.model_copy(update={"num_threads": max(1, int(study.resources.cpu)), "device": trial_device()})
    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    model = build(setup.model, len(data.channels), len(data.classes), data.window, **hparams)
    fixed = {
        "parameters": count_parameters(model),
        "latency_ms": latency_ms(
            model,
            data.window,
            len(data.channels),
            calls=10 if data.kind == "images" else 30,
            warmup=3,
            shape=data.input_shape(),
        ),
        "node_id": ray.get_runtime_context().get_node_id(),
    }
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume = torch.load(Path(folder) / STATE_FILE, weights_only=True)

    def on_epoch(epoch: int, row: dict[str, float], state) -> None:
        snapshot = state()
        last = epoch >= cfg.max_epochs or snapshot["since_best"] >= cfg.patience
        at_best = next((r for r in snapshot["history"] if r["epoch"] == snapshot["best_epoch"]), {})
        metrics = {
            **row,
            **fixed,
            **{f"best/{k}": v for k, v in at_best.items() if k.startswith("val/")},
            study.objective_key: snapshot["best_value"],
            "best_epoch": snapshot["best_epoch"],
            "last": int(last),  # 1: the trial ends by itself (not stopped by ASHA)
        }
        with tempfile.TemporaryDirectory(prefix="har-trial-") as folder:
            torch.save(snapshot, Path(folder) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    train, val = data.splits["train"], data.splits["val"]
    fit(model, train, val, data.classes, cfg, on_epoch=on_epoch, resume=resume)
