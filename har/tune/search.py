"""How a study searches: the Optuna searcher, the early-stopping scheduler, and the Tune run that holds them."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from har.tune.storage_fs import storage_filesystem
from har.tune.study import StudySpec


class StudySearch(OptunaSearch):
    """Ray's OptunaSearch whose Optuna trials end as their MLflow runs do: COMPLETE when the trial ended by
    itself, PRUNED when the scheduler stopped it (its per-epoch values were reported), FAIL when it failed; each
    carries its Ray trial id (user attribute ``ray_trial_id``)."""

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if config is not None:
            self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._ot_trials and self._told_before(trial_id):
            self._completed_trials.add(trial_id)  # told before a killed driver's last snapshot: it stays
            return
        stopped = bool(result) and not error and not result.get("last")  # type: ignore[union-attr]
        if stopped and trial_id in self._ot_trials and trial_id not in self._completed_trials:
            self._ot_study.tell(self._ot_trials[trial_id], state=TrialState.PRUNED)
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result, error)

    def _told_before(self, trial_id: str) -> bool:
        number = self._ot_trials[trial_id].number
        ended = self._ot_study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        return any(t.number == number for t in ended)


def searcher(study: StudySpec, storage: BaseStorage | None = None, name: str | None = None,
             first: list[dict[str, Any]] | None = None) -> StudySearch:  # fmt: skip
    """Optuna over the study's define-by-run space: TPE (multivariate; plain TPE for two objectives) or
    random; the Optuna study ``name`` in ``storage`` (None: in memory); ``first``: parameters enqueued as
    the first trials (warm start).

    Optuna's own chatter stays out of the study's output: its INFO log (a line per in-memory study) and
    the ExperimentalWarning of multivariate TPE, a setting chosen here on purpose."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric: Any = study.objective_key
    mode: Any = study.mode
    if study.objectives:
        metric = [metric] + [o.metric for o in study.objectives]
        mode = [mode] + [o.mode for o in study.objectives]
    if study.search.sampler == "random":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=study.seed)
    elif study.search.sampler == "gp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.GPSampler(seed=study.seed, n_startup_trials=study.search.startup_trials)
    elif study.objectives:
        sampler = optuna.samplers.TPESampler(seed=study.seed, n_startup_trials=study.search.startup_trials)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=study.seed, n_startup_trials=study.search.startup_trials, multivariate=True, group=True
            )
    return StudySearch(
        space=study.sample, metric=metric, mode=mode, sampler=sampler, storage=storage, study_name=name,
        points_to_evaluate=first or None,
    )  # fmt: skip


def scheduler(study: StudySpec) -> TrialScheduler:
    """Early stopping on the objective, by epoch (the trial's own count: it stays right when a resumed
    trial's checkpoint is newer): ASHA, asynchronous Hyperband (ASHA over 3 brackets of different grace
    periods), the median stopping rule, or none."""
    budget, kind = study.budget, study.search.scheduler
    grace = min(budget.grace_period, budget.max_epochs)
    if kind == "none":
        return FIFOScheduler()
    if kind == "median":
        return MedianStoppingRule(
            time_attr="epoch", metric=study.objective_key, mode=study.mode, grace_period=grace,
            min_samples_required=3,
        )  # fmt: skip
    return ASHAScheduler(
        time_attr="epoch",
        metric=study.objective_key,
        mode=study.mode,
        max_t=budget.max_epochs,
        grace_period=grace,
        reduction_factor=budget.reduction_factor,
        brackets=3 if kind == "hyperband" else 1,
    )


def make_tuner(study: StudySpec, search, schedule, trainable, name: str, storage: str, callbacks: list,
               num_samples: int) -> tune.Tuner:  # fmt: skip
    """A new Tune run of ``trainable``: ``num_samples`` trials, at most ``concurrency`` at a time (over all
    the permutations it searches), a resumable checkpoint per trial (only the newest kept),
    ``budget.retries`` per trial; files in a storage folder are written whole or not at all."""
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=schedule,
            num_samples=num_samples,
            max_concurrent_trials=study.concurrency,
            reuse_actors=True,  # a new trial skips the worker start-up (imports of torch and har)
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            storage_filesystem=storage_filesystem(storage),
            failure_config=tune.FailureConfig(max_failures=study.budget.retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=callbacks,
            verbose=0,
        ),
    )
