"""``har data prepare``: fetched files -> ``data/prepared/<dataset>/`` (X, y, subject, split, meta.json)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from har import __version__
from har.atomic import atomic_dir
from har.data.formats import reader
from har.data.pins import check_read
from har.data.prepare_images import prepare_images
from har.data.prepared import EXTRA_FILE
from har.data.spec import DatasetSpec
from har.data.splits import assign_split
from har.data.textio import recording_reads
from har.data.windows import fit_normalisation
from har.errors import BadInput, validation_message


def reader_options(spec: DatasetSpec, params_path: Path | str = "params.yaml") -> Any:
    """The reader's typed options; BadInput names the key of params.yaml that is wrong."""
    try:
        return reader(spec.format).Options.model_validate(spec.options)
    except ValidationError as exc:
        raise BadInput(validation_message(params_path, f"datasets.{spec.name}.options", exc)) from exc


def expected_classes(spec: DatasetSpec, params_path: Path | str = "params.yaml") -> list[str]:
    """The class list the reader will produce with the dataset's options (before reading any data)."""
    module = reader(spec.format)
    if hasattr(module, "classes"):
        return module.classes(reader_options(spec, params_path))
    return list(spec.classes)


def reference_comparison(spec: DatasetSpec, windows: dict[str, int]) -> dict[str, Any] | None:
    """Our window counts against the published ones (UCI HAR: 7352 / 2947), as signed percentages.

    Only meaningful for the default task (6 basic activities for UCI HAPT); None otherwise.
    """
    if spec.reference_windows is None or spec.options.get("activities", "basic") != "basic":
        return None
    ref = spec.reference_windows
    return {
        "published": ref,
        "difference_pct": {k: round(100 * (windows[k] / ref[k] - 1), 2) for k in ref},
    }


def check_classes(name: str, classes: list[str], train: list[int], test: list[int]) -> None:
    """Refuse a split that cannot train a classifier or that tests it on activities it never saw."""
    learned = [c for c, n in zip(classes, train, strict=True) if n]
    if len(learned) < 2:
        raise BadInput(
            f"dataset {name}: the training subjects hold {len(learned)} class(es) {learned}; a classifier "
            "needs at least two: add recordings of other activities or check the label column and options"
        )
    unseen = [c for c, n_train, n_test in zip(classes, train, test, strict=True) if n_test and not n_train]
    if unseen:
        raise BadInput(
            f"dataset {name}: the test subjects hold class(es) {unseen} that no training subject performed; "
            "move subjects between the splits (split.test_subjects) or leave those activities out"
        )


def prepare(
    spec: DatasetSpec,
    raw_root: Path,
    out_dir: Path,
    params_path: Path | str = "params.yaml",
    progress: Callable[[int, int], None] | None = None,
    pins_dir: Path | None = None,
) -> Path:
    """Read, window, split and normalise one dataset; write it atomically to ``out_dir/<name>``.

    Every file the reader read must be pinned (``har.data.pins``; ``pins_dir``: the user's pins)."""
    if spec.kind == "images":
        return prepare_images(spec, raw_root, out_dir, params_path, progress)
    if not raw_root.is_dir():
        raise BadInput(f"{raw_root}: not found; run 'har data fetch {spec.name}' first")
    options = reader_options(spec, params_path)
    with recording_reads() as files:
        result = reader(spec.format).read(raw_root, spec, options)
    check_read(spec, raw_root, files, pins_dir)
    if spec.window.train_step is not None and result.windows.extra is None:
        raise BadInput(
            f"datasets.{spec.name}.window.train_step: the {spec.format} files hold windows already cut; "
            "remove train_step from params.yaml"
        )
    split = assign_split(result.windows, spec.split)
    X = result.windows.X[split.keep]
    y = result.windows.y[split.keep]
    subject = result.windows.subject[split.keep]
    test = split.test[split.keep]
    extra = result.windows.extra[split.keep] if result.windows.extra is not None else None
    scored = ~extra if extra is not None else np.ones(len(y), dtype=bool)
    mean, std = fit_normalisation(X, ~test)
    n_classes = len(result.classes)
    counts = {
        "train": np.bincount(y[~test & scored], minlength=n_classes).tolist(),
        "test": np.bincount(y[test & scored], minlength=n_classes).tolist(),
    }
    check_classes(spec.name, result.classes, counts["train"], counts["test"])
    meta: dict[str, Any] = {
        "dataset": spec.name,
        "title": spec.title,
        "format": spec.format,
        "rate_hz": spec.rate_hz,
        "channels": spec.channels,
        "groups": spec.groups,
        "classes": result.classes,
        "window": spec.window.model_dump(),
        "split": split.info,
        "normalization": {
            "fitted_on": "train",
            "mean": [round(float(v), 8) for v in mean],
            "std": [round(float(v), 8) for v in std],
        },
        "options": options.model_dump(),
        "shape": list(X.shape),
        "class_counts": counts,
        "reference_windows": reference_comparison(spec, split.info["windows"]),
        "citation": spec.citation,
        "licence": spec.licence,
        "notes": result.notes,
        "har_version": __version__,
    }
    target = out_dir / spec.name
    with atomic_dir(target) as tmp:
        np.save(tmp / "X.npy", np.ascontiguousarray(X, dtype=np.float32))
        np.save(tmp / "y.npy", y.astype(np.int64))
        np.save(tmp / "subject.npy", subject.astype(np.int32))
        np.save(tmp / "split.npy", test.astype(np.uint8))
        if extra is not None:
            np.save(tmp / EXTRA_FILE, extra.astype(np.uint8))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return target
