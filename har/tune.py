"""``har tune``: one study = for each sensor permutation, a Ray Tune search (Optuna TPE, define-by-run,
with ASHA early stopping) whose winner is tested once, logged to MLflow and registered.

Trials run anywhere on the Ray cluster: the driver loads the prepared windows once and ships the
training and validation arrays through the object store (the test split never leaves the driver).
Trials report every epoch with a resumable checkpoint, so a lost node or a killed driver costs at most
one epoch per trial. The driver is the only MLflow writer (``TrialLogger``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune import Callback

from har.errors import BadInput, HarError
from har.progress import StudyProgress, trial_error_text, trial_outcome
from har.study import StudySpec, TrialSetup

STATE_FILE = "state.pt"
DEFAULT_STORAGE = Path("runs") / "tune"
STORAGE_ENV = "HAR_STORAGE_PATH"
LOGGED_KEYS = (
    "train/loss",
    "val/loss",
    "val/accuracy",
    "val/macro_f1",
    "val/weighted_f1",
    "lr",
    "epoch_seconds",
    "latency_ms",
    "parameters",
    "best/val/loss",
    "best/val/accuracy",
    "best/val/macro_f1",
    "best/val/weighted_f1",
    "time_total_s",  # Ray: seconds inside the trial so far (resumes included)
)


# -- inside a trial (runs on a Ray worker) ------------------------------------------------------
def run_trial(config: dict[str, Any], payload: dict[str, Any]) -> None:
    """Train one sampled configuration; report metrics and a resumable state after every epoch."""
    import ray
    import torch
    from ray import tune

    from har.experiment import RunSpec, resolve
    from har.latency import latency_ms
    from har.models import build, count_parameters
    from har.train import fit, seed_everything

    study: StudySpec = payload["study"]
    data = payload["data"]
    setup = study.decode(config)
    spec = RunSpec(data.dataset, data.sensors, setup.model, setup.preset, setup.hparams, setup.train)
    hparams, cfg = resolve(spec)
    cfg = cfg.model_copy(update={"num_threads": max(1, int(study.resources.cpu))})
    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    model = build(setup.model, len(data.channels), len(data.classes), data.window, **hparams)
    fixed = {
        "parameters": count_parameters(model),
        "latency_ms": latency_ms(
            model, data.window, len(data.channels), calls=10 if data.kind == "images" else 30, warmup=3,
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


# -- the driver's MLflow writer -----------------------------------------------------------------
class TrialLogger(Callback):
    """Mirrors trials into MLflow child runs of the permutation's parent run.

    Picklable (Tune stores it with the experiment for ``--resume``): the client is made on first use,
    and runs are found again by their ``ray.trial_id`` tag, so a resumed study reuses its child runs
    and logs only epochs that are not there yet.

    Never stops a study: every write is queued and delivered in order; while the tracking server is
    unreachable the queue waits (trials keep training) and is retried every ``RETRY_SECONDS``; at the
    end of the experiment what still could not be delivered is reported as lost, by trial and count."""

    RETRY_SECONDS = float(os.environ.get("HAR_TRACKING_RETRY_SECONDS", "10"))
    FINAL_WAIT_SECONDS = float(os.environ.get("HAR_TRACKING_FINAL_WAIT", "60"))

    def __init__(self, tracking_uri: str, experiment_id: str, parent_id: str, study: StudySpec, total: int):
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_id = parent_id
        self.study = study
        self.total = total
        self._reset()

    def _reset(self) -> None:
        self._client = None
        self._runs: dict[str, str] = {}
        self._steps: dict[str, int] = {}
        self._queue: list[tuple[str, int, Callable[[], None]]] = []  # (what, metric values, write)
        self._down_since: float | None = None
        self._last_try = 0.0
        self.lost: list[str] = []

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_client", "_runs", "_steps", "_queue", "_down_since", "_last_try", "lost"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    @property
    def client(self):
        if self._client is None:
            from har.tracking import connect

            self._client = connect(self.tracking_uri)
        return self._client

    # -- the delivery queue ---------------------------------------------------------------------
    def _send(self, what: str, write: Callable[[], None], values: int = 0) -> None:
        self._queue.append((what, values, write))
        self._flush()

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._down_since is not None and not force and now - self._last_try < self.RETRY_SECONDS:
            return
        self._last_try = now
        while self._queue:
            what, _, write = self._queue[0]
            try:
                write()
            except Exception as exc:
                if not _transient(exc):  # a bad request will not get better: report it, go on
                    print(f"  warning: MLflow refused {what}: {str(exc).splitlines()[0][:200]}", flush=True)
                    self.lost.append(what)
                    self._queue.pop(0)
                    continue
                # the write may have reached the server with only its answer lost: forget what is known to be
                # logged, so each run's last epoch is read back before anything is sent again (no duplicates)
                self._steps.clear()
                if self._down_since is None:
                    self._down_since = now
                    print(f"  warning: MLflow at {self.tracking_uri} is unreachable ({str(exc).splitlines()[0][:120]}); "
                          f"trials keep training, their records are queued and retried every "
                          f"{self.RETRY_SECONDS:.0f} s", flush=True)  # fmt: skip
                return
            self._queue.pop(0)
        if self._down_since is not None:
            print(
                f"  MLflow reachable again after {now - self._down_since:.0f} s: queued records delivered",
                flush=True,
            )
            self._down_since = None

    def on_step_end(self, iteration, trials, **info):
        if self._queue:
            self._flush()

    def on_experiment_end(self, trials, **info):
        known = {t.trial_id for t in trials}
        self._send("the sweep of orphaned runs", lambda: self._sweep_orphans(known))
        deadline = time.monotonic() + self.FINAL_WAIT_SECONDS
        while self._queue and time.monotonic() < deadline:
            self._flush(force=True)
            if self._queue:
                time.sleep(min(self.RETRY_SECONDS, max(0.0, deadline - time.monotonic())))
        if self._queue:
            values = sum(v for _, v, _ in self._queue)
            trials_hit = sorted({what.split()[-1] for what, _, _ in self._queue})
            self.lost.extend(what for what, _, _ in self._queue)
            print(f"  error: MLflow at {self.tracking_uri} stayed unreachable: {len(self._queue)} records "
                  f"({values} metric values) of trials {', '.join(trials_hit)} were NOT logged; the trials' own "
                  f"results are kept in the Tune storage (result.json per trial)", flush=True)  # fmt: skip
            self._queue.clear()

    def _sweep_orphans(self, known: set[str]) -> None:
        """A driver killed between creating a trial and Tune's next experiment snapshot leaves a child
        run that the restored experiment does not know (Tune samples a replacement). Such runs are
        tagged and soft-deleted (restorable in MLflow), so the study holds one child run per trial."""
        from har.tracking import child_runs

        for run in child_runs(self.client, self.experiment_id, self.parent_id):
            if run.data.tags.get("ray.trial_id") not in known:
                run_id = run.info.run_id
                self.client.set_tag(run_id, "har.outcome", "orphaned: the driver died before Tune recorded this "
                                    "trial; a new trial replaced it")  # fmt: skip
                if run.info.status == "RUNNING":
                    self.client.set_terminated(run_id, status="KILLED")
                self.client.delete_run(run_id)
                print(f"  run {run_id} of trial {run.data.tags.get('ray.trial_id')} was orphaned by the killed "
                      "driver: tagged and moved to MLflow's deleted runs", flush=True)  # fmt: skip

    # -- writes ---------------------------------------------------------------------------------
    def _run(self, trial) -> str:
        from har.tracking import create_child, find_runs, last_step, log_params

        trial_id = trial.trial_id
        if trial_id in self._runs:
            return self._runs[trial_id]
        found = find_runs(
            self.client, self.experiment_id, {"mlflow.parentRunId": self.parent_id, "ray.trial_id": trial_id}
        )
        if found:
            run_id = found[0].info.run_id
            self._steps[run_id] = last_step(self.client, run_id, "val/loss")
            if found[0].info.status != "RUNNING":
                self.client.update_run(run_id, status="RUNNING")
        else:
            setup = self.study.decode(trial.config)
            run_id = create_child(
                self.client,
                self.experiment_id,
                self.parent_id,
                run_name=f"{self.study.label(trial.config)} [{trial_id}]",
                tags={
                    "ray.trial_id": trial_id,
                    "har.model": setup.model,
                    "har.params_hash": setup.params_hash(),
                },
            )
            log_params(self.client, run_id, flat_params(setup))
            self._steps[run_id] = 0
        self._runs[trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info):
        self._send(f"the run of trial {trial.trial_id}", lambda: self._run(trial))

    def on_trial_restore(self, iteration, trials, trial, **info):
        self._send(f"the run of trial {trial.trial_id}", lambda: self._run(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        metrics = {k: result[k] for k in LOGGED_KEYS if isinstance(result.get(k), int | float)}
        metrics[self.study.objective_key] = result[self.study.objective_key]
        node = str(result.get("node_id", ""))
        self._send(
            f"epoch {epoch} of trial {trial.trial_id}",
            lambda: self._log_epoch(trial, epoch, metrics, node),
            len(metrics),
        )

    def _log_epoch(self, trial, epoch: int, metrics: dict[str, float], node: str) -> None:
        from har.tracking import last_step, log_metrics

        run_id = self._run(trial)
        if run_id not in self._steps:  # after a connection failure: what did arrive?
            self._steps[run_id] = last_step(self.client, run_id, "val/loss")
        if epoch <= self._steps[run_id]:
            return  # already logged (before an interruption, or by a write whose answer was lost)
        if self._steps[run_id] == 0:  # the tag first: a retried first epoch cannot skip it
            self.client.set_tag(run_id, "ray.node_id", node)
        log_metrics(self.client, run_id, metrics, step=epoch)
        self._steps[run_id] = epoch

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = dict(trial.last_result or {})
        self._finish(trial, "FINISHED", trial_outcome(result, self.study.budget.max_epochs), result)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "FAILED", "failed", dict(trial.last_result or {}), error=trial_error_text(trial))

    def on_trial_recover(self, iteration, trials, trial, **info):
        retries, error = str(getattr(trial, "num_failures", "?")), trial_error_text(trial)[:5000]

        def write() -> None:
            run_id = self._run(trial)
            self.client.set_tag(run_id, "har.retries", retries)
            self.client.set_tag(run_id, "har.last_error", error)

        self._send(f"the retry of trial {trial.trial_id}", write)

    def _finish(self, trial, status: str, ended: str, result: dict[str, Any], error: str = "") -> None:
        def write() -> None:
            run_id = self._run(trial)
            self.client.set_tag(run_id, "har.outcome", ended)
            if error:
                self.client.set_tag(run_id, "har.error", error[:5000])
            self.client.set_terminated(run_id, status=status)

        self._send(f"the end of trial {trial.trial_id}", write)


def _transient(exc: Exception) -> bool:
    """Connection trouble (server down, restarting, database locked): worth retrying later."""
    text = f"{type(exc).__name__}: {exc}"
    markers = ("Connection", "connection", "Max retries exceeded", "timed out", "Timeout", "database is locked",
               "503", "502", "504", "Temporary failure", "OperationalError")  # fmt: skip
    return isinstance(exc, OSError | ConnectionError | TimeoutError) or any(m in text for m in markers)


def flat_params(setup: TrialSetup) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": setup.model,
        "preset": setup.preset or "",
        "params_hash": setup.params_hash(),
    }
    params.update({f"hparams.{k}": v for k, v in setup.hparams.items()})
    params.update({f"train.{k}": v for k, v in setup.train.items()})
    return params


# -- the driver ---------------------------------------------------------------------------------
@dataclass
class PermutationOutcome:
    permutation: str
    parent_run: str
    trials: int
    failed: int
    best_trial: str = ""
    model: str = ""
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    registered: str = ""
    version: str = ""
    champion: str = ""
    decision: str = ""
    pareto: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0
    trial_seconds: float = 0.0


@dataclass
class TuneOptions:
    address: str | None = None
    storage_path: str | None = None
    tracking_uri: str | None = None
    resume: bool = False
    prepared_dir: Path = Path("data/prepared")
    params_path: Path = Path("params.yaml")
    num_cpus: int | None = None
    num_gpus: int | None = None
    metrics_out: Path | None = None
    register: bool = True
    live: bool | None = None  # the live progress table: None = when stdout is a terminal


def storage_root(flag: str | None) -> str:
    """Tune's storage: --storage-path, $HAR_STORAGE_PATH, else runs/tune (absolute; URIs pass through)."""
    value = flag or os.environ.get(STORAGE_ENV) or str(DEFAULT_STORAGE)
    return value if "://" in value else str(Path(value).expanduser().resolve())


