"""``har tune``: one study = for each sensor permutation, a Ray Tune search (Optuna TPE, define-by-run,
with ASHA early stopping) whose winner is tested once, logged to MLflow and registered.

Trials run anywhere on the Ray cluster: the driver loads the prepared windows once and ships the
training and validation arrays through the object store (the test split never leaves the driver).
Trials report every epoch with a resumable checkpoint, so a lost node or a killed driver costs at most
one epoch per trial. The driver is the only MLflow writer (``har.tracking``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from ray import tune

from har.errors import BadInput, HarError
from har.models.vision import scratch_note
from har.report.dvc_template import ensure_in_dvc_repo
from har.tracking.store import resolve_uri
from har.tracking.study_runs import PermutationRun, StudyTracker
from har.train.data import load_train_data
from har.tune.cluster import init_ray, runtime_defaults, storage_root
from har.tune.optuna_store import fail_orphans, open_storage, storage_url, study_name
from har.tune.outputs import PermutationOutcome, write_metrics
from har.tune.progress import StudyProgress
from har.tune.search import make_tuner, searcher
from har.tune.study import Distribution, StudySpec
from har.tune.trial import run_trial
from har.tune.warm_start import warm_start_points
from har.tune.winner import best_result, finish_winner, pareto_front, scored_results, trial_seconds


@dataclass
class Search:
    """One permutation's Optuna study: its database and its name (``<study>/<study run>/<permutation>``)."""

    storage: optuna.storages.RDBStorage
    name: str


@dataclass
class TuneOptions:
    address: str | None = None
    storage_path: str | None = None
    tracking_uri: str | None = None
    optuna_storage: str | None = None  # RDB URL; None: $HAR_OPTUNA_STORAGE, else optuna.db beside mlflow.db
    resume: bool = False
    prepared_dir: Path = Path("data/prepared")
    params_path: Path = Path("params.yaml")
    num_cpus: int | None = None
    num_gpus: int | None = None
    metrics_out: Path | None = None
    register: bool = True
    live: bool | None = None  # the live progress table: None = when stdout is a terminal


def run_study(study: StudySpec, options: TuneOptions) -> list[PermutationOutcome]:
    """Every permutation of ``study``: search, test the winner once, log, register."""
    runtime_defaults()
    _check_dataset(study, options)  # bad input fails before anything is created
    uri = resolve_uri(options.tracking_uri)
    optuna_url = storage_url(options.optuna_storage, uri)
    search_db = open_storage(optuna_url)  # bad input fails before Ray starts
    tracker = StudyTracker(uri, study.name)
    study_run = tracker.study_run_id(options.resume)
    storage = storage_root(options.storage_path)
    init_ray(options.address, options.num_cpus, options.num_gpus)
    print(
        f"study {study.name} (run {study_run}): {len(study.permutations)} permutation(s) of {study.dataset}, "
        f"{study.budget.trials} trials each, {study.concurrency} at a time; tracking {uri}; storage {storage}; "
        f"searches {optuna_url}"
    )
    outcomes = []
    for perm in study.permutations:
        tags = {"har.study": study.name, "har.study_run": study_run, "har.permutation": perm}
        done = tracker.completed(tags)
        if done is not None:
            print(f"[{perm}] already complete in study run {study_run}: skipped")
            outcomes.append(PermutationOutcome(
                permutation=done.permutation, parent_run=done.parent_run, trials=0, failed=0,
                best_trial=done.best_trial, registered=done.registered, version=done.version,
                val=done.val, test=done.test,
            ))  # fmt: skip
            continue
        search = Search(search_db, study_name(study.name, study_run, perm))
        outcomes.append(_run_permutation(study, perm, study_run, tags, tracker, storage, search, options))
    if options.metrics_out:
        write_metrics(options.metrics_out, study, study_run, outcomes)
        try:  # `dvc plots show` of the plot data written above, offline
            ensure_in_dvc_repo()
        except Exception as exc:  # a convenience: never fails a finished study
            print(f"  warning: the offline DVC plots template was not written: {exc}", flush=True)
    return outcomes


def _check_dataset(study: StudySpec, options: TuneOptions) -> None:
    folder = options.prepared_dir / study.dataset
    if not (folder / "meta.json").is_file():
        raise BadInput(
            f"{folder}: not prepared; run 'har data prepare {study.dataset}' (or 'dvc repro prepare@{study.dataset}')"
        )


