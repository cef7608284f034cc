"""How a study searches: the Optuna searcher, the ASHA scheduler, and the Tune run that holds them."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from har.tune.study import StudySpec


def searcher(study: StudySpec) -> OptunaSearch:
    """Optuna over the study's define-by-run space: TPE (multivariate; plain TPE for two objectives) or random.

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
    elif study.objectives:
        sampler = optuna.samplers.TPESampler(seed=study.seed, n_startup_trials=study.search.startup_trials)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=study.seed, n_startup_trials=study.search.startup_trials, multivariate=True, group=True
            )
    return OptunaSearch(space=study.sample, metric=metric, mode=mode, sampler=sampler)


def scheduler(study: StudySpec) -> ASHAScheduler:
    """ASHA early stopping on the objective, by epoch."""
    return ASHAScheduler(
        time_attr="training_iteration",
        metric=study.objective_key,
        mode=study.mode,
        max_t=study.budget.max_epochs,
        grace_period=min(study.budget.grace_period, study.budget.max_epochs),
        reduction_factor=study.budget.reduction_factor,
    )


def make_tuner(study: StudySpec, trainable, name: str, storage: str, callbacks: list) -> tune.Tuner:
    """A new Tune run of ``trainable`` for one permutation: ``budget.trials`` samples, ``concurrency`` at a
    time, a resumable checkpoint per trial (only the newest kept), ``budget.retries`` per trial."""
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher(study),
            scheduler=scheduler(study),
            num_samples=study.budget.trials,
            max_concurrent_trials=study.concurrency,
            reuse_actors=True,  # a new trial skips the worker start-up (imports of torch and har)
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=study.budget.retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=callbacks,
            verbose=0,
        ),
    )
