"""``har data prepare`` for image datasets: class folders -> ``data/prepared/<dataset>/``.

Writes ``images.npy`` (every image resized to size x size, JPEG-encoded, packed into one uint8 array),
``offsets.npy`` (int64 [N + 1]), ``y.npy`` (class index), ``split.npy`` (0 train, 2 validation,
1 test: stratified by class, seeded), ``index.csv`` (source file, class, split, one row per image) and
``meta.json``. The split is part of the prepared folder, so DVC versions it with the data.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from har import __version__
from har.atomic import atomic_dir
from har.data.formats.image_folder import (
    CHANNELS,
    GROUPS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PART_NAMES,
    Options,
    list_images,
    pack,
    resized_jpeg,
    stratified_split,
)
from har.data.spec import DatasetSpec
from har.errors import BadInput, validation_message

Progress = Callable[[int, int], None]


def image_options(spec: DatasetSpec, params_path: Path | str = "params.yaml") -> Options:
    try:
        return Options.model_validate(spec.options)
    except ValidationError as exc:
        raise BadInput(validation_message(params_path, f"datasets.{spec.name}.options", exc)) from exc


def prepare_images(
    spec: DatasetSpec,
    raw_root: Path,
    out_dir: Path,
    params_path: Path | str = "params.yaml",
    progress: Progress | None = None,
) -> Path:
    """Check, resize, encode and split one image dataset; write it atomically to ``out_dir/<name>``."""
    if not raw_root.is_dir():
        raise BadInput(f"{raw_root}: not found; run 'har data fetch {spec.name}' first")
    options = image_options(spec, params_path)
    listing = list_images(raw_root, spec.classes or None, options.min_per_class)
    split = stratified_split(listing.labels, options)  # before decoding: a bad split fails fast
    blobs = []
    for i, path in enumerate(listing.files):
        blobs.append(resized_jpeg(path, options.size, options.quality))
        if progress:
            progress(i + 1, len(listing.files))
    data, offsets = pack(blobs)
    n_classes = len(listing.classes)
    counts = {
        name: np.bincount(listing.labels[split == code], minlength=n_classes).tolist()
        for code, name in PART_NAMES.items()
    }
    meta: dict[str, Any] = {
        "dataset": spec.name,
        "kind": "images",
        "title": spec.title,
        "format": spec.format,
        "channels": CHANNELS,
        "groups": GROUPS,
        "classes": listing.classes,
        "image": {"size": options.size, "crop": options.crop, "encoding": f"jpeg q{options.quality}"},
        "split": {
            "by": "stratified random (class-wise), seeded",
            "rule": spec.split.rule,
            "seed": options.seed,
            "val_fraction": options.val_fraction,
            "test_fraction": options.test_fraction,
            "images": {name: int(np.sum(split == code)) for code, name in PART_NAMES.items()},
        },
        "normalization": {
            "fitted_on": "ImageNet (published transforms)",
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
        },
        "options": options.model_dump(),
        "shape": [len(listing.files), options.size, options.size, 3],
        "class_counts": counts,
        "bytes": int(data.nbytes),
        "citation": spec.citation,
        "licence": spec.licence,
        "notes": spec.notes,
        "har_version": __version__,
    }
    index = io.StringIO()
    writer = csv.writer(index, lineterminator="\n")
    writer.writerow(["file", "class", "split"])
    for path, label, code in zip(listing.files, listing.labels, split, strict=True):
        writer.writerow([path.relative_to(listing.root).as_posix(), listing.classes[label], PART_NAMES[code]])
    target = out_dir / spec.name
    with atomic_dir(target) as tmp:
        np.save(tmp / "images.npy", data)
        np.save(tmp / "offsets.npy", offsets)
        np.save(tmp / "y.npy", listing.labels)
        np.save(tmp / "split.npy", split)
        (tmp / "index.csv").write_text(index.getvalue())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return target
