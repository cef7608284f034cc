"""What a study report shows, read from MLflow: trials per permutation, repeats grouped, winners,
champions. No plotting or HTML here (har/report/render.py renders)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from har.errors import BadInput
from har.tracking.registry import champion_version, model_name
from har.tracking.store import all_runs
from har.tracking.trial_logger import LEGACY_PRUNED, PRUNED

SEED_PARAM = "train.seed"


def count_outcomes(outcomes: list[str]) -> dict[str, int]:
    """Ended trials by how they ended (the ``har.outcome`` values that har.tune.driver writes)."""
    return {
        "finished": sum(o in ("completed", "early-stopped") for o in outcomes),
        "pruned": sum(o in (PRUNED, LEGACY_PRUNED) for o in outcomes),
        "failed": outcomes.count("failed"),
    }


@dataclass
class Trial:
    run_id: str
    name: str
    permutation: str
    study_run: str
    model: str
    outcome: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    winner: bool = False

    def value(self, key: str) -> float | None:
        value = self.metrics.get(key)
        return value if isinstance(value, float) and value == value else None

    @property
    def config_key(self) -> str:
        """Trials with the same configuration except the seed are repeats of one another."""
        return json.dumps(
            {k: v for k, v in sorted(self.params.items()) if k not in (SEED_PARAM, "params_hash")}
        )


@dataclass
class Stat:
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def text(self, digits: int = 4) -> str:
        if not self.values:
            return "-"
        if len(self.values) == 1:
            return f"{self.values[0]:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class Entry:
    """One configuration of a permutation's leaderboard: its trials (one per seed / study run)."""

    trials: list[Trial]

    @property
    def best(self) -> Trial:
        return self.trials[0]

    def stat(self, key: str) -> Stat:
        return Stat([v for t in self.trials if (v := t.value(key)) is not None])


@dataclass
class Champion:
    name: str
    version: str
    run_id: str
    tags: dict[str, str]


@dataclass
class PermutationReport:
    permutation: str
    entries: list[Entry]
    winners: list[Trial]  # one per complete study run, newest first
    champion: Champion | None
    trials: list[Trial] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about the data, e.g. classes validation lacks

    def counts(self) -> dict[str, int]:
        return {"trials": len(self.trials), **count_outcomes([t.outcome for t in self.trials])}


@dataclass
class StudyReport:
    study: str
    experiment_id: str
    tracking_uri: str
    metric: str
    dataset: str
    study_runs: list[str]
    permutations: list[PermutationReport]


def collect(
    client, study: str, tracking_uri: str, metric: str = "val/macro_f1", study_run: str | None = None
) -> StudyReport:
    """Every trial of every (or one) run of ``study`` in MLflow, grouped by permutation and config."""

    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        raise BadInput(
            f"study {study!r}: no MLflow experiment of that name at {tracking_uri}; run 'har tune --study {study}' first"
        )
    runs = all_runs(client, experiment.experiment_id)
    parents = {r.info.run_id: r for r in runs if r.data.tags.get("har.role") == "parent"}
    if study_run:
        parents = {k: r for k, r in parents.items() if r.data.tags.get("har.study_run") == study_run}
        if not parents:
            known = sorted(
                {
                    r.data.tags.get("har.study_run", "")
                    for r in runs
                    if r.data.tags.get("har.role") == "parent"
                }
            )
            raise BadInput(
                f"--study-run {study_run}: not a run of study {study!r} (known: {', '.join(known) or 'none'})"
            )
    if not parents:
        raise BadInput(f"study {study!r}: no study runs in MLflow experiment {experiment.experiment_id}")
    dataset = next(iter(parents.values())).data.params.get("dataset", "")
    by_perm: dict[str, list[Trial]] = {}
    for run in runs:
        tags = run.data.tags
        parent = parents.get(tags.get("mlflow.parentRunId", ""))
        if parent is None or tags.get("har.role") != "trial":
            continue
        perm = parent.data.tags.get("har.permutation", "")
        by_perm.setdefault(perm, []).append(
            Trial(
                run_id=run.info.run_id,
                name=run.info.run_name or tags.get("ray.trial_id", ""),
                permutation=perm,
                study_run=parent.data.tags.get("har.study_run", ""),
                model=tags.get("har.model", run.data.params.get("model", "")),
                outcome=tags.get("har.outcome", run.info.status.lower()),
                status=run.info.status,
                params=dict(run.data.params),
                metrics=dict(run.data.metrics),
                winner=tags.get("har.winner") == "true",
            )
        )
    objective = f"best/{metric}"
    sign = -1 if metric.endswith("loss") else 1
    permutations = []
    for perm in _ordered(parents):
        trials = by_perm.get(perm, [])
        scored = [t for t in trials if t.value(objective) is not None and t.status == "FINISHED"]
        groups: dict[str, list[Trial]] = {}
        for trial in sorted(scored, key=lambda t: -sign * (t.value(objective) or 0.0)):
            groups.setdefault(trial.config_key, []).append(trial)
        entries = sorted((Entry(g) for g in groups.values()), key=lambda e: -sign * e.stat(objective).mean)
        winners = sorted((t for t in trials if t.winner), key=lambda t: t.study_run, reverse=True)
        warnings = sorted({
            p.data.tags["har.val_warning"] for p in parents.values()
            if p.data.tags.get("har.permutation") == perm and "har.val_warning" in p.data.tags
        })  # fmt: skip
        champ = _champion(client, model_name(dataset, perm))
        permutations.append(PermutationReport(perm, entries, winners, champ, trials, warnings))
    return StudyReport(
        study=study,
        experiment_id=experiment.experiment_id,
        tracking_uri=tracking_uri,
        metric=metric,
        dataset=dataset,
        study_runs=sorted({p.data.tags.get("har.study_run", "") for p in parents.values()}),
        permutations=permutations,
    )


def _ordered(parents: dict[str, Any]) -> list[str]:
    """Permutations in the order the study ran them (the oldest parent run first)."""
    seen: dict[str, int] = {}
    for run in sorted(parents.values(), key=lambda r: r.info.start_time):
        seen.setdefault(run.data.tags.get("har.permutation", ""), len(seen))
    return sorted(seen, key=seen.__getitem__)


def _champion(client, name: str) -> Champion | None:
    version = champion_version(client, name)
    if version is None:
        return None
    return Champion(name, str(version.version), version.run_id or "", dict(version.tags))
