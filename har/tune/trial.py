"""One trial of a study, on a Ray worker: train one sampled configuration, report every epoch.

Each report carries a resumable state (weights, optimiser, history) as a Tune checkpoint, so a retried
trial (lost node) or a resumed study (killed driver) continues from its last epoch. Trials never touch
MLflow: the driver's ``har.tracking.trial_logger.TrialLogger`` mirrors their reports.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from pyarrow import fs as pafs
from ray import tune

from har.models import build, count_parameters
from har.train.latency import latency_ms
from har.train.loop import fit, seed_everything
from har.train.run import RunSpec, resolve
from har.tune.study import PERMUTATION, StudySpec
from har.tune.system_metrics import SystemSampler

STATE_FILE = "state.pt"


def trial_device() -> str:
    """The device Ray gave this trial: its GPU (Ray sets CUDA_VISIBLE_DEVICES, so it is ``cuda``; trials
    with a fraction of one GPU share that device), else the CPU, even on a node that has GPUs."""
    return "cuda" if ray.get_gpu_ids() else "cpu"


class OldestNewerCheckpoint:
    """Mixin of the trial's Tune trainable (``run_trial.__mixins__``) for a study resumed after its driver
    was killed: Tune's last experiment snapshot may name a checkpoint that the trial has since replaced
    (one is kept per trial). The trial then continues from the oldest checkpoint newer than that one: its
    epoch reached the driver (that is what deleted the older one), so no epoch is skipped or logged twice.
    """

    def restore(self, checkpoint_path):
        checkpoint = getattr(checkpoint_path, "checkpoint", None)
        if checkpoint is not None:
            replacement = oldest_newer_checkpoint(checkpoint)
            if replacement is not None:
                checkpoint_path.checkpoint = replacement
        return super().restore(checkpoint_path)  # type: ignore[misc]


def oldest_newer_checkpoint(checkpoint: tune.Checkpoint) -> tune.Checkpoint | None:
    """None while ``checkpoint`` exists; else the oldest newer sibling ``checkpoint_NNNNNN`` on its storage."""
    filesystem, path = checkpoint.filesystem, checkpoint.path.rstrip("/")
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        return None
    parent, _, name = path.rpartition("/")
    index = _checkpoint_index(name)
    found = filesystem.get_file_info(pafs.FileSelector(parent, allow_not_found=True))
    newer = sorted(
        (_checkpoint_index(f.base_name), f.path)
        for f in found
        if f.type == pafs.FileType.Directory and _checkpoint_index(f.base_name) > index
    )
    return tune.Checkpoint(newer[0][1], filesystem=filesystem) if newer else None


def _checkpoint_index(name: str) -> int:
    match = re.fullmatch(r"checkpoint_(\d+)", name)
    return int(match.group(1)) if match else -1


def run_trial(config: dict[str, Any], payload: dict[str, Any]) -> None:
    """Train one sampled configuration of its permutation (``payload["data"]``: permutation -> training
    data); report metrics and a resumable state after every epoch."""
    study: StudySpec = payload["study"]
    data = payload["data"][config[PERMUTATION]]
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

    sampler = SystemSampler(study.system_metrics) if study.system_metrics > 0 else None

    def metrics(row: dict[str, float], snapshot) -> dict[str, Any]:
        last = row["epoch"] >= cfg.max_epochs or snapshot["since_best"] >= cfg.patience
        at_best = next((r for r in snapshot["history"] if r["epoch"] == snapshot["best_epoch"]), {})
        return {
            **row,
            **fixed,
            **{f"best/{k}": v for k, v in at_best.items() if k.startswith("val/")},
            study.objective_key: snapshot["best_value"],
            "best_epoch": snapshot["best_epoch"],
            "last": int(last),  # 1: the trial ends by itself (not stopped by ASHA)
            **(sampler.take() if sampler else {}),
        }

    def on_epoch(epoch: int, row: dict[str, float], state) -> None:
        snapshot = state()
        with tempfile.TemporaryDirectory(prefix="har-trial-") as folder:
            torch.save(snapshot, Path(folder) / STATE_FILE)
            tune.report(metrics(row, snapshot), checkpoint=tune.Checkpoint.from_directory(folder))

    if resume is not None and resume["history"]:
        final = metrics(resume["history"][-1], resume)
        if final["last"]:  # restored from its final epoch: say how it ended (Tune's last result may be older)
            tune.report(final)
            return
    train, val = data.splits["train"], data.splits["val"]
    try:
        fit(model, train, val, data.classes, cfg, on_epoch=on_epoch, resume=resume)
    finally:
        if sampler:
            sampler.stop()


run_trial.__mixins__ = (OldestNewerCheckpoint,)  # type: ignore[attr-defined]
