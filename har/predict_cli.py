"""``har predict``: the typer command over ``har.predict`` (registered in ``har/cli.py``).

Only typer and rich are imported here; torch and pandas load when the command runs, so ``har --help``
stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def predict_cmd(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Checkpoint folder written by 'har train', or a registry reference such as "
            "har-uci_hapt-all@champion or har-uci_hapt-all/3.",
        ),
    ],
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="Recording (.csv, .csv.gz or .parquet): one column per channel at the dataset's rate; "
            "either the model's channels or, for UCI HAPT, raw acc_x..z (g) and gyro_x..z (rad/s); "
            "optional time column in seconds.",
        ),
    ],
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="out.csv or out.json (format by suffix); '-' writes CSV to stdout. "
            "Default: <input stem>.predictions.csv beside the input.",
        ),
    ] = None,
    step: Annotated[
        int | None,
        typer.Option("--step", help="Samples between window starts (default: half the model's window)."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            help="Sampling rate of the recording in Hz, checked against the model's (no time column needed).",
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help=f"MLflow tracking URI for registry references (default: $MLFLOW_TRACKING_URI or "
            f"{DEFAULT_TRACKING_URI}).",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (CUDA when present).")] = "cpu",
    params: Annotated[
        Path,
        typer.Option(
            "--params", help="params.yaml whose reader options (UCI HAPT filters) apply to raw input."
        ),
    ] = Path("params.yaml"),
) -> None:
    """Classify a recording window by window with a trained model: labels and class probabilities.

    Every window of the model's length (step: --step) gets one label and one probability per class,
    written as CSV or JSON. The recording must match the model's channels and sampling rate (errors
    say what to fix); nothing is resampled. See docs/predict.md."""
    from har.errors import BadInput
    from har.predict import STDOUT, predict_file

    if device not in ("cpu", "cuda", "auto"):
        raise BadInput(f"--device {device!r}: choose cpu, cuda or auto")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    result = predict_file(
        model, input_path, output, step=step, rate=rate, tracking_uri=uri, device=device, params_path=params
    )
    to_stdout = str(result.output) == STDOUT
    console = Console(stderr=to_stdout)
    pred, signals, info = result.predictions, result.signals, result.info
    seconds = pred.window / signals.rate_hz
    console.print(
        f"{len(pred.starts)} windows of {pred.window} samples ({seconds:.2f} s, step {pred.step}) from "
        f"{len(signals.values)} samples of {input_path}; model {info['model']} on "
        f"{info['dataset']}/{info.get('sensors', 'all')} ({result.checkpoint})",
        highlight=False,
    )
    form = (
        "the model's channels"
        if signals.form == "channels"
        else f"{signals.form} columns, filtered as prepare"
    )
    console.print(f"input: {form}; rate {signals.rate_check}", highlight=False)
    table = Table(title="predicted labels")
    table.add_column("label")
    table.add_column("windows", justify="right")
    table.add_column("share", justify="right")
    for label, count in sorted(pred.label_counts().items(), key=lambda kv: -kv[1]):
        table.add_row(label, str(count), f"{count / len(pred.starts):.0%}")
    console.print(table)
    console.print(f"predictions: {'stdout' if to_stdout else result.output}", highlight=False)
