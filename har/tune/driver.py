"""``har tune``: one study = for each sensor permutation, a Ray Tune search (Optuna TPE, define-by-run,
with ASHA early stopping) whose winner is tested once, logged to MLflow and registered.

Trials run anywhere on the Ray cluster: the driver loads the prepared windows once and ships the
training and validation arrays through the object store (the test split never leaves the driver).
Trials report every epoch with a resumable checkpoint, so a lost node or a killed driver costs at most
one epoch per trial. The driver is the only MLflow writer (``har.tracking``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import ray
from ray import tune

from har.errors import BadInput, HarError
from har.models.vision import scratch_note
from har.report.dvc_template import ensure_in_dvc_repo
from har.tracking.datasets import dataset_inputs
from har.tracking.store import resolve_uri
from har.tracking.study_runs import PermutationRun, StudyTracker
from har.train.data import load_train_data
from har.train.loop import TrainConfig
from har.tune.cluster import init_ray, runtime_defaults, storage_root
from har.tune.optuna_store import fail_orphans, open_storage, storage_url, study_name
from har.tune.outputs import PermutationOutcome, write_metrics
from har.tune.permutations import PermutationScheduler, PermutationSearch, PerPermutation
from har.tune.progress import StudyProgress
from har.tune.search import make_tuner, scheduler, searcher
from har.tune.simulate import simulated_trial
from har.tune.storage_fs import storage_filesystem
from har.tune.study import PERMUTATION, Distribution, StudySpec
from har.tune.trial import run_trial
from har.tune.warm_start import warm_start_points
from har.tune.winner import best_result, finish_winner, finite, pareto_front, scored_results, trial_seconds


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
    sequential: bool = False  # one Tune run per permutation, one after another (else all at once)
    simulate: list[float] | None = None  # epoch seconds to draw from: simulated trials (benchmarks, tests)


def check_study(study: StudySpec, options: TuneOptions) -> str:
    """What ``run_study`` refuses before it starts Ray (the study file was checked on load): unprepared
    data, an unusable Optuna storage. A batch job runs this before it starts its cluster (``--check``)."""
    if options.simulate is None:
        _check_dataset(study, options)
    uri = resolve_uri(options.tracking_uri)
    optuna_url = storage_url(options.optuna_storage, uri)
    open_storage(optuna_url)
    return (
        f"study {study.name}: {len(study.permutations)} permutation(s) of {study.dataset}, {study.budget.trials} "
        f"trials each; tracking {uri}; searches {optuna_url}; storage {storage_root(options.storage_path)}"
    )


def run_study(study: StudySpec, options: TuneOptions) -> list[PermutationOutcome]:
    """Every permutation of ``study``: search (all at once, or one after another with ``sequential``),
    test each winner once, log, register."""
    runtime_defaults()
    if options.simulate is None:
        _check_dataset(study, options)  # bad input fails before anything is created
    else:
        print("simulated training (--simulate): trials sleep and report made-up curves; no winner is tested "
              "or registered", flush=True)  # fmt: skip
    uri = resolve_uri(options.tracking_uri)
    optuna_url = storage_url(options.optuna_storage, uri)
    search_db = open_storage(optuna_url)  # bad input fails before Ray starts
    tracker = StudyTracker(uri, study.name)
    study_run = tracker.study_run_id(options.resume)
    storage = storage_root(options.storage_path)
    init_ray(options.address, options.num_cpus, options.num_gpus)
    study = _without_absent_gpus(study)
    outcomes: dict[str, PermutationOutcome] = {}
    pending = []
    for perm in study.permutations:
        done = tracker.completed(_tags(study, study_run, perm))
        if done is None:
            pending.append(perm)
            continue
        print(f"[{perm}] already complete in study run {study_run}: skipped")
        outcomes[perm] = PermutationOutcome(
            permutation=done.permutation, parent_run=done.parent_run, trials=0, failed=0,
            best_trial=done.best_trial, registered=done.registered, version=done.version,
            val=done.val, test=done.test,
        )  # fmt: skip
    setup = Setup(study, study_run, tracker, storage, search_db, options)
    groups = _groups(setup, pending)
    how = "at once" if any(len(perms) > 1 for _, perms in groups) else "one after another"
    print(
        f"study {study.name} (run {study_run}{', resumed' if options.resume else ''}): {len(study.permutations)} permutation(s) of {study.dataset} "
        f"searched {how}, {study.budget.trials} trials each, {study.concurrency} at a time; tracking {uri}; "
        f"storage {storage}; searches {optuna_url}"
    )
    for name, perms in groups:
        outcomes.update(_search(setup, name, perms))
    if options.metrics_out:
        ordered = [outcomes[p] for p in study.permutations]
        write_metrics(options.metrics_out, study, study_run, ordered)
        try:  # `dvc plots show` of the plot data written above, offline
            ensure_in_dvc_repo()
        except Exception as exc:  # a convenience: never fails a finished study
            print(f"  warning: the offline DVC plots template was not written: {exc}", flush=True)
    return [outcomes[p] for p in study.permutations]


@dataclass
class Setup:
    """What every search of one study run shares."""

    study: StudySpec
    study_run: str
    tracker: StudyTracker
    storage: str
    search_db: optuna.storages.RDBStorage
    options: TuneOptions

    def experiment_path(self, name: str) -> str:
        return f"{self.storage.rstrip('/')}/{name}"


def _groups(setup: Setup, pending: list[str]) -> list[tuple[str, list[str]]]:
    """The Tune runs of a study run, each a name and the permutations it searches: one for all pending
    permutations (``<study>-<run>``), or one per permutation (``<study>-<run>-<permutation>``) with
    --sequential or a single one. A resumed study run continues as it started, whatever the flag says."""
    if not pending:
        return []
    together = f"{setup.study.name}-{setup.study_run}"
    apart = [(f"{together}-{p.replace('+', '_')}", [p]) for p in pending]
    if setup.options.resume:
        if tune.Tuner.can_restore(setup.experiment_path(together)):
            return [(together, pending)]
        if any(tune.Tuner.can_restore(setup.experiment_path(name)) for name, _ in apart):
            return apart
    return apart if setup.options.sequential or len(pending) == 1 else [(together, pending)]


def _tags(study: StudySpec, study_run: str, perm: str) -> dict[str, str]:
    return {"har.study": study.name, "har.study_run": study_run, "har.permutation": perm}


def _check_dataset(study: StudySpec, options: TuneOptions) -> None:
    folder = options.prepared_dir / study.dataset
    if not (folder / "meta.json").is_file():
        raise BadInput(
            f"{folder}: not prepared; run 'har data prepare {study.dataset}' (or 'dvc repro prepare@{study.dataset}')"
        )


def _without_absent_gpus(study: StudySpec) -> StudySpec:
    """A study asking fractional GPUs on a cluster that has none would wait forever: its trials run on
    CPU instead, and the driver says so (a cluster that gains GPU nodes later needs a new run)."""
    if study.resources.gpu == 0 or ray.cluster_resources().get("GPU", 0) > 0:
        return study
    print(f"no GPU in the Ray cluster: trials run on CPU ({study.resources.cpu:g} each; resources.gpu "
          f"{study.resources.gpu:g} not requested)", flush=True)  # fmt: skip
    return study.model_copy(update={"resources": study.resources.model_copy(update={"gpu": 0.0})})


def _search(setup: Setup, name: str, perms: list[str]) -> dict[str, PermutationOutcome]:
    """One Tune run over ``perms`` (each its own searcher, scheduler, budget and parent run), then each
    permutation's winner finished."""
    study, options = setup.study, setup.options
    started = time.perf_counter()
    tracked = {p: _start_parent(setup, p) for p in perms}
    data = {} if options.simulate is not None else {
        p: load_train_data(options.prepared_dir, study.dataset, p, study.val_fraction, study.split_seed) for p in perms
    }  # fmt: skip
    trainable = tune.with_resources(_trainable(study, data, options.simulate),
                                    {"cpu": study.resources.cpu, "gpu": study.resources.gpu})  # fmt: skip
    path = setup.experiment_path(name)
    for perm, d in data.items():
        held_out = f"val subjects {d.val_subjects}" if d.kind == "windows" else "stratified split of prepare"
        unit = "images" if d.kind == "images" else "windows"
        print(
            f"[{perm}] {len(d.splits['train'][1])} train / {len(d.splits['val'][1])} val {unit} ({held_out})"
        )
        if warning := d.val_warning():
            print(f"[{perm}] warning: {warning}", flush=True)
            tracked[perm].set_tag("har.val_warning", warning)
        if d.kind == "images":
            _scratch_notes(study, perm)
    print(f"Tune experiment {path}", flush=True)
    progress = StudyProgress(study, perms, live=options.live)
    if options.resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=False,
                                   storage_filesystem=storage_filesystem(setup.storage))  # fmt: skip
        progress = _restored_progress(tuner) or progress
    else:
        loggers = PerPermutation(
            {
                p: t.trial_logger(
                    study.describe,
                    study.objective_key,
                    study.budget.max_epochs,
                    _data_inputs(options, data.get(p), p, ("train", "val")),
                )
                for p, t in tracked.items()
            }
        )
        searches = {
            p: searcher(
                study, setup.search_db, _optuna_name(setup, p), warm_start_points(study, setup.search_db, p)
            )
            for p in perms
        }
        search = PermutationSearch(searches, study.budget.trials, study.objective_key, study.mode)
        schedule = PermutationScheduler({p: scheduler(study) for p in perms})
        tuner = make_tuner(study, search, schedule, trainable, name, setup.storage, [loggers, progress],
                           num_samples=study.budget.trials * len(perms))  # fmt: skip
    try:
        grid = tuner.fit()
    except BaseException as exc:  # Tune itself failed: no run may stay RUNNING; --resume continues
        _close(progress, tracked.values(), failed=exc)
        raise
    _close(progress, tracked.values())
    results = {p: [r for r in grid if (r.config or {}).get(PERMUTATION) == p] for p in perms}
    for perm in perms:
        known = {(r.metrics or {}).get("trial_id", "") for r in results[perm]}
        if fail_orphans(setup.search_db, _optuna_name(setup, perm), known):
            print(
                f"[{perm}] Optuna trials orphaned by a killed driver marked FAIL in {_optuna_name(setup, perm)}"
            )
    for t in tracked.values():
        t.wait(seconds=5)  # still down: a clean error, and --resume logs the winner
    short = [p for p in perms if len(results[p]) < study.budget.trials]
    # SIGINT / SIGUSR1: Tune stopped early. A trial it stopped then counts as terminated, but only a trial
    # that ended by itself or by ASHA has a last result marked done (the experiment snapshot keeps the
    # others running, and --resume continues them)
    unfinished = [r for r in grid if not r.error and not (r.metrics or {}).get("done")]
    if short or unfinished or grid.num_terminated + grid.num_errors < len(grid):
        for t in tracked.values():
            t.end("interrupted")
        ended = len(grid) - len(unfinished)
        raise HarError(
            f"[{', '.join(perms)}] study interrupted after {ended} of {study.budget.trials * len(perms)} trials; "
            f"continue with: har tune --study {study.name} --resume"
        )
    outcomes, failures = {}, []
    for perm in perms:
        try:
            if options.simulate is None:
                outcomes[perm] = _finish(setup, perm, results[perm], data[perm], tracked[perm])
            else:
                outcomes[perm] = _simulated_winner(setup, perm, results[perm], tracked[perm])
        except HarError as exc:
            failures.append(str(exc))
    wall = time.perf_counter() - started
    for perm, outcome in outcomes.items():
        outcome.wall_seconds = wall
        tracked[perm].end(
            "complete",
            metrics={
                "study/wall_seconds": wall,
                "study/trial_seconds": outcome.trial_seconds,
                "study/failed_trials": outcome.failed,
            },
        )
    if failures:  # the others are complete (a resume does not register them again)
        raise HarError("; ".join(failures))
    return outcomes


