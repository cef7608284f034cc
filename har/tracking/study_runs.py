"""The MLflow side of a study: the experiment, study runs, and one parent run per sensor permutation.

``har.tune`` drives the search and calls these; it never talks to MLflow itself. A study run id
(tag ``har.study_run``, a timestamp) separates repeated ``har tune`` runs of one study in the same
experiment; ``--resume`` picks the newest unfinished one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har.errors import BadInput
from har.tracking.artifacts import log_winner
from har.tracking.datasets import log_dataset_inputs
from har.tracking.registry import Registration, register
from har.tracking.store import (
    close_open_children,
    connect,
    ensure_experiment,
    find_runs,
    log_metrics,
    log_params,
    parent_run,
    wait_for_tracking,
)
from har.tracking.trial_logger import Describe, TrialLogger


@dataclass
class ParentSummary:
    """What a completed permutation's parent run recorded (for a resumed study's table)."""

    parent_run: str
    permutation: str
    best_trial: str
    registered: str
    version: str
    val: dict[str, float]
    test: dict[str, float]


class StudyTracker:
    """One study's experiment on one tracking store (created on first use, restored if deleted)."""

    def __init__(self, uri: str, study: str):
        self.uri = uri
        self.study = study
        self.client = connect(uri)  # before any trial: creates a fresh SQLite database once
        self.experiment_id = ensure_experiment(self.client, study)

    def study_run_id(self, resume: bool) -> str:
        """A new id per ``har tune``; with ``resume`` the newest study run that did not finish."""
        if not resume:
            return time.strftime("%Y%m%d-%H%M%S")
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string="tags.`har.role` = 'parent'",
            order_by=["attributes.start_time DESC"],
            max_results=1000,
        )
        for run in runs:
            if run.data.tags.get("har.status") != "complete":
                return run.data.tags["har.study_run"]
        raise BadInput(
            f"study {self.study!r}: nothing to resume (every study run finished); run without --resume"
        )

    def completed(self, tags: dict[str, str]) -> ParentSummary | None:
        """The permutation's parent run when it already completed in this study run."""
        for run in find_runs(self.client, self.experiment_id, {**tags, "har.role": "parent"}):
            if run.data.tags.get("har.status") == "complete":
                found, metrics = run.data.tags, run.data.metrics
                name, _, version = found.get("har.registered", "").partition("/")
                return ParentSummary(
                    parent_run=run.info.run_id,
                    permutation=found.get("har.permutation", ""),
                    best_trial=found.get("har.best_trial", ""),
                    registered=name,
                    version=version,
                    val={k: v for k, v in metrics.items() if k.startswith("val/")},
                    test={k: v for k, v in metrics.items() if k.startswith("test/")},
                )
        return None

    def start_permutation(
        self, tags: dict[str, str], run_name: str, params: dict[str, Any]
    ) -> PermutationRun:
        """The permutation's parent run (reused on resume), with the search's settings as params."""
        parent_id = parent_run(self.client, self.experiment_id, tags, run_name=run_name)
        log_params(self.client, parent_id, params)
        return PermutationRun(self, parent_id)


class PermutationRun:
    """One permutation's parent run: its trial logger, its closing, its winner."""

    def __init__(self, tracker: StudyTracker, parent_id: str):
        self.tracker = tracker
        self.client = tracker.client
        self.parent_id = parent_id

    def trial_logger(self, describe: Describe, objective_key: str, max_epochs: int,
                     inputs: list[dict] | None = None) -> TrialLogger:  # fmt: skip
        """The Tune callback that mirrors this permutation's trials into child runs (each logging
        ``inputs``, the data it trains and validates on: har.tracking.datasets)."""
        t = self.tracker
        return TrialLogger(
            t.uri, t.experiment_id, self.parent_id, describe, objective_key, max_epochs, inputs
        )

    def log_inputs(self, run_id: str, inputs: list[dict]) -> None:
        log_dataset_inputs(self.client, run_id, inputs)

    def close_trials(self, failed: BaseException | None = None) -> None:
        """After Tune returns or raises: children still RUNNING become KILLED (tag ``interrupted``); when
        Tune raised, the parent too (tag ``har.status=failed`` or ``interrupted``). Never raises."""
        try:
            wait_for_tracking(self.client, self.tracker.uri)  # the server may be restarting
            close_open_children(self.client, self.tracker.experiment_id, self.parent_id)
            if failed is not None:
                interrupted = isinstance(failed, KeyboardInterrupt)
                self.client.set_tag(self.parent_id, "har.error", f"{type(failed).__name__}: {failed}"[:5000])
                self.end("interrupted" if interrupted else "failed")
        except Exception as exc:
            text = str(exc).splitlines()[0][:200] if str(exc) else repr(exc)
            print(f"  warning: MLflow runs not closed: {text}", flush=True)

    def wait(self, seconds: float) -> None:
        """Still unreachable after ``seconds``: a clean error (``--resume`` logs the winner later)."""
        wait_for_tracking(self.client, self.tracker.uri, seconds=seconds)

    def set_tag(self, key: str, value: str) -> None:
        """A tag on the parent run, e.g. ``har.val_warning`` (``har report`` shows it) or ``dvc.exp_name``."""
        self.client.set_tag(self.parent_id, key, value[:5000])

    def end(self, status: str, metrics: dict[str, float] | None = None) -> None:
        """Tag ``har.status`` (complete, interrupted, failed) and close the parent run accordingly."""
        if metrics:
            log_metrics(self.client, self.parent_id, metrics, step=0)
        mlflow_status = {"complete": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self.client.set_tag(self.parent_id, "har.status", status)
        self.client.set_terminated(self.parent_id, status=mlflow_status)

    def trial_run(self, trial_id: str) -> str | None:
        """The child run of a trial (found by its ``ray.trial_id`` tag)."""
        runs = find_runs(
            self.client,
            self.tracker.experiment_id,
            {"mlflow.parentRunId": self.parent_id, "ray.trial_id": trial_id},
        )
        return runs[0].info.run_id if runs else None

    def log_winner(self, run_id: str, trial_id: str, model, info: dict, test: dict, example,
                   scores: dict[str, float]) -> str:  # fmt: skip
        """The winner's artifacts and model on its trial run, its test scores on the parent; the
        logged model's URI."""
        model_uri = log_winner(self.client, run_id, model, info, test, example)
        self.client.set_tag(run_id, "har.winner", "true")
        self.client.set_tag(self.parent_id, "har.best_trial", trial_id)
        self.client.set_tag(self.parent_id, "har.best_run", run_id)
        log_metrics(self.client, self.parent_id, scores, step=0)
        return model_uri

    def register(self, name: str, model_uri: str, run_id: str, tags: dict[str, str], score_key: str,
                 score: float, test_split: str, rescore_champion: Callable[[Path], float]) -> Registration:  # fmt: skip
        """A new version of ``name`` from the winner's run (the champion rule is ``registry.register``'s)."""
        reg = register(self.client, name, model_uri, run_id, tags, score_key, score, test_split,
                       rescore_champion=rescore_champion)  # fmt: skip
        self.client.set_tag(self.parent_id, "har.registered", f"{reg.name}/{reg.version}")
        return reg