def _run_permutation(
    study: StudySpec,
    perm: str,
    study_run: str,
    tags: dict[str, str],
    tracker: StudyTracker,
    storage: str,
    search: Search,
    options: TuneOptions,
) -> PermutationOutcome:
    started = time.perf_counter()
    tracked = tracker.start_permutation(
        tags,
        run_name=f"{perm} ({study_run})",
        params={
            "dataset": study.dataset,
            "permutation": perm,
            "metric": study.metric,
            "trials": study.budget.trials,
            "max_epochs": study.budget.max_epochs,
            "concurrency": study.concurrency,
            "seed": study.seed,
            "models": ",".join(sorted(study.models)),
            "optuna_study": search.name,
        },
    )
    data = load_train_data(options.prepared_dir, study.dataset, perm, study.val_fraction, study.split_seed)
    shipped = dataclasses.replace(data, splits={k: data.splits[k] for k in ("train", "val")})
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, payload={"study": study, "data": shipped}),
        {"cpu": study.resources.cpu, "gpu": study.resources.gpu},
    )
    name = f"{study.name}-{study_run}-{perm.replace('+', '_')}"
    path = f"{storage.rstrip('/')}/{name}"
    held_out = (
        f"val subjects {data.val_subjects}" if data.kind == "windows" else "stratified split of prepare"
    )
    unit = "images" if data.kind == "images" else "windows"
    print(
        f"[{perm}] {len(data.splits['train'][1])} train / {len(data.splits['val'][1])} val {unit} "
        f"({held_out}); Tune experiment {path}"
    )
    if data.kind == "images":
        _scratch_notes(study, perm)
    progress = StudyProgress(study, perm, live=options.live)
    if options.resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=False)
        progress = _restored_progress(tuner) or progress
    else:
        logger = tracked.trial_logger(study.describe, study.objective_key, study.budget.max_epochs)
        callbacks = [logger, progress]
        first = warm_start_points(study, search.storage, perm)
        search_alg = searcher(study, search.storage, search.name, first)
        tuner = make_tuner(study, search_alg, trainable, name, storage, callbacks)
    try:
        grid = tuner.fit()
    except BaseException as exc:  # Tune itself failed: no run may stay RUNNING; --resume continues
        _close(progress, tracked, failed=exc)
        raise
    _close(progress, tracked)
    if fail_orphans(search.storage, search.name, {(r.metrics or {}).get("trial_id", "") for r in grid}):
        print(f"[{perm}] Optuna trials orphaned by a killed driver marked FAIL in {search.name}", flush=True)
    tracked.wait(seconds=5)  # still down: a clean error, and --resume logs the winner
    if grid.num_terminated + grid.num_errors < study.budget.trials:  # SIGINT / SIGUSR1: Tune stopped early
        tracked.end("interrupted")
        raise HarError(
            f"[{perm}] study interrupted after {grid.num_terminated + grid.num_errors} of {study.budget.trials} "
            f"trials; continue with: har tune --study {study.name} --resume"
        )
    outcome = PermutationOutcome(
        perm, tracked.parent_id, trials=len(grid), failed=sum(1 for r in grid if r.error)
    )
    outcome.trial_seconds = sum(trial_seconds(r) for r in grid)
    ok = scored_results(study, grid)
    if not ok:
        tracked.end("failed")
        raise HarError(
            f"[{perm}] every trial failed ({outcome.failed} of {outcome.trials}); see the child runs of "
            f"MLflow run {tracked.parent_id} (tag har.error)"
        )
    best = best_result(study, ok)
    outcome.pareto = pareto_front(study, ok)
    plots_dir = options.metrics_out.parent / "plots" if options.metrics_out else None
    finish_winner(study, perm, best, data, tracked, outcome, plots_dir, options.register)
    outcome.wall_seconds = time.perf_counter() - started
    tracked.end(
        "complete",
        metrics={
            "study/wall_seconds": outcome.wall_seconds,
            "study/trial_seconds": outcome.trial_seconds,
            "study/failed_trials": outcome.failed,
        },
    )
    return outcome


def _scratch_notes(study: StudySpec, perm: str) -> None:
    """Say which image backbones of the study start from random weights (no 'weights' given)."""
    for name, choice in study.models.items():
        fixed = {k: v for k, v in choice.space.items() if not isinstance(v, Distribution)}
        note = scratch_note(name, fixed)
        if note:
            print(f"[{perm}] {note}", flush=True)


def _close(progress: StudyProgress, tracked: PermutationRun, failed: BaseException | None = None) -> None:
    """The progress display, then the MLflow runs Tune left open. Never raises."""
    try:
        progress.close()
    except Exception as exc:  # the terminal went away: nothing to show it on
        print(f"  warning: progress display: {exc}", flush=True)
    tracked.close_trials(failed)


def _restored_progress(tuner) -> StudyProgress | None:
    """The progress callback Tune restored with the experiment (so ``close`` reaches the live one)."""
    internal = getattr(tuner, "_local_tuner", None)
    callbacks = getattr(getattr(internal, "_run_config", None), "callbacks", None) or []
    return next((cb for cb in callbacks if isinstance(cb, StudyProgress)), None)
