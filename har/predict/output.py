"""What ``har predict`` writes: one row per window (label, class probabilities) as CSV or JSON, to a
file (atomically) or to standard output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from har.atomic import atomic_file
from har.errors import BadInput
from har.predict.recording import INPUT_SUFFIXES

STDOUT = "-"


OUTPUT_SUFFIXES = (".csv", ".json")


@dataclass
class Predictions:
    classes: list[str]
    window: int
    step: int
    starts: np.ndarray  # first sample of each window (0-based)
    start_s: np.ndarray  # seconds: the time column at the start sample, else start / rate
    labels: np.ndarray  # predicted class index
    probabilities: np.ndarray  # [N, K] softmax
    meta: dict[str, Any] = field(default_factory=dict)
    inference_s: float = 0.0  # seconds in the model (every member of an ensemble), not reading or writing

    def frame(self) -> pd.DataFrame:
        """One row per window: window, start, end (exclusive), start_s, label, p_<class>..."""
        table = pd.DataFrame(
            {
                "window": np.arange(len(self.starts)),
                "start": self.starts,
                "end": self.starts + self.window,
                "start_s": np.round(self.start_s, 6),
                "label": np.asarray(self.classes, dtype=object)[self.labels],
            }
        )
        probs = np.round(self.probabilities, 6)
        for k, name in enumerate(self.classes):
            table[f"p_{name}"] = probs[:, k]
        return table

    def label_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True) if n}


def default_output(input_path: Path) -> Path:
    """``<input stem>.predictions.csv`` beside the input (``walk.csv.gz`` -> ``walk.predictions.csv``)."""
    name = input_path.name
    for suffix in INPUT_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return input_path.with_name(f"{name}.predictions.csv")


def output_kind(output: Path | str) -> str:
    """``csv`` or ``json`` from the output's suffix (stdout: csv)."""
    if str(output) == STDOUT:
        return "csv"
    suffix = Path(output).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise BadInput(f"--output {output}: unknown suffix {suffix or '(none)'!r}; use .csv or .json")
    return suffix[1:]


def to_json(pred: Predictions) -> str:
    rows = pred.frame().to_dict(orient="records")
    doc = {**pred.meta, "classes": pred.classes, "window": pred.window, "step": pred.step, "windows": rows}
    return json.dumps(doc, indent=1, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_predictions(pred: Predictions, output: Path | str) -> None:
    """CSV or JSON by the suffix, written atomically; ``-`` writes CSV to stdout."""
    kind = output_kind(output)
    if str(output) == STDOUT:
        pred.frame().to_csv(sys.stdout, index=False)
        sys.stdout.flush()
        return
    with atomic_file(Path(output), "w") as handle:
        if kind == "json":
            handle.write(to_json(pred))
        else:
            pred.frame().to_csv(handle, index=False)