def init_ray(options: TuneOptions) -> None:
    import ray

    if ray.is_initialized():
        return
    address = options.address or os.environ.get("RAY_ADDRESS")
    # trial output stays in the trial logs (Tune's storage); failures reach MLflow as tag har.error
    common = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            mem = 2 * 1024**3
            # address="local": always a new local instance, never a stray `ray start` cluster on this machine
            ray.init(
                address="local",
                num_cpus=options.num_cpus,
                num_gpus=options.num_gpus,
                object_store_memory=mem,
                **common,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local Ray instance"
        raise HarError(f"could not start or join Ray at {where}: {str(exc).splitlines()[0][:200]}") from exc


def run_study(study: StudySpec, options: TuneOptions) -> list[PermutationOutcome]:
    """Every permutation of ``study``: search, test the winner once, log, register."""
    from har.tracking import connect, ensure_experiment, find_runs, resolve_uri

    _check_dataset(study, options)  # bad input fails before anything is created
    uri = resolve_uri(options.tracking_uri)
    client = connect(uri)  # before any trial: creates a fresh SQLite database once
    experiment_id = ensure_experiment(client, study.name)
    study_run = _study_run_id(client, experiment_id, study, options.resume)
    storage = storage_root(options.storage_path)
    init_ray(options)
    print(
        f"study {study.name} (run {study_run}): {len(study.permutations)} permutation(s) of {study.dataset}, "
        f"{study.budget.trials} trials each, {study.concurrency} at a time; tracking {uri}; storage {storage}"
    )
    outcomes = []
    for perm in study.permutations:
        tags = {"har.study": study.name, "har.study_run": study_run, "har.permutation": perm}
        done = [
            r
            for r in find_runs(client, experiment_id, {**tags, "har.role": "parent"})
            if r.data.tags.get("har.status") == "complete"
        ]
        if done:
            print(f"[{perm}] already complete in study run {study_run}: skipped")
            outcomes.append(_outcome_from_run(done[0]))
            continue
        outcomes.append(
            _run_permutation(study, perm, study_run, tags, client, experiment_id, storage, uri, options)
        )
    if options.metrics_out:
        write_metrics(options.metrics_out, study, study_run, outcomes)
        from har.dvc_plots import ensure_in_dvc_repo

        try:  # `dvc plots show` of the plot data written above, offline
            ensure_in_dvc_repo()
        except Exception as exc:  # a convenience: never fails a finished study
            print(f"  warning: the offline DVC plots template was not written: {exc}", flush=True)
    return outcomes


def _study_run_id(client, experiment_id: str, study: StudySpec, resume: bool) -> str:
    """A new id per ``har tune``; ``--resume`` picks the newest study run that did not finish."""
    if not resume:
        return time.strftime("%Y%m%d-%H%M%S")
    runs = client.search_runs(
        [experiment_id],
        filter_string="tags.`har.role` = 'parent'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    for run in runs:
        if run.data.tags.get("har.status") != "complete":
            return run.data.tags["har.study_run"]
    raise BadInput(
        f"study {study.name!r}: nothing to resume (every study run finished); run without --resume"
    )


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
    client,
    experiment_id: str,
    storage: str,
    uri: str,
    options: TuneOptions,
) -> PermutationOutcome:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from har.tracking import log_params, parent_run, wait_for_tracking
    from har.train_data import load_train_data

    started = time.perf_counter()
    parent_id = parent_run(client, experiment_id, tags, run_name=f"{perm} ({study_run})")
    log_params(
        client,
        parent_id,
        {
            "dataset": study.dataset,
            "permutation": perm,
            "metric": study.metric,
            "trials": study.budget.trials,
            "max_epochs": study.budget.max_epochs,
            "concurrency": study.concurrency,
            "seed": study.seed,
            "models": ",".join(sorted(study.models)),
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
    held_out = f"val subjects {data.val_subjects}" if data.kind == "windows" else "stratified split of prepare"
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
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=_searcher(study),
                scheduler=ASHAScheduler(
                    time_attr="training_iteration",
                    metric=study.objective_key,
                    mode=study.mode,
                    max_t=study.budget.max_epochs,
                    grace_period=min(study.budget.grace_period, study.budget.max_epochs),
                    reduction_factor=study.budget.reduction_factor,
                ),
                num_samples=study.budget.trials,
                max_concurrent_trials=study.concurrency,
                reuse_actors=True,  # a new trial skips the worker start-up (imports of torch and har)
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage,
                failure_config=tune.FailureConfig(max_failures=study.budget.retries),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                callbacks=[TrialLogger(uri, experiment_id, parent_id, study, study.budget.trials), progress],
                verbose=0,
            ),
        )
    try:
        grid = tuner.fit()
    except BaseException as exc:  # Tune itself failed: no run may stay RUNNING; --resume continues
        _close_runs(client, uri, experiment_id, parent_id, progress, failed=exc)
        raise
    _close_runs(client, uri, experiment_id, parent_id, progress)
    wait_for_tracking(client, uri, seconds=5)  # still down: a clean error, and --resume logs the winner
    if grid.num_terminated + grid.num_errors < study.budget.trials:  # SIGINT / SIGUSR1: Tune stopped early
        client.set_tag(parent_id, "har.status", "interrupted")
        client.set_terminated(parent_id, status="KILLED")
        raise HarError(
            f"[{perm}] study interrupted after {grid.num_terminated + grid.num_errors} of {study.budget.trials} "
            f"trials; continue with: har tune --study {study.name} --resume"
        )
    outcome = PermutationOutcome(perm, parent_id, trials=len(grid), failed=sum(1 for r in grid if r.error))
    outcome.trial_seconds = sum(_trial_seconds(r) for r in grid)
    ok = [r for r in grid if not r.error and r.checkpoint and _finite(r.metrics.get(study.objective_key))]
    if not ok:
        client.set_tag(parent_id, "har.status", "failed")
        client.set_terminated(parent_id, status="FAILED")
        raise HarError(
            f"[{perm}] every trial failed ({outcome.failed} of {outcome.trials}); see the child runs of "
            f"MLflow run {parent_id} (tag har.error)"
        )
    sign = 1 if study.mode == "max" else -1
    best = max(ok, key=lambda r: sign * r.metrics[study.objective_key])
    outcome.pareto = _pareto(study, ok)
    _finish_winner(study, perm, best, data, client, experiment_id, parent_id, options, outcome)
    outcome.wall_seconds = time.perf_counter() - started
    from har.tracking import log_metrics

    log_metrics(
        client,
        parent_id,
        {
            "study/wall_seconds": outcome.wall_seconds,
            "study/trial_seconds": outcome.trial_seconds,
            "study/failed_trials": outcome.failed,
        },
        step=0,
    )
    client.set_tag(parent_id, "har.status", "complete")
    client.set_terminated(parent_id, status="FINISHED")
    return outcome


def _scratch_notes(study: StudySpec, perm: str) -> None:
    """Say which image backbones of the study start from random weights (no 'weights' given)."""
    from har.models.vision import scratch_note
    from har.study import Distribution

    for name, choice in study.models.items():
        fixed = {k: v for k, v in choice.space.items() if not isinstance(v, Distribution)}
        note = scratch_note(name, fixed)
        if note:
            print(f"[{perm}] {note}", flush=True)


def _close_runs(client, uri: str, experiment_id: str, parent_id: str, progress: StudyProgress,
               failed: BaseException | None = None) -> None:  # fmt: skip
    """After Tune returns or raises: children still RUNNING become KILLED (tag ``interrupted``); when
    Tune raised, the parent too (tag ``har.status=failed`` or ``interrupted``). Never raises."""
    from har.tracking import close_open_children, wait_for_tracking

    try:
        progress.close()
    except Exception as exc:  # the terminal went away: nothing to show it on
        print(f"  warning: progress display: {exc}", flush=True)
    try:
        wait_for_tracking(client, uri)  # the server may be restarting
        close_open_children(client, experiment_id, parent_id)
        if failed is not None:
            interrupted = isinstance(failed, KeyboardInterrupt)
            client.set_tag(parent_id, "har.status", "interrupted" if interrupted else "failed")
            client.set_tag(parent_id, "har.error", f"{type(failed).__name__}: {failed}"[:5000])
            client.set_terminated(parent_id, status="KILLED" if interrupted else "FAILED")
    except Exception as exc:
        print(f"  warning: MLflow runs not closed: {str(exc).splitlines()[0][:200] if str(exc) else exc!r}",
              flush=True)  # fmt: skip


def _restored_progress(tuner) -> StudyProgress | None:
    """The progress callback Tune restored with the experiment (so ``close`` reaches the live one)."""
    internal = getattr(tuner, "_local_tuner", None)
    callbacks = getattr(getattr(internal, "_run_config", None), "callbacks", None) or []
    return next((cb for cb in callbacks if isinstance(cb, StudyProgress)), None)


def _searcher(study: StudySpec):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if study.search.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=study.seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=study.seed, n_startup_trials=study.search.startup_trials, multivariate=True, group=True
        )
    metric: Any = study.objective_key
    mode: Any = study.mode
    if study.objectives:
        metric = [metric] + [o.metric for o in study.objectives]
        mode = [mode] + [o.mode for o in study.objectives]
        if study.search.sampler == "tpe":
            sampler = optuna.samplers.TPESampler(
                seed=study.seed, n_startup_trials=study.search.startup_trials
            )
    return OptunaSearch(space=study.sample, metric=metric, mode=mode, sampler=sampler)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _trial_seconds(result) -> float:
    """Time inside the trial (Ray's time_total_s): data, build, training, validation, checkpoints."""
    value = (result.metrics or {}).get("time_total_s")
    return float(value) if _finite(value) else 0.0