def _trainable(study: StudySpec, data: dict, simulate: list[float] | None):
    """The trial function with what it needs, put once in Ray's object store: the training and validation
    arrays of each permutation (the test split never leaves the driver), or the simulation's settings."""
    if simulate is not None:
        patience = study.train.get("patience")
        payload = {
            "epoch_seconds": simulate, "seed": study.seed, "objective_key": study.objective_key,
            "metric": study.metric, "max_epochs": study.budget.max_epochs,
            "patience": patience if isinstance(patience, int) else TrainConfig.model_fields["patience"].default,
        }  # fmt: skip
        return tune.with_parameters(simulated_trial, payload=payload)
    shipped = {
        p: dataclasses.replace(d, splits={k: d.splits[k] for k in ("train", "val")}) for p, d in data.items()
    }
    return tune.with_parameters(run_trial, payload={"study": study, "data": shipped})


def _simulated_winner(setup: Setup, perm: str, results: list, tracked: PermutationRun) -> PermutationOutcome:
    """The best simulated trial, said and logged on the parent run; never tested, never registered."""
    study = setup.study
    outcome = _counted(perm, results, tracked)
    ok = [r for r in results if not r.error and finite((r.metrics or {}).get(study.objective_key))]
    if ok:
        best = best_result(study, ok)
        outcome.best_trial, outcome.model = best.metrics["trial_id"], study.decode(best.config).model
        outcome.val = {k[len("best/") :]: v for k, v in best.metrics.items() if k.startswith("best/val/")}
        print(f"[{perm}] simulated winner {outcome.best_trial} ({outcome.model}): {study.metric} "
              f"{best.metrics[study.objective_key]:.4f}; not tested, not registered", flush=True)  # fmt: skip
    return outcome


