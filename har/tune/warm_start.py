"""Warm start (``search: {warm_start: {from: STUDY[/PERMUTATION], top: N}}``): the best configurations of
an earlier search, read from the Optuna storage, become the first trials of a new one.

A configuration is enqueued only if its parameters fit this study's space (the same model, the same
names, every value inside this space's distribution); the others are skipped with a one-line note.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import FixedTrial, TrialState

from har.tune.study import StudySpec


def misfit(study: StudySpec, params: dict[str, Any]) -> str | None:
    """Why ``params`` (an Optuna trial's) do not fit the study's space, or None when they do."""
    trial = FixedTrial(params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FixedTrial only warns about a value outside the distribution
        try:
            study.sample(trial)
        except (ValueError, UserWarning) as exc:
            return str(exc).splitlines()[0]
    extra = sorted(set(params) - set(trial.params))
    return f"not in this space: {', '.join(extra)}" if extra else None


def source_study(storage: optuna.storages.BaseStorage, source: str, permutation: str) -> str | None:
    """The newest search named ``<study>/<run>/<permutation>`` for ``source`` = STUDY or STUDY/PERMUTATION
    (the permutation defaults to this one)."""
    study, _, perm = source.partition("/")
    perm = perm or permutation
    names = [
        s.study_name
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if s.study_name.startswith(f"{study}/") and s.study_name.endswith(f"/{perm}")
        and s.study_name.count("/") == 2
    ]  # fmt: skip
    return max(names, default=None)  # study run ids are timestamps


def warm_start_points(study: StudySpec, storage: optuna.storages.BaseStorage, permutation: str,
                      say=print) -> list[dict[str, Any]]:  # fmt: skip
    """The parameters of the ``top`` best complete trials of the source search that fit this space."""
    warm = study.search.warm_start
    if warm is None:
        return []
    name = source_study(storage, warm.source, permutation)
    if name is None:
        say(
            f"[{permutation}] warm start: no earlier search {warm.source!r} in the Optuna storage; starting cold"
        )
        return []
    done = optuna.load_study(study_name=name, storage=storage).get_trials(states=(TrialState.COMPLETE,))
    sign = -1 if study.mode == "max" else 1
    points = []
    for trial in sorted(done, key=lambda t: sign * t.values[0]):
        if len(points) == warm.top:
            break
        reason = misfit(study, trial.params)
        if reason:
            say(f"[{permutation}] warm start: trial {trial.number} of {name} skipped ({reason})")
            continue
        points.append(dict(trial.params))
    say(f"[{permutation}] warm start: {len(points)} configuration(s) of {name} enqueued first")
    return points