def _pareto(study: StudySpec, results: list) -> list[dict[str, Any]]:
    """Non-dominated trials on (metric, secondary objective) when the study has one."""
    if not study.objectives:
        return []
    second = study.objectives[0]
    points = [
        (r.metrics[study.objective_key], r.metrics.get(second.metric), r)
        for r in results
        if _finite(r.metrics.get(second.metric))
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


def _finish_winner(study, perm, best, data, client, experiment_id, parent_id, options, outcome) -> None:
    """Rebuild the winner at its best epoch, test it once, log artifacts, register it."""
    import torch

    from har.experiment import RunSpec, make_checkpoint_info, resolve
    from har.metrics import scalars
    from har.models import build, count_parameters, restore_hparams
    from har.tracking import find_runs, git_commit, log_winner, model_name, register
    from har.train import evaluate

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
    with best.checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / STATE_FILE, weights_only=True)
    model = build(
        setup.model, len(data.channels), len(data.classes), data.window, **restore_hparams(setup.model, hparams)
    )
    model.load_state_dict(state["best_state"])
    val = evaluate(model, *data.splits["val"], data.classes, "val/")
    test = evaluate(model, *data.splits["test"], data.classes, "test/")  # the one test evaluation
    trial_id = best.metrics["trial_id"]
    runs = find_runs(client, experiment_id, {"mlflow.parentRunId": parent_id, "ray.trial_id": trial_id})
    if not runs:
        raise HarError(f"[{perm}] the winning trial {trial_id} has no MLflow run")
    run_id = runs[0].info.run_id
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
    model_uri = log_winner(client, run_id, model, info, test, example)
    client.set_tag(run_id, "har.winner", "true")
    client.set_tag(parent_id, "har.best_trial", trial_id)
    client.set_tag(parent_id, "har.best_run", run_id)
    if options.metrics_out:
        write_plot_data(options.metrics_out.parent / "plots", perm, state["history"], test, data.classes)
    from har.tracking import log_metrics

    log_metrics(client, parent_id, {**scalars(val), **scalars(test)}, step=0)
    outcome.best_trial, outcome.model = trial_id, setup.model
    outcome.val, outcome.test = scalars(val), {k: v for k, v in scalars(test).items()}
    print(
        f"[{perm}] winner {trial_id} ({setup.model}): val/macro_f1 {val['val/macro_f1']:.4f}, "
        f"test/accuracy {test['test/accuracy']:.4f}, test/macro_f1 {test['test/macro_f1']:.4f}"
    )
    if not options.register:
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

    reg = register(
        client,
        model_name(data.dataset, perm),
        model_uri,
        run_id,
        tags,
        score_key,
        float(test[score_key]),
        test_split,
        rescore_champion=rescore,
    )
    outcome.registered, outcome.version, outcome.champion, outcome.decision = (
        reg.name,
        reg.version,
        reg.champion_version,
        reg.decision,
    )
    client.set_tag(parent_id, "har.registered", f"{reg.name}/{reg.version}")
    print(
        f"[{perm}] registered {reg.name} v{reg.version}: {reg.decision}; champion is v{reg.champion_version}"
    )