def _counted(perm: str, results: list, tracked: PermutationRun) -> PermutationOutcome:
    """A permutation's outcome with its trials counted and their time summed (no winner yet)."""
    outcome = PermutationOutcome(
        perm, tracked.parent_id, trials=len(results), failed=sum(1 for r in results if r.error)
    )
    outcome.trial_seconds = sum(trial_seconds(r) for r in results)
    return outcome


def _optuna_name(setup: Setup, perm: str) -> str:
    return study_name(setup.study.name, setup.study_run, perm)


def _start_parent(setup: Setup, perm: str) -> PermutationRun:
    """The permutation's MLflow parent run (reused on resume), with its search's settings as params."""
    study = setup.study
    tracked = setup.tracker.start_permutation(
        _tags(study, setup.study_run, perm),
        run_name=f"{perm} ({setup.study_run}{', simulated' if setup.options.simulate is not None else ''})",
        params={
            "dataset": study.dataset,
            "permutation": perm,
            "metric": study.metric,
            "trials": study.budget.trials,
            "max_epochs": study.budget.max_epochs,
            "concurrency": study.concurrency,
            "seed": study.seed,
            "models": ",".join(sorted(study.models)),
            "optuna_study": _optuna_name(setup, perm),
            "simulated": setup.options.simulate is not None,
        },
    )
    if exp := os.environ.get("DVC_EXP_NAME"):  # run by 'dvc exp run': the experiment that holds its params
        tracked.set_tag("dvc.exp_name", exp)
    return tracked


