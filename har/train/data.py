"""Arrays for training: a prepared dataset, one sensor permutation, a subject-wise train/val/test split.

Validation subjects are carved from the training subjects (never from the test subjects); the
normalisation is fitted on the remaining training windows only and travels with the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from har.data.prepared import load_prepared
from har.data.splits import carve_validation
from har.data.windows import fit_normalisation
from har.errors import BadInput
from har.sensors import canonical
from har.train.dataset import TrainData, data_version
from har.train.images import is_image_folder, load_image_data


def load_train_data(
    prepared_dir: Path,
    dataset: str,
    sensors: str = "all",
    val_fraction: float = 0.2,
    split_seed: int = 0,
    held_out: list[int] | None = None,
    pool: str = "train",
) -> TrainData:
    """The prepared dataset as train / val / test arrays.

    By default ``test`` is the dataset's own test split. With ``held_out`` (one cross-validation fold)
    those subjects become ``test`` instead, drawn from the training subjects (``pool="train"``: the
    official test subjects are left out entirely) or from every subject (``pool="all"``: a published
    leave-subjects-out protocol); validation subjects are carved from the rest of the pool. The denser
    ``window.train_step`` windows, where prepared, are used for training only."""
    folder = prepared_dir / dataset
    if not (folder / "meta.json").is_file():
        raise BadInput(f"{folder}: not prepared; run 'har data prepare {dataset}'")
    if is_image_folder(folder):  # images: the stratified split stored by prepare (no subjects)
        return load_image_data(prepared_dir, dataset, sensors)
    data = load_prepared(folder)
    meta = data.meta
    sensors = canonical(sensors, meta["groups"], dataset)
    X, channels = data.select(sensors)
    X = np.asarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        raise BadInput(f"{folder}/X.npy: contains NaN or infinite values; prepare the dataset again")
    test, rest = data.test, ~data.test
    if held_out is not None:
        test, rest = _fold(data.subject, data.test, held_out, pool, dataset)
    scored = ~data.extra  # window.train_step's extra windows train; only the step grid is scored
    labelled = rest & scored & (data.y >= 0)
    classes_of = {int(s): set() for s in np.unique(data.subject[rest])}
    for s, c in set(zip(data.subject[labelled].tolist(), data.y[labelled].tolist(), strict=True)):
        classes_of[int(s)].add(int(c))
    carve = carve_validation(classes_of, val_fraction, split_seed)
    val_subjects = carve.subjects
    is_val = rest & np.isin(data.subject, val_subjects)
    if test.any() and (is_val & test).any():  # cannot happen: guards the invariant
        raise BadInput("validation windows overlap the test split")
    masks = {"train": rest & ~is_val, "val": is_val & scored, "test": test & scored}
    mean, std = fit_normalisation(X, masks["train"])
    out = TrainData(
        dataset=dataset,
        sensors=sensors,
        channels=channels,
        classes=list(meta["classes"]),
        window=int(X.shape[1]),
        rate_hz=float(meta["rate_hz"]),
        mean=mean.astype(np.float32),
        std=std.astype(np.float32),
        splits={},
        val_subjects=val_subjects,
        val_missing=[str(meta["classes"][c]) for c in carve.missing],
        data_version=data_version(folder),
        reader_options=dict(meta.get("options") or {}),
    )
    out.splits = {name: (out.normalise(X[m]), data.y[m].astype(np.int64)) for name, m in masks.items()}
    out.subjects = {name: data.subject[m].astype(np.int64) for name, m in masks.items()}
    return out


def _fold(
    subject: np.ndarray, official_test: np.ndarray, held_out: list[int], pool: str, dataset: str
) -> tuple[np.ndarray, np.ndarray]:
    """(held-out mask, training-pool mask) of one leave-subjects-out fold."""
    if pool not in ("train", "all"):
        raise BadInput(f"pool {pool!r}: choose 'train' (training subjects only) or 'all' (every subject)")
    in_pool = ~official_test if pool == "train" else np.ones(len(subject), dtype=bool)
    pool_subjects = sorted(int(s) for s in np.unique(subject[in_pool]))
    outside = sorted(set(held_out) - set(pool_subjects))
    if outside or not held_out:
        where = "training subjects" if pool == "train" else "subjects"
        raise BadInput(
            f"{dataset}: held-out subjects {sorted(held_out)} must be a non-empty subset of the {where} "
            f"{pool_subjects} (not in it: {outside})"
        )
    test = in_pool & np.isin(subject, held_out)
    return test, in_pool & ~test
