"""Sliding-window inference on a raw recording with a har-lab checkpoint (``har predict``).

A recording is a CSV or Parquet table with one column per channel, at the dataset's sampling rate. Two
input forms are accepted:

- the checkpoint's own channel names (``body_acc_x`` ... for UCI HAPT), used as they are;
- for datasets whose prepared channels are derived from raw sensors (UCI HAPT): the raw columns
  ``acc_x, acc_y, acc_z`` (g) and ``gyro_x, gyro_y, gyro_z`` (rad/s), filtered exactly as
  ``har data prepare`` filters a whole experiment (``har.data.formats.uci_hapt.preprocess``).

The rate is checked, never changed: an optional ``time``/``timestamp`` column (seconds) or ``--rate``
must agree with the checkpoint's rate within 2%. Windows of the checkpoint's length (step: half a
window by default) are normalised with the checkpoint's statistics and classified; every window gets a
label and one probability per class. Nothing here knows about typer; ``har/predict_cli.py`` is the command.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import ValidationError

from har.atomic import atomic_file
from har.data.formats import uci_hapt
from har.data.formats.uci_hapt import preprocess
from har.data.prepare import reader_options as prepared_options
from har.data.registry import BUILTIN, UCI_CHANNELS, resolve
from har.errors import BadInput, validation_message
from har.metrics import softmax
from har.tracking.registry import download_checkpoint
from har.train.adapt import adapt_batchnorm, check_adaptable
from har.train.checkpoint import load_checkpoint
from har.train.ensemble import check_same_data
from har.train.loop import pick_device, predict_logits

RAW_ACC = ["acc_x", "acc_y", "acc_z"]  # g
RAW_GYRO = ["gyro_x", "gyro_y", "gyro_z"]  # rad/s
RAW_UCI_HAPT = RAW_ACC + RAW_GYRO
TIME_COLUMNS = ("time", "timestamp")  # seconds
RATE_TOLERANCE = 0.02
CHUNK = 4096  # windows normalised and classified at a time (bounds memory for small steps)
STDOUT = "-"
INPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
OUTPUT_SUFFIXES = (".csv", ".json")


# ---------------------------------------------------------------- the model


def resolve_model(ref: str, tracking_uri: str | None = None) -> Path:
    """A local checkpoint folder for ``ref``: an existing folder, else a registry reference
    (``har-uci_hapt-all@champion``, ``har-uci_hapt-all/3``) downloaded by ``har.tracking.store``."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise BadInput(
            f"--model {ref}: a file, not a checkpoint folder; give the folder written by 'har train'"
        )
    if _looks_like_path(ref):
        raise BadInput(
            f"--model {ref}: no such checkpoint folder; give the folder written by 'har train' "
            "or a registry reference such as har-uci_hapt-all@champion"
        )

    return Path(download_checkpoint(ref, tracking_uri))


def _looks_like_path(ref: str) -> bool:
    """A folder path (not a registry reference such as ``name@alias`` or ``name/3``)."""
    if ref.startswith(("/", "./", "../", "~", ".\\")) or ref.endswith(("/", "\\")) or ref in (".", ".."):
        return True
    body = ref.split(":/", 1)[1] if ref.startswith(("models:/", "runs:/")) else ref
    return body.count("/") > 1 or "\\" in body


def read_info(folder: Path) -> dict[str, Any]:
    """``checkpoint.json`` without loading torch, so that bad input is refused fast; a broken
    checkpoint gets ``load_checkpoint``'s own message."""
    try:
        info = json.loads((Path(folder) / "checkpoint.json").read_text())
        ok = isinstance(info, dict) and (Path(folder) / "model.pt").is_file()
    except (OSError, json.JSONDecodeError):
        ok = False
    if not ok or any(
        k not in info for k in ("model", "hparams", "channels", "classes", "window", "normalization")
    ):
        return load_model(folder)[1]  # raises BadInput naming what is wrong
    _check_info(info, folder)
    return info


def _check_info(info: dict[str, Any], folder: Path) -> None:
    for key in ("rate_hz", "dataset"):
        if key not in info:
            raise BadInput(f"{folder / 'checkpoint.json'}: key {key!r} missing; retrain with this har-lab")


