"""``har predict``: the typer command over ``har.predict.sensors`` (registered in ``har/cli/__init__.py``).

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
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="Checkpoint folder written by 'har train', or a registry reference such as "
            "har-uci_hapt-all@champion or har-uci_hapt-all/3. Repeat it for an ensemble of sensor models "
            "(the mean of their class probabilities; same dataset, channels, classes and window).",
        ),
    ],
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="Sensor models: a recording (.csv, .csv.gz or .parquet), one column per channel at the "
            "dataset's rate; either the model's channels or, for UCI HAPT, raw acc_x..z (g) and gyro_x..z "
            "(rad/s); optional time column in seconds. Image models: an image, a folder of images or a "
            "video (.mp4, .avi, ...), classified frame by frame.",
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
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            help="Sensor models: windows per model call; 1 measures the per-window latency of live use.",
        ),
    ] = 4096,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="CPU threads of the model (default: PyTorch's choice)."),
    ] = None,
    params: Annotated[
        Path,
        typer.Option(
            "--params", help="params.yaml whose reader options (UCI HAPT filters) apply to raw input."
        ),
    ] = Path("params.yaml"),
    smooth: Annotated[
        int,
        typer.Option(
            "--smooth",
            help="Video: frames over which class probabilities are averaged for the smoothed labels.",
        ),
    ] = 5,
    video_out: Annotated[
        Path | None,
        typer.Option(
            "--video-out", help="Video: also write it annotated with the smoothed label (.mp4, .avi)."
        ),
    ] = None,
    adapt: Annotated[
        bool,
        typer.Option(
            "--adapt",
            help="Sensor models with BatchNorm: re-estimate its statistics on this recording's windows "
            "before classifying them (AdaBN; the recording is one subject's; see docs/models.md).",
        ),
    ] = False,
) -> None:
    """Classify a recording window by window with a trained model: labels and class probabilities.

    Every window of the model's length (step: --step) gets one label and one probability per class,
    written as CSV or JSON. The recording must match the model's channels and sampling rate (errors
    say what to fix); nothing is resampled. An image model labels an image, every image of a folder,
    or every frame of a video (plus a smoothed label track, optionally drawn on the video).
    See docs/predict.md."""
    from har.errors import BadInput
    from har.predict.model import read_info, resolve_model
    from har.predict.output import STDOUT
    from har.predict.sensors import predict_file

    if device not in ("cpu", "cuda", "auto"):
        raise BadInput(f"--device {device!r}: choose cpu, cuda or auto")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    folders = [resolve_model(ref, uri) for ref in model]
    folder, info = folders[0], read_info(folders[0])
    if info.get("kind") == "images":
        if adapt:
            raise BadInput(
                "--adapt: adapts a sensor model to one subject's recording; image models have none"
            )
        if len(folders) > 1:
            raise BadInput(
                f"--model {model[0]}: an image model; ensembles classify sensor recordings, give one"
            )
        _predict_media(folder, model[0], info, input_path, output, smooth, video_out, device)
        return
    _refuse_media_for_sensor_model(input_path, info, video_out)
    result = predict_file(
        model[0], input_path, output, step=step, rate=rate, tracking_uri=uri, device=device, params_path=params,
        checkpoint=folder, adapt=adapt, members=folders if len(folders) > 1 else None, batch_size=batch_size,
        threads=threads,
    )  # fmt: skip
    to_stdout = str(result.output) == STDOUT
    console = Console(stderr=to_stdout)
    pred, signals, info = result.predictions, result.signals, result.info
    seconds = pred.window / signals.rate_hz
    console.print(
        f"{len(pred.starts)} windows of {pred.window} samples ({seconds:.2f} s, step {pred.step}) from "
        f"{len(signals.values)} samples of {input_path}; model {pred.meta['model']} on "
        f"{info['dataset']}/{info.get('sensors', 'all')} ({', '.join(map(str, folders))})",
        highlight=False,
    )
    form = (
        "the model's channels"
        if signals.form == "channels"
        else f"{signals.form} columns, filtered as prepare"
    )
    adapted = "; BatchNorm statistics adapted to this recording" if adapt else ""
    console.print(f"input: {form}; rate {signals.rate_check}{adapted}", highlight=False)
    if adapt:
        console.print(
            "note: --adapt assumes the recording spans the subject's usual mix of activities; on a "
            "recording of one or two activities it can cost accuracy (docs/models.md)",
            highlight=False,
        )
    console.print(_label_table(pred.label_counts(), len(pred.starts), "windows", "predicted labels"))
    console.print(f"predictions: {'stdout' if to_stdout else result.output}", highlight=False)
    if pred.starts.size:
        import torch

        console.print(
            f"inference: {1000 * pred.inference_s / len(pred.starts):.3f} ms per window ({len(pred.starts)} "
            f"windows, batch {batch_size}, {torch.get_num_threads()} thread(s), {device})",
            highlight=False,
        )


def _refuse_media_for_sensor_model(input_path: Path, info: dict, video_out: Path | None) -> None:
    from har.data.formats.image_folder import IMAGE_SUFFIXES
    from har.errors import BadInput
    from har.predict.media import VIDEO_SUFFIXES

    media = input_path.is_dir() or input_path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES
    if media or video_out is not None:
        raise BadInput(
            f"--input {input_path}: model {info['model']} classifies sensor windows of {info['dataset']}; "
            "give a recording (.csv, .csv.gz or .parquet) and no --video-out"
        )


def _predict_media(folder: Path, reference: str, info: dict, input_path: Path, output: str | None, smooth: int,
                   video_out: Path | None, device: str) -> None:  # fmt: skip
    from har.predict.media import predict_media_file
    from har.predict.output import STDOUT

    pred, target = predict_media_file(folder, reference, input_path, output, smooth, video_out, device)
    console = Console(stderr=str(target) == STDOUT)
    what = {"image": "1 image", "folder": f"{len(pred.names)} images", "video": f"{len(pred.names)} frames"}
    console.print(f"{what[pred.kind]} of {input_path}; model {info['model']} on {info['dataset']} ({folder})",
                  highlight=False)  # fmt: skip
    title = "predicted labels" + (f" (smoothed over {smooth} frames)" if pred.kind == "video" else "")
    unit = "frames" if pred.kind == "video" else "images"
    console.print(_label_table(pred.label_counts(), len(pred.names), unit, title))
    console.print(f"predictions: {'stdout' if str(target) == STDOUT else target}", highlight=False)
    if video_out is not None:
        console.print(f"annotated video: {video_out}", highlight=False)


def _label_table(counts: dict[str, int], total: int, unit: str, title: str) -> Table:
    """Predicted labels, most frequent first: count and share of the windows / images / frames."""
    table = Table(title=title)
    table.add_column("label")
    table.add_column(unit, justify="right")
    table.add_column("share", justify="right")
    for label, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        table.add_row(label, str(count), f"{count / total:.0%}")
    return table
