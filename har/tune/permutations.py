"""Several sensor permutations searched in one Tune run: each keeps its own Optuna searcher, ASHA
scheduler, trial budget and MLflow parent run, while their trials share the cluster's slots.

A trial's config carries its permutation (``PERMUTATION``); the searcher below hands each new trial to
the permutation with budget left and the fewest trials in flight, so a permutation that runs out of
budget leaves its slots to the others. Tune's ``max_concurrent_trials`` is the cap over all of them.
"""

from __future__ import annotations

import pickle
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from har.tune.search import StudySearch
from har.tune.study import PERMUTATION


def permutation_of(trial: Any) -> str:
    return str(trial.config[PERMUTATION])


class PermutationSearch(Searcher):
    """One Optuna search per permutation behind Tune's single searcher slot."""

    def __init__(self, searches: dict[str, StudySearch], budget: int, metric: Any, mode: Any):
        super().__init__(metric=metric if isinstance(metric, str) else metric[0],
                         mode=mode if isinstance(mode, str) else mode[0])  # fmt: skip
        self.searches = searches
        self.budget = budget
        self.suggested: dict[str, int] = dict.fromkeys(searches, 0)
        self.live: dict[str, set[str]] = {p: set() for p in searches}
        self.owner: dict[str, str] = {}  # Tune trial id -> permutation

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # each permutation's searcher has its metric, mode and space already

    def suggest(self, trial_id: str) -> dict | None:
        open_ = [p for p in self.searches if self.suggested[p] < self.budget]
        if not open_:
            return Searcher.FINISHED
        for perm in sorted(open_, key=lambda p: (len(self.live[p]), self.suggested[p])):
            config = self.searches[perm].suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                continue
            self.suggested[perm] += 1
            self.live[perm].add(trial_id)
            self.owner[trial_id] = perm
            return {**config, PERMUTATION: perm}
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.owner:
            self.searches[self.owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        perm = self.owner.get(trial_id)
        if perm is None:
            return
        self.live[perm].discard(trial_id)
        self.searches[perm].on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


class PermutationScheduler(FIFOScheduler):
    """One early-stopping scheduler per permutation: a trial is compared only with trials of its own permutation.
    Trials start first come, first served (FIFO), whatever their permutation."""

    def __init__(self, schedulers: dict[str, TrialScheduler]):
        super().__init__()
        self.schedulers = schedulers

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # each scheduler has its metric and mode already

    def on_trial_add(self, tune_controller, trial) -> None:
        self.schedulers[permutation_of(trial)].on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        self.schedulers[permutation_of(trial)].on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        return self.schedulers[permutation_of(trial)].on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self.schedulers[permutation_of(trial)].on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self.schedulers[permutation_of(trial)].on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "\n".join(f"[{p}] {s.debug_string()}" for p, s in self.schedulers.items())


class PerPermutation(Callback):
    """Tune callbacks kept per permutation (MLflow trial loggers, each writing under its parent run): a
    trial's events reach its permutation's callback; run-wide events reach each with its own trials."""

    def __init__(self, callbacks: dict[str, Callback]):
        self.callbacks = callbacks

    def setup(self, **info) -> None:
        for callback in self.callbacks.values():
            callback.setup(**info)

    def _trial_event(self, hook: str, iteration: int, trials: list, trial, **info) -> None:
        perm = permutation_of(trial)
        getattr(self.callbacks[perm], hook)(iteration, self._own(trials, perm), trial, **info)

    def _own(self, trials: list, perm: str) -> list:
        return [t for t in trials if permutation_of(t) == perm]

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        for perm, callback in self.callbacks.items():
            callback.on_step_begin(iteration, self._own(trials, perm), **info)

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        for perm, callback in self.callbacks.items():
            callback.on_step_end(iteration, self._own(trials, perm), **info)

    def on_experiment_end(self, trials: list, **info) -> None:
        for perm, callback in self.callbacks.items():
            callback.on_experiment_end(self._own(trials, perm), **info)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._trial_event("on_trial_start", iteration, trials, trial, **info)

    def on_trial_restore(self, iteration, trials, trial, **info):
        self._trial_event("on_trial_restore", iteration, trials, trial, **info)

    def on_trial_save(self, iteration, trials, trial, **info):
        self._trial_event("on_trial_save", iteration, trials, trial, **info)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._trial_event("on_trial_result", iteration, trials, trial, result=result, **info)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._trial_event("on_trial_complete", iteration, trials, trial, **info)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._trial_event("on_trial_error", iteration, trials, trial, **info)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._trial_event("on_trial_recover", iteration, trials, trial, **info)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self._trial_event("on_checkpoint", iteration, trials, trial, checkpoint=checkpoint, **info)
