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
label and one probability per class. Nothing here knows about typer; ``har/cli/predict.py`` is the command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from har.errors import BadInput
from har.metrics import softmax
from har.predict.model import load_model, read_info, resolve_model
from har.predict.output import STDOUT, Predictions, default_output, output_kind, write_predictions
from har.predict.recording import Signals, read_table, recording_signals
from har.train.adapt import adapt_batchnorm, check_adaptable
from har.train.ensemble import check_same_data
from har.train.loop import predict_logits

CHUNK = 4096  # windows normalised and classified at a time (bounds memory for small steps)


# ---------------------------------------------------------------- windows and predictions


def window_starts(n_samples: int, window: int, step: int) -> np.ndarray:
    if n_samples < window:
        return np.empty(0, dtype=np.int64)
    return np.arange(0, n_samples - window + 1, step, dtype=np.int64)


def predict_signals(
    model: Any, info: dict[str, Any], signals: Signals, step: int | None = None, adapt: bool = False,
    batch_size: int = CHUNK,
) -> Predictions:  # fmt: skip
    """Classify every window of ``signals`` (normalised with the checkpoint's mean and std), ``batch_size``
    windows per model call. ``adapt``: first re-estimate the model's BatchNorm statistics on this
    recording's windows (har.train.adapt; the recording is taken to be one subject's)."""

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

    if batch_size < 1:
        raise BadInput(f"--batch-size {batch_size}: must be at least 1")
    inference = 0.0
    if adapt:  # every window at once: the statistics are the recording's, not one chunk's
        check_adaptable(model, info["model"])
        X = np.concatenate([chunk(i) for i in range(0, len(starts), CHUNK)])
        model = adapt_batchnorm(model, X)
        began = time.perf_counter()
        all_logits = predict_logits(model, X, batch_size)
        inference = time.perf_counter() - began
    else:
        parts = []
        for i in range(0, len(starts), CHUNK):
            X = chunk(i)
            began = time.perf_counter()
            parts.append(predict_logits(model, X, batch_size))
            inference += time.perf_counter() - began
        all_logits = np.concatenate(parts)
    start_s = signals.time[starts] if signals.time is not None else starts / signals.rate_hz
    return Predictions(
        classes=list(info["classes"]),
        window=window,
        step=step,
        starts=starts,
        start_s=np.asarray(start_s, dtype=np.float64),
        labels=all_logits.argmax(axis=1),
        probabilities=softmax(all_logits),
        inference_s=inference,
    )


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
    batch_size: int = CHUNK,
    threads: int | None = None,
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
    if threads is not None:
        if threads < 1:
            raise BadInput(f"--threads {threads}: must be at least 1")
        torch.set_num_threads(threads)
    preds = [
        predict_signals(*load_model(f, device), signals, step, adapt=adapt, batch_size=batch_size)
        for f in folders
    ]
    pred = preds[0]
    pred.inference_s = sum(p.inference_s for p in preds)
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
