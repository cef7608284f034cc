"""Study files (``pipelines/<study>.yaml``): validated once, then turned into an Optuna search space.

A study names a dataset, the sensor permutations to search separately (each gets its own search,
budget and champion), candidate models with conditional architecture spaces, shared training
spaces, the metric, the budget (trials per permutation, epochs, ASHA), resources and concurrency.
A parameter is either a constant or one distribution::

    lr: {loguniform: [1.0e-4, 1.0e-2]}   dropout: {uniform: [0.0, 0.5]}   hidden: {int: [16, 128]}
    filters: {logint: [16, 128]}          batch_size: {choice: [32, 64, 128]}   l2: 0.0

No Ray and no MLflow here: ``sample`` takes anything with Optuna's ``suggest_*`` methods.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from har.data.registry import load_params
from har.data.registry import resolve as resolve_dataset
from har.errors import BadInput, validation_message
from har.models import defaults, entry, model_names
from har.models import preset as get_preset
from har.sensors import canonical
from har.train.loop import TrainConfig

STUDY_DIR = Path("pipelines")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "logint", "choice")
# Training settings a study may not search: the budget, the seed and the metric set them.
RESERVED_TRAIN = {"max_epochs", "seed", "monitor", "device", "num_threads"}
JSON_TAG = "json:"


PERMUTATION = "permutation"  # the key of a trial's config that names its sensor permutation


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """Exactly one of the keys; bounds are inclusive."""

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    int: tuple[builtins.int, builtins.int] | None = None
    logint: tuple[builtins.int, builtins.int] | None = None
    choice: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        kinds = [k for k in DISTRIBUTIONS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of {', '.join(DISTRIBUTIONS)} (got {kinds or 'none'})")
        kind = kinds[0]
        if kind != "choice":
            low, high = getattr(self, kind)
            if not low < high:
                raise ValueError(f"{kind}: low {low} must be below high {high}")
            if kind.startswith("log") and low <= 0:
                raise ValueError(f"{kind}: bounds must be positive (got {low})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in DISTRIBUTIONS if getattr(self, k) is not None)

    def suggest(self, trial: Any, name: str) -> Any:
        kind = self.kind
        if kind == "choice":
            choices = list(self.choice or [])
            if all(c is None or isinstance(c, bool | int | float | str) for c in choices):
                return trial.suggest_categorical(name, choices)
            # Optuna stores only scalars: lists (e.g. layer widths) travel as JSON text
            return trial.suggest_categorical(name, [JSON_TAG + json.dumps(c) for c in choices])
        low, high = getattr(self, kind)
        if kind in ("int", "logint"):
            return trial.suggest_int(name, low, high, log=kind == "logint")
        return trial.suggest_float(name, low, high, log=kind == "loguniform")

    def values_to_check(self) -> list[Any]:
        if self.kind == "choice":
            return list(self.choice or [])
        return list(getattr(self, self.kind))


Param = Distribution | Any  # a constant when it is not a mapping


def _parse_params(params: Any, where: str) -> Any:
    """Mappings become Distributions; an error names the dotted key (pydantic would name the field only)."""
    if not isinstance(params, dict):
        return params  # pydantic reports the wrong type
    parsed = {}
    for key, value in params.items():
        if isinstance(value, dict):
            try:
                value = Distribution.model_validate(value)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                msg = str(err["msg"]).removeprefix("Value error, ")
                raise ValueError(f"{where}.{key}{'.' + loc if loc else ''}: {msg}") from None
        parsed[key] = value
    return parsed


class ModelChoice(_Strict):
    preset: str | None = None
    space: dict[str, Any] = Field(default_factory=dict, description="architecture hyper-parameters")
    train: dict[str, Any] = Field(default_factory=dict, description="training settings for this model only")


class Budget(_Strict):
    trials: int = Field(10, gt=0, description="trials per sensor permutation")
    max_epochs: int = Field(20, gt=0)
    grace_period: int = Field(2, gt=0, description="ASHA: epochs before a trial can be stopped")
    reduction_factor: float = Field(3.0, gt=1)
    retries: int = Field(
        3,
        ge=0,
        description="times a crashed trial is retried (node loss, OOM kill; one node loss can cost two)",
    )


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0, description="fractional GPUs share one device")


class Objective(_Strict):
    metric: Literal["latency_ms", "parameters"]
    mode: Literal["min", "max"] = "min"
    within: float | None = Field(
        None,
        ge=0,
        description="the champion is the trial best on this objective among those whose validation score "
        "is within this much of the best (0.005: half a point of macro F1); unset: the best score wins",
    )


class WarmStart(_Strict):
    source: str = Field(alias="from", min_length=1, description="an earlier study, or study/permutation")
    top: int = Field(5, gt=0, description="its best configurations enqueued as the first trials")


class Search(_Strict):
    sampler: Literal["tpe", "random", "gp"] = Field(
        "tpe", description="Optuna sampler: TPE (multivariate), random, or a Gaussian process (GPSampler)"
    )
    scheduler: Literal["asha", "hyperband", "median", "none"] = Field(
        "asha",
        description="early stopping: ASHA (one bracket), asynchronous Hyperband (ASHA with 3 brackets), "
        "the median stopping rule, or none (every trial runs to max_epochs or its own patience)",
    )
    startup_trials: int = Field(5, ge=0, description="TPE: random trials before modelling")
    warm_start: WarmStart | None = None


class StudySpec(_Strict):
    name: str = ""
    description: str = ""
    dataset: str
    permutations: list[str] = Field(default_factory=lambda: ["all"], min_length=1)
    models: dict[str, ModelChoice] = Field(min_length=1)
    train: dict[str, Any] = Field(default_factory=dict, description="training settings shared by all models")
    metric: Literal["val/macro_f1", "val/accuracy", "val/loss"] = "val/macro_f1"
    mode: Literal["max", "min"] | None = None
    objectives: list[Objective] = Field(default_factory=list, max_length=1)
    budget: Budget = Field(default_factory=Budget)
    resources: Resources = Field(default_factory=Resources)
    concurrency: int = Field(
        1, gt=0, description="trials running at once, over all permutations searched together"
    )
    seed: int = 0
    search: Search = Field(default_factory=Search)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    split_seed: int = 0
    system_metrics: float = Field(
        10.0,
        ge=0,
        description="seconds between CPU, memory and GPU samples of each trial's node, logged "
        "per epoch as MLflow system metrics (0: off)",
    )

    @model_validator(mode="before")
    @classmethod
    def _distributions(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        raw["train"] = _parse_params(raw.get("train", {}), "train")
        models = raw.get("models")
        if isinstance(models, dict):
            raw["models"] = {
                name: {
                    **choice,
                    **{
                        part: _parse_params(choice.get(part, {}), f"models.{name}.{part}")
                        for part in ("space", "train")
                    },
                }
                if isinstance(choice, dict)
                else choice
                for name, choice in models.items()
            }
        return raw

    @model_validator(mode="after")
    def _metric_mode(self) -> StudySpec:
        natural = "min" if self.metric == "val/loss" else "max"
        if self.mode is None:
            self.mode = natural
        elif self.mode != natural:
            raise ValueError(f"mode {self.mode!r} does not fit metric {self.metric!r} (use {natural!r})")
        if len(set(self.permutations)) != len(self.permutations):
            raise ValueError("permutations: listed twice")
        return self

    def overridden(self, trials: int | None = None, max_epochs: int | None = None,
                   concurrency: int | None = None,
                   permutations: list[str] | None = None) -> StudySpec:  # fmt: skip
        """This study with command-line overrides of its budget, concurrency and permutations (None: keep)."""
        flags = {"trials": trials, "max_epochs": max_epochs, "concurrency": concurrency}
        for key, value in flags.items():
            if value is not None and value < 1:
                raise BadInput(f"--{key.replace('_', '-')}: must be at least 1 (got {value})")
        budget = {k: v for k, v in flags.items() if k != "concurrency" and v is not None}
        return self.model_copy(
            update={
                "budget": self.budget.model_copy(update=budget),
                "concurrency": self.concurrency if concurrency is None else concurrency,
                "permutations": self._subset(permutations) if permutations else self.permutations,
            }
        )

    def _subset(self, permutations: list[str]) -> list[str]:
        unknown = [p for p in permutations if p not in self.permutations]
        if unknown:
            raise BadInput(
                f"--permutations: {', '.join(unknown)} not in study {self.name!r} "
                f"(its permutations: {', '.join(self.permutations)})"
            )
        return list(dict.fromkeys(permutations))

    # -- search space -------------------------------------------------------------------------
    @property
    def objective_key(self) -> str:
        """What trials report and the searcher optimises: the best value of the metric so far."""
        return f"best/{self.metric}"

    def sample(self, trial: Any) -> dict[str, Any]:
        """Define-by-run space: model-specific parameters are drawn only for the chosen model.

        Returns the constants; the drawn values are recorded by the searcher under the same names
        (``model``, ``<model>.<hparam>``, ``train.<key>``, ``<model>.train.<key>``)."""
        model = trial.suggest_categorical("model", sorted(self.models))
        choice = self.models[model]
        constants: dict[str, Any] = {}
        groups = ((f"{model}.", choice.space), ("train.", self.train), (f"{model}.train.", choice.train))
        for prefix, params in groups:
            for key, param in params.items():
                if isinstance(param, Distribution):
                    param.suggest(trial, prefix + key)
                else:
                    constants[prefix + key] = param
        return constants

    def describe(self, config: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
        """How a trial is recorded: its label, its tags (model, params hash) and its flat params."""
        setup = self.decode(config)
        tags = {"har.model": setup.model, "har.params_hash": setup.params_hash()}
        return self.label(config), tags, setup.flat_params()

    def label(self, config: dict[str, Any]) -> str:
        """A short, readable name for a trial: the model and the values drawn for it, e.g.
        ``lstm hidden=12 lr=0.0032`` (MLflow run names, progress lines)."""
        config = {k: _from_json(v) for k, v in config.items()}
        model = config["model"]
        choice = self.models[model]
        groups = ((f"{model}.", choice.space), ("train.", self.train), (f"{model}.train.", choice.train))
        drawn = [
            f"{key}={_short(config[prefix + key])}"
            for prefix, params in groups
            for key, param in params.items()
            if isinstance(param, Distribution) and prefix + key in config
        ]
        return " ".join([model, *drawn])

    def decode(self, config: dict[str, Any]) -> TrialSetup:
        """A trial's flat config -> model, preset, architecture and training overrides."""
        config = {k: _from_json(v) for k, v in config.items()}
        model = config["model"]
        hparams = {k[len(model) + 1 :]: v for k, v in config.items() if _under(k, f"{model}.", "train.")}
        train = {k[len("train.") :]: v for k, v in config.items() if k.startswith("train.")}
        train.update({k[len(model) + 7 :]: v for k, v in config.items() if k.startswith(f"{model}.train.")})
        train.update(max_epochs=self.budget.max_epochs, seed=self.seed, monitor=self.metric)
        return TrialSetup(model, self.models[model].preset, hparams, train)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return "x".join(_short(v) for v in value)
    return str(value)


