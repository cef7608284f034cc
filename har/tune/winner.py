"""The winner of one permutation's search: chosen on validation, rebuilt at its best epoch, tested
once on the test split, logged on its trial run and registered (through ``har.tracking``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from har.errors import BadInput, HarError
from har.metrics import scalars
from har.models import build, count_parameters, restore_hparams
from har.tracking.registry import model_name
from har.tracking.store import git_commit
from har.tracking.study_runs import PermutationRun
from har.train.checkpoint import check_channels, load_checkpoint
from har.train.dataset import TrainData
from har.train.loop import evaluate
from har.train.run import RunSpec, make_checkpoint_info, resolve
from har.tune.outputs import PermutationOutcome, write_plot_data
from har.tune.study import StudySpec
from har.tune.trial import STATE_FILE, oldest_newer_checkpoint


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def trial_seconds(result) -> float:
    """Time inside the trial (Ray's time_total_s): data, build, training, validation, checkpoints."""
    value = (result.metrics or {}).get("time_total_s")
    return float(value) if finite(value) else 0.0


def scored_results(study: StudySpec, grid) -> list:
    """Trials that ended without an error, with a checkpoint and a finite objective."""
    return [r for r in grid if not r.error and r.checkpoint and finite(r.metrics.get(study.objective_key))]


def best_result(study: StudySpec, results: list):
    """The trial with the best objective (the best validation epoch so far of each trial); with a second
    objective that sets ``within``, the trial best on that objective among those within that much of the
    best score (validation only: the test split still sees the champion alone)."""
    sign = 1 if study.mode == "max" else -1
    best = max(results, key=lambda r: sign * r.metrics[study.objective_key])
    second = study.objectives[0] if study.objectives else None
    if second is None or second.within is None:
        return best
    floor = sign * best.metrics[study.objective_key] - second.within
    close = [
        r
        for r in results
        if sign * r.metrics[study.objective_key] >= floor and finite(r.metrics.get(second.metric))
    ]
    if not close:
        return best
    s2 = 1 if second.mode == "max" else -1
    # ties on the second objective go to the better score
    return max(close, key=lambda r: (s2 * r.metrics[second.metric], sign * r.metrics[study.objective_key]))


def pareto_front(study: StudySpec, results: list) -> list[dict[str, Any]]:
    """Non-dominated trials on (metric, secondary objective) when the study has one."""
    if not study.objectives:
        return []
    second = study.objectives[0]
    points = [
        (r.metrics[study.objective_key], r.metrics.get(second.metric), r)
        for r in results
        if finite(r.metrics.get(second.metric))
    ]
    s1 = 1 if study.mode == "max" else -1
    s2 = 1 if second.mode == "max" else -1
    front = []
    for a1, a2, r in points:
        dominated = any(
            s1 * b1 >= s1 * a1 and s2 * b2 >= s2 * a2 and (s1 * b1 > s1 * a1 or s2 * b2 > s2 * a2)
            for b1, b2, _ in points
        )
        if not dominated:
            front.append(
                {
                    "trial": r.metrics.get("trial_id", ""),
                    "model": r.config.get("model"),
                    study.metric: a1,
                    second.metric: a2,
                }
            )
    return sorted(front, key=lambda p: p[second.metric])


def finish_winner(study: StudySpec, perm: str, best, data: TrainData, tracked: PermutationRun,
                  outcome: PermutationOutcome, plots_dir: Path | None, register: bool) -> None:  # fmt: skip
    """Rebuild the winner (a Tune result) at its best epoch, test it once, log artifacts, register it."""
    setup = study.decode(best.config)
    spec = RunSpec(
        data.dataset,
        data.sensors,
        setup.model,
        setup.preset,
        setup.hparams,
        setup.train,
        study.val_fraction,
        study.split_seed,
    )
    hparams, cfg = resolve(spec)
    # after a killed driver's resume the result may name a checkpoint the trial has since replaced
    checkpoint = oldest_newer_checkpoint(best.checkpoint) or best.checkpoint
    with checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / STATE_FILE, weights_only=True)
    model = build(
        setup.model,
        len(data.channels),
        len(data.classes),
        data.window,
        **restore_hparams(setup.model, hparams),
    )
    model.load_state_dict(state["best_state"])
    val = evaluate(model, *data.splits["val"], data.classes, "val/")
    test = evaluate(model, *data.splits["test"], data.classes, "test/")  # the one test evaluation
    trial_id = best.metrics["trial_id"]
    run_id = tracked.trial_run(trial_id)
    if run_id is None:
        raise HarError(f"[{perm}] the winning trial {trial_id} has no MLflow run")
    info = make_checkpoint_info(
        spec,
        data,
        hparams,
        cfg,
        state["best_epoch"],
        state["history"],
        {**scalars(val), **scalars(test)},
        count_parameters(model),
    )
    info["study"] = study.name
    info["trial_id"] = trial_id
    example = data.splits["val"][0][:2]  # batch 2: torch.export keeps the batch dimension dynamic
    model_uri = tracked.log_winner(
        run_id, trial_id, model, info, test, example, {**scalars(val), **scalars(test)}
    )
    if plots_dir is not None:
        write_plot_data(plots_dir, perm, state["history"], test, data.classes)
    outcome.best_trial, outcome.model = trial_id, setup.model
    outcome.val, outcome.test = scalars(val), {k: v for k, v in scalars(test).items()}
    second = study.objectives[0] if study.objectives else None
    chosen = (
        f"; chosen for {second.metric} {best.metrics[second.metric]:.4g}, the {'lowest' if second.mode == 'min' else 'highest'} "
        f"within {second.within:g} of the best validation score"
        if second is not None and second.within is not None and finite(best.metrics.get(second.metric))
        else ""
    )
    print(
        f"[{perm}] winner {trial_id} ({setup.model}): val/macro_f1 {val['val/macro_f1']:.4f}, "
        f"test/accuracy {test['test/accuracy']:.4f}, test/macro_f1 {test['test/macro_f1']:.4f}{chosen}"
    )
    if not register:
        return
    score_key = "test/loss" if study.metric == "val/loss" else study.metric.replace("val/", "test/")
    tags = {
        "study": study.name,
        "model": setup.model,
        "preset": setup.preset or "",
        "params_hash": setup.params_hash(),
        "git_commit": git_commit(),
        "data_version": data.data_version,
        "dataset": data.dataset,
        "permutation": data.sensors,
        "trial_id": trial_id,
        **{k: f"{v:.6f}" for k, v in scalars(test).items()},
    }
    test_split = f"{data.data_version}|{data.dataset}|{data.sensors}"

    def rescore(folder: Path) -> float:
        return score_checkpoint(folder, data, score_key)

    reg = tracked.register(
        model_name(data.dataset, perm),
        model_uri,
        run_id,
        tags,
        score_key,
        float(test[score_key]),
        test_split,
        rescore_champion=rescore,
    )
    outcome.registered, outcome.version, outcome.champion, outcome.decision, outcome.tied = (
        reg.name,
        reg.version,
        reg.champion_version,
        reg.decision,
        reg.tied,
    )
    print(
        f"[{perm}] registered {reg.name} v{reg.version}: {reg.decision}; champion is v{reg.champion_version}"
    )


def score_checkpoint(folder: Path, data, score_key: str) -> float:
    """A registered champion's score on this run's test split, with its own normalisation."""

    model, info = load_checkpoint(folder)
    check_channels(info, data.channels, str(folder))
    X, y = data.splits["test"]
    if data.kind == "images":  # the same transform for every image model (ImageNet statistics)
        if int(info["window"]) != data.window:
            raise BadInput(
                f"{folder}: the champion reads {info['window']}-pixel crops, this split {data.window}"
            )
        return float(evaluate(model, X, y, info["classes"], "test/")[score_key])
    raw = X * data.std + data.mean
    mean = np.asarray(info["normalization"]["mean"], dtype=np.float32)
    std = np.asarray(info["normalization"]["std"], dtype=np.float32)
    metrics = evaluate(model, ((raw - mean) / std).astype(np.float32), y, info["classes"], "test/")
    return float(metrics[score_key])
