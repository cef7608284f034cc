"""Your own recordings, no code needed: one CSV/Parquet file per recording plus a ``dataset.yaml``.

Folder layout::

    my_recordings/
      dataset.yaml          # rate, channel groups, classes, window, split (see docs/datasets.md)
      s01_morning.csv       # columns: one per channel, plus label and subject
      s02_evening.parquet

Declare it in params.yaml::

    datasets:
      my_recordings: {format: custom, source: path/to/my_recordings}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from har.data.formats import ReadResult
from har.data.spec import DatasetSpec, SplitSpec, WindowSpec
from har.data.windows import Recording, cut_windows, fill_gaps, runs
from har.errors import BadInput, validation_message

SPEC_FILE = "dataset.yaml"


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label_column: str = "label"
    subject_column: str = "subject"
    files: list[str] = Field(default_factory=lambda: ["*.csv", "*.csv.gz", "*.parquet"])


class CustomFile(BaseModel):
    """The schema of ``dataset.yaml``."""

    model_config = ConfigDict(extra="forbid")
    title: str = ""
    rate_hz: float = Field(gt=0)
    groups: dict[str, list[str]] = Field(description="sensor group -> channel columns, in order")
    classes: list[str] | None = Field(default=None, description="default: sorted labels found")
    window: WindowSpec
    split: SplitSpec
    label_column: str = "label"
    subject_column: str = "subject"
    files: list[str] = Field(default_factory=lambda: ["*.csv", "*.csv.gz", "*.parquet"])
    citation: str = "your own recordings"
    licence: str = "yours"


def load_custom_spec(name: str, entry: dict[str, Any], params_path: Path) -> DatasetSpec:
    """Build the DatasetSpec of a custom dataset declared in params.yaml from its folder's dataset.yaml."""
    unknown = sorted(set(entry) - {"format", "source", "window", "split"})
    if unknown:
        raise BadInput(f"{params_path}: datasets.{name}.{unknown[0]} is not a known key for a custom dataset")
    if "source" not in entry:
        raise BadInput(
            f"{params_path}: datasets.{name}.source is missing; name the folder of your recordings"
        )
    folder = Path(str(entry["source"]))
    if not folder.is_absolute():  # relative to the params file, like every path in it
        folder = Path(params_path).parent / folder
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise BadInput(
            f"{spec_path}: missing; a custom dataset folder needs a {SPEC_FILE} (docs/datasets.md)"
        )
    try:
        raw = yaml.safe_load(spec_path.read_text()) or {}
        if not isinstance(raw, dict):
            raise BadInput(f"{spec_path}: expected a mapping of keys (rate_hz, groups, window, split, ...)")
        raw.update({k: entry[k] for k in ("window", "split") if k in entry})
        desc = CustomFile.model_validate(raw)
    except yaml.YAMLError as exc:
        raise BadInput(f"{spec_path}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        raise BadInput(validation_message(spec_path, "", exc)) from exc
    channels = [c for members in desc.groups.values() for c in members]
    try:
        return DatasetSpec(
            name=name,
            title=desc.title or f"custom dataset {name}",
            format="custom",
            bundled=str(folder),
            citation=desc.citation,
            licence=desc.licence,
            rate_hz=desc.rate_hz,
            channels=channels,
            groups=desc.groups,
            classes=desc.classes or [],
            window=desc.window,
            split=desc.split,
            options={
                "label_column": desc.label_column,
                "subject_column": desc.subject_column,
                "files": desc.files,
            },
        )
    except ValidationError as exc:
        raise BadInput(validation_message(spec_path, "", exc)) from exc


def label_text(value: object) -> str | None:
    """Labels compare as text; a numeric column with blanks reads as floats, so 1.0 is '1'."""
    if pd.isna(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise BadInput(f"{path}: unreadable ({str(exc).splitlines()[0]})") from exc


def read(root: Path, spec: DatasetSpec, options: Options) -> ReadResult:
    paths = sorted({p for pattern in options.files for p in root.rglob(pattern)})
    if not paths:
        raise BadInput(f"{root}: no recording matches {options.files}")
    tables = [(p, read_table(p)) for p in paths]
    for path, table in tables:
        needed = [*spec.channels, options.label_column, options.subject_column]
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise BadInput(f"{path}: column {missing[0]!r} is missing (dataset.yaml names it); fix the file")
    found = sorted({label_text(v) for _, t in tables for v in t[options.label_column].dropna().unique()})
    classes = spec.classes or found
    lookup = {c: i for i, c in enumerate(classes)}
    recordings = []
    for path, table in tables:
        strings = [label_text(v) for v in table[options.label_column]]
        outside = sorted({s for s in strings if s is not None and s not in lookup})
        if outside:
            raise BadInput(
                f"{path}: label {outside[0]!r} is not in the class list {classes} of dataset.yaml; "
                "add it to 'classes' or fix the file"
            )
        labels = np.array([-1 if s is None else lookup[s] for s in strings], dtype=np.int64)
        signals, _ = fill_gaps(table[spec.channels].to_numpy(np.float64), spec.channels, str(path))
        subject = pd.to_numeric(table[options.subject_column], errors="coerce").to_numpy()
        if np.isnan(subject).any():
            raise BadInput(f"{path}: column {options.subject_column!r} must hold integer subject ids")
        subject = subject.astype(np.int64)
        for start, end, sid in zip(*runs(subject), strict=True):
            recordings.append(
                Recording(f"{path.stem}:{start}", int(sid), signals[start:end], labels[start:end])
            )
    return ReadResult(cut_windows(recordings, spec.window), list(classes), {"files": len(paths)})
