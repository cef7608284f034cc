"""A raw recording as the checkpoint's channels: a CSV or Parquet table read and checked (columns, numbers,
sampling rate), and for UCI HAPT the raw acc/gyro columns filtered as ``har data prepare`` filters them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from har.data.formats import uci_hapt
from har.data.formats.uci_hapt import preprocess
from har.data.prepare import reader_options as prepared_options
from har.data.registry import BUILTIN, UCI_CHANNELS, resolve
from har.errors import BadInput, validation_message

RAW_ACC = ["acc_x", "acc_y", "acc_z"]  # g


RAW_GYRO = ["gyro_x", "gyro_y", "gyro_z"]  # rad/s


RAW_UCI_HAPT = RAW_ACC + RAW_GYRO


TIME_COLUMNS = ("time", "timestamp")  # seconds


RATE_TOLERANCE = 0.02


INPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


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
