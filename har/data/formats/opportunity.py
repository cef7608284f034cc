"""OPPORTUNITY ``dataset/S{1-4}-ADL{1-5}.dat`` and ``S{1-4}-Drill.dat``: 250 whitespace-separated columns.

The challenge setting: 113 body-worn channels (columns 2-134 without the IMU quaternions), 30 Hz,
NaN gaps linearly interpolated, test = ADL4-5 of subjects 2 and 3. Tasks: gestures (ML_Both_Arms,
18 classes incl. Null) and locomotion (5 classes incl. Null).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from har.data.formats import ReadResult
from har.data.registry import OPP_GESTURES, OPP_LOCOMOTION
from har.data.spec import DatasetSpec
from har.data.textio import read_bytes, read_matrix
from har.data.windows import Recording, cut_windows, fill_gaps
from har.errors import BadInput

N_COLUMNS = 250
RUN_NAME = re.compile(r"^S(\d)-(ADL(\d)|Drill)\.dat(\.gz)?$")
TEST_RUNS = {4, 5}  # ADL4 and ADL5 of the test subjects
LABEL_COLUMN = {"locomotion": 243, "gestures": 249}  # 0-based
FIRST_LABEL_COLUMN = 243  # 0-based: columns 244-250 hold label ids
TASK_LABELS = {"locomotion": OPP_LOCOMOTION, "gestures": OPP_GESTURES}


def body_worn_columns() -> list[int]:
    """0-based indices of the 113 body-worn channels: 36 accelerometers, 5 IMUs x 9 (no quaternions), 2 shoes."""
    acc = list(range(1, 37))
    imus = [37 + 13 * i + k for i in range(5) for k in range(9)]
    shoes = list(range(102, 134))
    return acc + imus + shoes


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: Literal["gestures", "locomotion"] = "gestures"
    subjects: list[int] = Field(default_factory=lambda: [1, 2, 3], description="subjects 1-4 to read")
    nan_only_channels: Literal["zero", "error"] = Field(
        "zero", description="a sensor missing for a whole run: zero-fill (published protocol) or error"
    )


def classes(options: Options) -> list[str]:
    return list(TASK_LABELS[options.task].values())


def check_column_names(path: Path, channels: list[str]) -> None:
    """If the archive's column_names.txt is there, make sure our channel selection matches it."""
    names = dict(re.findall(r"^Column: (\d+) ([^;\r\n]+)", read_bytes(path).decode(errors="replace"), re.M))
    if not names:
        raise BadInput(f"{path}: no 'Column: <n> <name>' lines; is this OPPORTUNITY's column_names.txt?")
    for col, channel in zip(body_worn_columns(), channels, strict=True):
        if names.get(str(col + 1), "").strip() != channel:
            raise BadInput(f"{path}: column {col + 1} is {names.get(str(col + 1))!r}, expected {channel!r}")


def check_labels(path: Path, table: np.ndarray) -> None:
    """Columns 244-250 hold whole-number label ids in every row; BadInput naming the first row without."""
    block = table[:, FIRST_LABEL_COLUMN:]
    nan = np.isnan(block).any(axis=1)
    if nan.any():  # label tracks are never NaN: the row was cut short (read_matrix pads it with NaN)
        raise BadInput(
            f"{path}: row {int(np.flatnonzero(nan)[0]) + 1} has fewer than {N_COLUMNS} values or no label; "
            "fetch the file again"
        )
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(block) | (block != np.round(block)) | (np.abs(block) >= 2**31)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise BadInput(
            f"{path}: row {row + 1} column {FIRST_LABEL_COLUMN + col + 1} holds {float(block[row, col])!r}, "
            "expected a whole-number label id"
        )


def read(root: Path, spec: DatasetSpec, options: Options) -> ReadResult:
    runs = sorted(
        ((m, p) for p in root.rglob("S*-*.dat*") if (m := RUN_NAME.match(p.name))), key=lambda mp: mp[1]
    )
    runs = [(m, p) for m, p in runs if int(m[1]) in options.subjects]
    if not runs:
        raise BadInput(f"{root}: no S<n>-ADL<k>.dat / S<n>-Drill.dat files of subjects {options.subjects}")
    for names in root.rglob("column_names.txt"):
        check_column_names(names, spec.channels)
    label_ids = TASK_LABELS[options.task]
    lookup = {label_id: index for index, label_id in enumerate(label_ids)}
    columns = body_worn_columns()
    recordings, zero_filled = [], {}
    for match, path in runs:
        table = read_matrix(path, ncols=N_COLUMNS, allow_nan=True)
        check_labels(path, table)
        raw_labels = table[:, LABEL_COLUMN[options.task]]
        known = np.isin(raw_labels, list(lookup))
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            last = row == len(table) - 1  # a last line cut inside its final number
            hint = (
                "the last row may be cut short; fetch the file again"
                if last
                else ", ".join(map(str, label_ids))
            )
            raise BadInput(
                f"{path}: row {row + 1}: {options.task} label {raw_labels[row]:.0f} is not in the label legend "
                f"({hint})"
            )
        labels = np.array([lookup[int(v)] for v in raw_labels], dtype=np.int64)
        selected = table[:, columns]
        if np.isinf(selected).any():
            row, col = (int(i) for i in np.argwhere(np.isinf(selected))[0])
            raise BadInput(
                f"{path}: row {row + 1} column {columns[col] + 1} is infinite; fetch the file again"
            )
        signals, empty = fill_gaps(selected, spec.channels, str(path), options.nan_only_channels)
        if empty:
            zero_filled[path.name] = empty
        subject = int(match[1])
        adl = int(match[3]) if match[3] else None
        is_test = subject in spec.split.test_subjects and adl in TEST_RUNS
        recordings.append(Recording(path.name.split(".")[0], subject, signals, labels, test=is_test))
    notes: dict[str, object] = {"runs": [r.name for r in recordings], "task": options.task}
    if zero_filled:
        notes["zero_filled_channels"] = zero_filled
    return ReadResult(cut_windows(recordings, spec.window), classes(options), notes)