def score_checkpoint(folder: Path, data, score_key: str) -> float:
    """A registered champion's score on this run's test split, with its own normalisation."""
    from har.checkpoint import check_channels, load_checkpoint
    from har.train import evaluate

    model, info = load_checkpoint(folder)
    check_channels(info, data.channels, str(folder))
    X, y = data.splits["test"]
    if data.kind == "images":  # the same transform for every image model (ImageNet statistics)
        if int(info["window"]) != data.window:
            raise BadInput(f"{folder}: the champion reads {info['window']}-pixel crops, this split {data.window}")
        return float(evaluate(model, X, y, info["classes"], "test/")[score_key])
    raw = X * data.std + data.mean
    mean = np.asarray(info["normalization"]["mean"], dtype=np.float32)
    std = np.asarray(info["normalization"]["std"], dtype=np.float32)
    metrics = evaluate(model, ((raw - mean) / std).astype(np.float32), y, info["classes"], "test/")
    return float(metrics[score_key])


def _outcome_from_run(run) -> PermutationOutcome:
    tags, metrics = run.data.tags, run.data.metrics
    name, _, version = tags.get("har.registered", "").partition("/")
    return PermutationOutcome(
        permutation=tags.get("har.permutation", ""),
        parent_run=run.info.run_id,
        trials=0,
        failed=0,
        best_trial=tags.get("har.best_trial", ""),
        registered=name,
        version=version,
        val={k: v for k, v in metrics.items() if k.startswith("val/")},
        test={k: v for k, v in metrics.items() if k.startswith("test/")},
    )


