"""``har evaluate``: score saved checkpoints on a split of their dataset (one model, an ensemble, or
per-subject BatchNorm adaptation), or retrain a checkpoint's configuration over several seeds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har.errors import BadInput
from har.metrics import classification_metrics
from har.train.adapt import check_adaptable
from har.train.checkpoint import check_channels
from har.train.data import load_train_data
from har.train.dataset import TrainData
from har.train.ensemble import Member, load_members, mean_probs, normalised
from har.train.loop import evaluate
from har.train.run import RunSpec, run

SPLITS = ("train", "val", "test")
ADAPT = ("none", "subject")


@dataclass
class Scored:
    """One evaluation: what was scored, on which windows, and its metrics (keys ``<split>/...``)."""

    what: str
    dataset: str
    sensors: str
    split: str
    windows: int
    unit: str  # windows or images
    adapted: bool
    metrics: dict[str, Any]


def check_request(checkpoints: list[Path], split: str, repeats: int, adapt: str) -> None:
    """Refuse combinations that have no meaning, before anything loads."""
    if split not in SPLITS:
        raise BadInput(f"--split {split!r}: choose train, val or test")
    if adapt not in ADAPT:
        raise BadInput(f"--adapt {adapt!r}: choose none or subject")
    if adapt != "none" and repeats:
        raise BadInput("--adapt scores one checkpoint; drop --repeats (har cv --adapt compares both)")
    if len(checkpoints) > 1 and (repeats or adapt != "none"):
        raise BadInput("several checkpoints are scored as one ensemble; drop --repeats and --adapt")


def load_for_scoring(checkpoints: list[Path], split: str, adapt: str, prepared_dir: Path
                     ) -> tuple[list[Member], TrainData]:  # fmt: skip
    """The checkpoints and their dataset, split as the first one was trained (its own validation
    subjects; older checkpoints: the defaults), checked to fit together."""
    members = load_members(checkpoints)
    model, info = members[0]
    if adapt != "none":
        check_adaptable(model, info["model"])
    data = load_train_data(
        prepared_dir,
        info["dataset"],
        info["sensors"],
        info.get("val_fraction", 0.2),
        info.get("split_seed", 0),
    )
    check_channels(info, data.channels, f"{prepared_dir / info['dataset']}")
    if adapt != "none" and not data.subjects:
        raise BadInput(f"--adapt {adapt}: {info['dataset']} has no subjects to adapt to (an image dataset)")
    splits = {(m.get("val_fraction", 0.2), m.get("split_seed", 0)) for _, m in members}
    if split != "test" and len(splits) > 1:  # one member's validation windows would be another's training
        raise BadInput(
            f"--split {split}: the checkpoints carve different validation subjects (val_fraction or "
            "split_seed); score their ensemble on --split test, or train the members with the same split"
        )
    if data.kind == "images" and len(members) > 1:
        raise BadInput(
            f"{checkpoints[0]}: an image model; ensembles are of sensor models, evaluate one checkpoint"
        )
    return members, data


def score(checkpoints: list[Path], members: list[Member], data: TrainData, split: str, adapt: str) -> Scored:
    """The checkpoint (or the ensemble's mean probabilities) on ``split``, each member normalising the
    raw windows with its own statistics."""
    model, info = members[0]
    X, y = data.splits[split]
    prefix = f"{split}/"
    if data.kind == "images":  # decoded and normalised per batch by the image set
        metrics = evaluate(model, X, y, info["classes"], prefix)
    else:
        raw = X * data.std + data.mean
        if len(members) > 1:
            probs = mean_probs(members, raw)
            metrics = classification_metrics(y, probs.argmax(axis=1), info["classes"], prefix=prefix)
        else:
            groups = data.subjects[split] if adapt == "subject" else None
            metrics = evaluate(model, normalised(info, raw), y, info["classes"], prefix, groups=groups)
    what = f"ensemble of {len(members)} checkpoints" if len(members) > 1 else str(checkpoints[0])
    unit = "images" if data.kind == "images" else "windows"
    return Scored(what, info["dataset"], info["sensors"], split, len(y), unit, adapt == "subject", metrics)


def repeat_runs(info: dict[str, Any], data: TrainData, prepared_dir: Path, split: str, repeats: int,
                busy: Callable[[str], AbstractContextManager] | None = None) -> Iterator[tuple[int, dict]]:  # fmt: skip
    """Retrain the checkpoint's configuration with seeds 0..repeats-1 on the same split of the data;
    yields (seed, metrics on ``split``). ``busy(message)`` wraps each training (a spinner)."""
    for seed in range(repeats):
        spec = RunSpec(
            dataset=info["dataset"], sensors=info["sensors"], model=info["model"], preset=info.get("preset"),
            hparams=info["hparams"], train={**info["train_config"], "seed": seed},
        )  # fmt: skip
        with (busy or (lambda _: nullcontext()))(f"seed {seed + 1}/{repeats}: training {info['model']} ..."):
            result = run(spec, prepared_dir, data=data, test=split == "test")
        yield seed, result.test if split == "test" else result.val