def load_model(folder: Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The checkpoint's model (eval mode, on ``device``) and its ``checkpoint.json``."""

    model, info = load_checkpoint(folder, map_location=pick_device(device))
    _check_info(info, folder)
    return model, info


# ---------------------------------------------------------------- the recording


@dataclass
class Signals:
    """A recording reduced to the checkpoint's channels, in its order, ready for windowing."""

    values: np.ndarray  # [T, C] float64, raw units of the checkpoint's channels
    form: str  # "channels" (the checkpoint's own) or "raw <format>" (derived by the reader's preprocessing)
    rate_hz: float  # the checkpoint's rate (the recording's was checked against it)
    rate_check: str  # how the rate was checked
    time: np.ndarray | None = None  # the time column (s), if any


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (optionally .gz) or Parquet recording; BadInput naming the file if it is unreadable."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise BadInput(f"{path}: no such file; give a CSV or Parquet recording with --input")
    if not name.endswith(INPUT_SUFFIXES):
        raise BadInput(f"{path}: unknown file type; use .csv, .csv.gz or .parquet")
    try:
        table = pd.read_parquet(path) if name.endswith((".parquet", ".pq")) else pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"{path}: unreadable ({detail})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    if table.empty:
        raise BadInput(f"{path}: no rows; the recording is empty")
    return table


def _numeric(table: pd.DataFrame, columns: list[str], source: Path) -> np.ndarray:
    """Columns as float64 [T, C]; BadInput naming the column and row of a missing or non-numeric value."""
    out = np.empty((len(table), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        raw = table[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            original = raw.iloc[row]
            if isinstance(original, str):
                what = f"the non-numeric value {original.strip()!r}"
            elif pd.isna(original):
                what = "a missing value (NaN)"
            else:
                what = f"the value {original}"
            raise BadInput(
                f"{source}: column {col!r} has {what} in row {row + 1} ({int(bad.sum())} bad value(s) in "
                "that column); fill or drop those rows"
            )
        out[:, j] = values
    return out


def _time_column(table: pd.DataFrame) -> str | None:
    by_lower = {c.lower(): c for c in table.columns}
    return next((by_lower[n] for n in TIME_COLUMNS if n in by_lower), None)


def check_rate(
    table: pd.DataFrame, source: Path, rate_hz: float, rate: float | None = None
) -> tuple[np.ndarray | None, str]:
    """The time column (if any) and a note on how the rate was checked; BadInput on a mismatch."""
    expected = float(rate_hz)
    note = f"not checked: {expected:g} Hz assumed (add a time column in seconds or pass --rate)"
    if rate is not None:
        if not rate > 0:
            raise BadInput(f"--rate {rate:g}: must be positive (samples per second)")
        if abs(rate - expected) > RATE_TOLERANCE * expected:
            raise BadInput(
                f"{source}: --rate {rate:g} Hz, but the model expects {expected:g} Hz; resample the "
                f"recording to {expected:g} Hz (har predict does not resample)"
            )
        note = f"{rate:g} Hz from --rate"
    col = _time_column(table)
    if col is None:
        return None, note
    time = _numeric(table, [col], source)[:, 0]
    if len(time) < 2:
        return time, note
    steps = np.diff(time)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 2
        raise BadInput(
            f"{source}: column {col!r} does not increase at row {row}; sort the recording by time "
            "and drop repeated time stamps"
        )
    measured = 1.0 / float(np.median(steps))
    if abs(measured - expected) > RATE_TOLERANCE * expected:
        raise BadInput(
            f"{source}: sampled at {measured:.4g} Hz (from column {col!r}, in seconds), but the model "
            f"expects {expected:g} Hz; resample the recording to {expected:g} Hz (har predict does not resample)"
        )
    return time, f"{measured:.4g} Hz from column {col!r}"


def raw_format(info: dict[str, Any]) -> str | None:
    """The reader format whose preprocessing derives the checkpoint's channels from raw columns."""

    spec = BUILTIN.get(str(info.get("dataset")))
    return "uci_hapt" if spec is not None and spec.format == "uci_hapt" else None


def reader_options(info: dict[str, Any], params_path: Path | str = "params.yaml") -> Any:
    """The UCI HAPT reader options the checkpoint's data was prepared with: the checkpoint's own
    ``reader_options`` if it records them, else ``params.yaml`` ``datasets.<name>.options`` (defaults)."""

    if "reader_options" in info:


        try:
            return uci_hapt.Options.model_validate(info["reader_options"])
        except ValidationError as exc:
            raise BadInput(validation_message("checkpoint.json", "reader_options", exc)) from exc
    spec = resolve(str(info["dataset"]), Path(params_path))
    return prepared_options(spec, params_path)


def _raw_needed(channels: list[str]) -> list[str]:
    """The raw UCI HAPT columns the checkpoint's channels are computed from."""
    acc = any(c.startswith(("total_acc_", "body_acc_")) for c in channels)
    gyro = any(c.startswith("body_gyro_") for c in channels)
    return (RAW_ACC if acc else []) + (RAW_GYRO if gyro else [])


def derive_uci_hapt(
    raw: dict[str, np.ndarray], channels: list[str], rate_hz: float, options: Any
) -> np.ndarray:
    """Raw acc (g) / gyro (rad/s) columns -> the checkpoint's channels, filtered as ``prepare`` does.

    Every filter works per column, so a sensor the checkpoint does not use may be absent (zeros stand in).
    """

    n = len(next(iter(raw.values())))
    zeros = np.zeros(n, dtype=np.float64)
    acc = np.stack([raw.get(c, zeros) for c in RAW_ACC], axis=1)
    gyro = np.stack([raw.get(c, zeros) for c in RAW_GYRO], axis=1)
    derived = preprocess(acc, gyro, rate_hz, options)
    return derived[:, [UCI_CHANNELS.index(c) for c in channels]]


def recording_signals(
    table: pd.DataFrame,
    info: dict[str, Any],
    source: Path,
    rate: float | None = None,
    params_path: Path | str = "params.yaml",
) -> Signals:
    """The recording's values for the checkpoint's channels, after rate, NaN and length checks."""
    channels = list(info["channels"])
    window = int(info["window"])
    rate_hz = float(info["rate_hz"])
    columns = set(table.columns)
    missing = [c for c in channels if c not in columns]
    fmt = raw_format(info)
    raw_missing = [c for c in _raw_needed(channels) if c not in columns] if fmt else []
    use_raw = bool(missing) and fmt is not None and not raw_missing
    if missing and not use_raw:
        partial_derived = len(missing) < len(channels)
        if fmt is None or partial_derived:
            hint = f"the model needs the columns {_short(channels)}"
            if fmt is not None:
                hint += f" (or the raw columns {', '.join(_raw_needed(channels))})"
            raise BadInput(f"{source}: channel {missing[0]!r} is missing; {hint}")
        raise BadInput(
            f"{source}: channel {raw_missing[0]!r} is missing; give the raw columns "
            f"{', '.join(_raw_needed(channels))} (acc in g, gyro in rad/s) or the model's channels "
            f"{_short(channels)}"
        )
    time, note = check_rate(table, source, rate_hz, rate)
    if len(table) < window:
        raise BadInput(
            f"{source}: {len(table)} samples, shorter than one window of {window} samples "
            f"({window / rate_hz:.2f} s at {rate_hz:g} Hz); give a longer recording"
        )
    if use_raw:
        needed = _raw_needed(channels)
        values = _numeric(table, needed, source)
        raw = {c: values[:, i] for i, c in enumerate(needed)}
        derived = derive_uci_hapt(raw, channels, rate_hz, reader_options(info, params_path))
        return Signals(derived, f"raw {fmt}", rate_hz, note, time)
    return Signals(_numeric(table, channels, source), "channels", rate_hz, note, time)


def _short(names: list[str], n: int = 9) -> str:
    return ", ".join(names) if len(names) <= n else ", ".join(names[:n]) + f", ... ({len(names)} in all)"


# ---------------------------------------------------------------- windows and predictions


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


def window_starts(n_samples: int, window: int, step: int) -> np.ndarray:
    if n_samples < window:
        return np.empty(0, dtype=np.int64)
    return np.arange(0, n_samples - window + 1, step, dtype=np.int64)


def predict_signals(
    model: Any, info: dict[str, Any], signals: Signals, step: int | None = None, adapt: bool = False
) -> Predictions:
    """Classify every window of ``signals`` (normalised with the checkpoint's mean and std). ``adapt``:
    first re-estimate the model's BatchNorm statistics on this recording's windows (har.train.adapt; the
    recording is taken to be one subject's)."""

    window = int(info["window"])
    step = window // 2 if step is None else int(step)
    if step < 1:
        raise BadInput(f"--step {step}: must be at least 1 sample")
    mean = np.asarray(info["normalization"]["mean"], dtype=np.float32)
    std = np.asarray(info["normalization"]["std"], dtype=np.float32)
    values = signals.values.astype(np.float32)  # as prepare stores windows
    starts = window_starts(len(values), window, step)
    view = sliding_window_view(values, window, axis=0)  # [T-window+1, C, window], no copy

    def chunk(i: int) -> np.ndarray:
        X = np.ascontiguousarray(view[starts[i : i + CHUNK]].transpose(0, 2, 1))
        return ((X - mean) / std).astype(np.float32)

    if adapt:  # every window at once: the statistics are the recording's, not one chunk's

        check_adaptable(model, info["model"])
        X = np.concatenate([chunk(i) for i in range(0, len(starts), CHUNK)])
        all_logits = predict_logits(adapt_batchnorm(model, X), X)
    else:
        all_logits = np.concatenate([predict_logits(model, chunk(i)) for i in range(0, len(starts), CHUNK)])
    start_s = signals.time[starts] if signals.time is not None else starts / signals.rate_hz
    return Predictions(
        classes=list(info["classes"]),
        window=window,
        step=step,
        starts=starts,
        start_s=np.asarray(start_s, dtype=np.float64),
        labels=all_logits.argmax(axis=1),
        probabilities=softmax(all_logits),
    )


# ---------------------------------------------------------------- output


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


# ---------------------------------------------------------------- end to end


@dataclass
class PredictRun:
    predictions: Predictions
    signals: Signals
    checkpoint: Path
    info: dict[str, Any]
    output: Path | str


def predict_file(
    model_ref: str,
    input_path: Path,
    output: Path | str | None = None,
    step: int | None = None,
    rate: float | None = None,
    tracking_uri: str | None = None,
    device: str = "cpu",
    params_path: Path | str = "params.yaml",
    checkpoint: Path | None = None,
    adapt: bool = False,
    members: list[Path] | None = None,
) -> PredictRun:
    """``har predict``: resolve the model, check and window the recording, classify, write the output.
    ``members``: the checkpoint folders of an ensemble (har.train.ensemble; ``checkpoint`` is the first): each
    classifies the windows with its own normalisation (and adaptation), their probabilities are averaged.

    Every check runs before anything is written; the output appears whole or not at all.
    """
    input_path = Path(input_path)
    target: Path | str = default_output(input_path) if output is None else output
    output_kind(target)  # a bad suffix fails before the model loads
    if str(target) != STDOUT and Path(target).resolve() == input_path.resolve():
        raise BadInput(f"--output {target}: is the input file; choose another output")
    if step is not None and step < 1:
        raise BadInput(f"--step {step}: must be at least 1 sample")
    folder = checkpoint or resolve_model(model_ref, tracking_uri)
    folders = members or [folder]
    infos = [read_info(f) for f in folders]
    if len(folders) > 1:

        check_same_data(folders, infos)
    info = infos[0]
    table = read_table(input_path)
    signals = recording_signals(table, info, input_path, rate, params_path)
    # torch loads only once the input is known to be good
    preds = [predict_signals(*load_model(f, device), signals, step, adapt=adapt) for f in folders]
    pred = preds[0]
    if len(preds) > 1:
        pred.probabilities = np.mean([p.probabilities for p in preds], axis=0)
        pred.labels = pred.probabilities.argmax(axis=1)
    pred.meta = {
        "model": info["model"] if len(infos) == 1 else "ensemble of " + ", ".join(i["model"] for i in infos),
        "preset": info.get("preset"),
        "checkpoint": str(folder),
        **({"members": [str(f) for f in folders]} if len(folders) > 1 else {}),
        "reference": model_ref,
        "dataset": info["dataset"],
        "sensors": info.get("sensors"),
        "channels": list(info["channels"]),
        "rate_hz": signals.rate_hz,
        "input": str(input_path),
        "input_form": signals.form,
        "samples": len(signals.values),
        "adapted": adapt,  # BatchNorm statistics re-estimated on this recording (har.train.adapt)
    }
    write_predictions(pred, target)
    return PredictRun(pred, signals, folder, info, target)