def write_plot_data(
    folder: Path, perm: str, history: list[dict[str, Any]], test: dict[str, Any], classes: list[str]
) -> None:
    """DVC plots of a permutation's winner: loss and validation scores per epoch, and one
    (actual, predicted) row per test window for DVC's confusion template (dvc.yaml ``plots:``)."""
    import csv
    import io

    from har.atomic import atomic_file

    def write(sub: str, header: list[str], rows: list[list[Any]]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        (folder / sub).mkdir(parents=True, exist_ok=True)
        with atomic_file(folder / sub / f"{perm}.csv", "w") as fh:
            fh.write(text.getvalue())

    write(
        "loss",
        ["epoch", "train_loss", "val_loss"],
        [[r["epoch"], r["train/loss"], r["val/loss"]] for r in history],
    )
    write(
        "scores",
        ["epoch", "val_accuracy", "val_macro_f1"],
        [[r["epoch"], r["val/accuracy"], r["val/macro_f1"]] for r in history],
    )
    matrix = test["confusion_matrix"]
    write(
        "confusion",
        ["actual", "predicted"],
        [
            [classes[i], classes[j]]
            for i, row in enumerate(matrix)
            for j, n in enumerate(row)
            for _ in range(int(n))
        ],
    )


def write_metrics(path: Path, study: StudySpec, study_run: str, outcomes: list[PermutationOutcome]) -> None:
    """The study's best metrics per permutation (a DVC metrics file)."""
    from har.atomic import atomic_file

    body = {
        "study": study.name,
        "study_run": study_run,
        "dataset": study.dataset,
        "metric": study.metric,
        "permutations": {
            o.permutation: {
                "model": o.model,
                "best_trial": o.best_trial,
                **o.val,
                **o.test,
                "registered": f"{o.registered}/{o.version}" if o.registered else "",
                "champion_version": o.champion,
                "trials": o.trials,
                "failed_trials": o.failed,
                "wall_seconds": round(o.wall_seconds, 1),
                "trial_seconds": round(o.trial_seconds, 1),
                **({"pareto": o.pareto} if o.pareto else {}),
            }
            for o in outcomes
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as fh:
        fh.write(json.dumps(body, indent=2, default=float) + "\n")
