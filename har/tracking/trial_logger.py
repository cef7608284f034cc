"""The driver's Tune callback that mirrors every trial into an MLflow child run (trials never touch
MLflow themselves), with a delivery queue that survives a tracking server going away."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from har.tracking.datasets import log_dataset_inputs
from har.tracking.store import (
    child_runs,
    connect,
    create_child,
    find_runs,
    last_step,
    log_metrics,
    log_params,
)

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


# -- the driver's MLflow writer -----------------------------------------------------------------
# a trial's config -> (run name, tags, params) of its child run; picklable (Tune stores the callback)
Describe = Callable[[dict[str, Any]], tuple[str, dict[str, str], dict[str, Any]]]


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

    def __init__(self, tracking_uri: str, experiment_id: str, parent_id: str, describe: Describe,
                 objective_key: str, max_epochs: int, inputs: list[dict[str, Any]] | None = None):  # fmt: skip
        self.inputs = inputs or []  # the data each trial trains and validates on (har.tracking.datasets)
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_id = parent_id
        self.describe = describe
        self.objective_key = objective_key
        self.max_epochs = max_epochs
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
            label, tags, params = self.describe(trial.config)
            run_id = create_child(
                self.client,
                self.experiment_id,
                self.parent_id,
                run_name=f"{label} [{trial_id}]",
                tags={"ray.trial_id": trial_id, **tags},
            )
            log_params(self.client, run_id, params)
            log_dataset_inputs(self.client, run_id, self.inputs)
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
        metrics.update(
            {k: v for k, v in result.items() if k.startswith("system/") and isinstance(v, int | float)}
        )
        metrics[self.objective_key] = result[self.objective_key]
        node = str(result.get("node_id", ""))
        self._send(
            f"epoch {epoch} of trial {trial.trial_id}",
            lambda: self._log_epoch(trial, epoch, metrics, node),
            len(metrics),
        )

    def _log_epoch(self, trial, epoch: int, metrics: dict[str, float], node: str) -> None:

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
        self._finish(trial, "FINISHED", trial_outcome(result, self.max_epochs), result)

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


PRUNED = "pruned"
LEGACY_PRUNED = "pruned by ASHA"  # what runs logged before the scheduler became a study setting say


def trial_outcome(result: dict[str, Any], max_epochs: int) -> str:
    """How a trial that Tune ended without an error ended: by itself (all epochs, or its own patience), or
    stopped by the study's scheduler (ASHA, Hyperband or the median rule: ``search.scheduler``)."""
    if result.get("last"):
        return "completed" if result.get("epoch") == max_epochs else "early-stopped"
    return PRUNED


def trial_error_text(trial) -> str:
    """The traceback Tune saved for a failed trial (its error file), else its short message."""
    path = getattr(trial, "error_file", None)
    if path and os.path.isfile(path):
        try:
            return Path(path).read_text()
        except OSError:
            pass
    return str(getattr(trial, "error_msg", "") or "unknown error")