def _finish(setup: Setup, perm: str, results: list, data, tracked: PermutationRun) -> PermutationOutcome:
    """A permutation whose trials all ended: its winner (best on validation) tested once, logged, registered."""
    study, options = setup.study, setup.options
    outcome = _counted(perm, results, tracked)
    ok = scored_results(study, results)
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
    winner_run = tracked.trial_run(outcome.best_trial)
    if winner_run is not None:  # the winner's one test: its test data joins its train / validation inputs
        tracked.log_inputs(winner_run, _data_inputs(options, data, perm, ("test",)))
    return outcome


def _data_inputs(options: TuneOptions, data, perm: str, splits: tuple[str, ...]) -> list[dict]:
    """MLflow dataset inputs of a permutation's data (har.tracking.datasets); none in a simulated study."""
    if data is None:
        return []
    windows = {name: len(labels) for name, (_, labels) in data.splits.items()}
    folder = options.prepared_dir / data.dataset
    return dataset_inputs(data.dataset, perm, data.data_version, folder, windows, splits)


def _scratch_notes(study: StudySpec, perm: str) -> None:
    """Say which image backbones of the study start from random weights (no 'weights' given)."""
    for name, choice in study.models.items():
        fixed = {k: v for k, v in choice.space.items() if not isinstance(v, Distribution)}
        note = scratch_note(name, fixed)
        if note:
            print(f"[{perm}] {note}", flush=True)


def _close(progress: StudyProgress, tracked, failed: BaseException | None = None) -> None:
    """The progress display, then the MLflow runs Tune left open. Never raises."""
    try:
        progress.close()
    except Exception as exc:  # the terminal went away: nothing to show it on
        print(f"  warning: progress display: {exc}", flush=True)
    for run in tracked:
        run.close_trials(failed)


def _restored_progress(tuner) -> StudyProgress | None:
    """The progress callback Tune restored with the experiment (so ``close`` reaches the live one)."""
    internal = getattr(tuner, "_local_tuner", None)
    callbacks = getattr(getattr(internal, "_run_config", None), "callbacks", None) or []
    return next((cb for cb in callbacks if isinstance(cb, StudyProgress)), None)