def _from_json(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(JSON_TAG):
        return json.loads(value[len(JSON_TAG) :])
    return value


def _under(key: str, prefix: str, exclude: str) -> bool:
    return key.startswith(prefix) and not key[len(prefix) :].startswith(exclude)


@dataclass
class TrialSetup:
    model: str
    preset: str | None
    hparams: dict[str, Any]
    train: dict[str, Any]

    def params_hash(self) -> str:
        blob = json.dumps(
            {"model": self.model, "preset": self.preset, "hparams": self.hparams, "train": self.train},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def flat_params(self) -> dict[str, Any]:
        """One MLflow param per model, preset, hyper-parameter (``hparams.*``) and training key (``train.*``)."""
        params: dict[str, Any] = {
            "model": self.model,
            "preset": self.preset or "",
            "params_hash": self.params_hash(),
        }
        params.update({f"hparams.{k}": v for k, v in self.hparams.items()})
        params.update({f"train.{k}": v for k, v in self.train.items()})
        return params


def study_path(name_or_path: str, study_dir: Path = STUDY_DIR) -> Path:
    """``myogym`` -> pipelines/myogym.yaml; a path to a YAML file is used as it is."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    return study_dir / f"{name_or_path}.yaml"


def known_studies(study_dir: Path = STUDY_DIR) -> list[str]:
    return sorted(p.stem for p in study_dir.glob("*.yaml"))


def load_study(
    name_or_path: str, params_path: Path = Path("params.yaml"), study_dir: Path = STUDY_DIR
) -> StudySpec:
    """Read and validate a study file; every error names the file and the key."""
    path = study_path(name_or_path, study_dir)
    if not path.is_file():
        known = ", ".join(known_studies(study_dir)) or "none"
        raise BadInput(f"{path}: study file not found (known studies in {study_dir}/: {known})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: a study file is a mapping with at least 'dataset' and 'models'")
    raw.setdefault("name", path.stem)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        raise BadInput(validation_message(path, "", exc)) from exc
    _check_against_registries(spec, path, params_path)
    _check_params_entry(spec, path, params_path)
    return spec


def _check_params_entry(spec: StudySpec, path: Path, params_path: Path) -> None:
    """params.yaml ``studies.<name>.dataset`` (the DVC stage's data dependency) must be the study's dataset."""

    entry = (load_params(params_path).get("studies") or {}).get(spec.name)
    if entry is None:
        return
    declared = entry.get("dataset") if isinstance(entry, dict) else None
    if declared != spec.dataset:
        raise BadInput(
            f"{params_path}: studies.{spec.name}.dataset is {declared!r} but {path} uses {spec.dataset!r}; "
            "make them the same (the DVC stage tune@" + spec.name + " depends on that dataset)"
        )


def _check_against_registries(spec: StudySpec, path: Path, params_path: Path) -> None:
    """Names that pydantic cannot know: datasets, sensor groups, models, presets, hyper-parameters."""

    try:
        dataset = resolve_dataset(spec.dataset, params_path)
    except BadInput as exc:
        raise BadInput(f"{path}: dataset: {exc}") from exc
    for i, perm in enumerate(spec.permutations):
        try:
            spec.permutations[i] = canonical(perm, dataset.groups, spec.dataset)
        except BadInput as exc:
            raise BadInput(f"{path}: permutations: {exc}") from exc
    if len(set(spec.permutations)) != len(spec.permutations):
        raise BadInput(f"{path}: permutations: two entries name the same channels")
    train_fields = set(TrainConfig.model_fields)
    for name, choice in spec.models.items():
        if name not in model_names():
            raise BadInput(f"{path}: models.{name}: unknown model (known: {', '.join(model_names())})")
        reads = "images" if dataset.kind == "images" else "windows"
        if entry(name).inputs != reads:
            fitting = ", ".join(m for m in model_names() if entry(m).inputs == reads)
            raise BadInput(
                f"{path}: models.{name}: reads {entry(name).inputs} but dataset {spec.dataset!r} holds {reads} "
                f"(models for {reads}: {fitting})"
            )
        if choice.preset is not None:
            try:
                get_preset(f"{name}:{choice.preset}")
            except BadInput as exc:
                raise BadInput(f"{path}: models.{name}.preset: {exc}") from exc
        known = defaults(name)
        for key in choice.space:
            if key not in known:
                raise BadInput(
                    f"{path}: models.{name}.space.{key}: not a hyper-parameter of {name} "
                    f"(known: {', '.join(known)})"
                )
        _check_train(choice.train, f"models.{name}.train", path, train_fields)
    _check_train(spec.train, "train", path, train_fields)


def _check_train(params: dict[str, Param], where: str, path: Path, fields: set[str]) -> None:

    for key, param in params.items():
        if key in RESERVED_TRAIN:
            raise BadInput(
                f"{path}: {where}.{key}: set by the study (budget.max_epochs, seed, metric), not here"
            )
        if key not in fields:
            raise BadInput(
                f"{path}: {where}.{key}: not a training setting (known: {', '.join(sorted(fields))})"
            )
        values = param.values_to_check() if isinstance(param, Distribution) else [param]
        for value in values:
            try:
                TrainConfig.model_validate({key: value})
            except ValidationError as exc:
                raise BadInput(validation_message(path, f"{where}", exc)) from exc
