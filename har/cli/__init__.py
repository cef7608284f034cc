"""The ``har`` command line: thin wiring of har.data (later: train, tune, models, predict, report)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from har import __version__
from har.cli.options import (
    DatasetOpt,
    DeviceOpt,
    EpochsOpt,
    HparamOpt,
    ModelOpt,
    ParamsOpt,
    PresetOpt,
    SeedOpt,
    SensorsOpt,
    SettingOpt,
    ValFractionOpt,
    run_spec,
)
from har.errors import BadInput, HarError

app = typer.Typer(
    help="har-lab: human-activity-recognition experiments, from raw sensor data to registered models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(
    help="Datasets: list the registry, fetch archives, prepare windows, inspect prepared data.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
models_app = typer.Typer(
    help="The model zoo (architectures, presets) and the registry (champions per dataset x sensors).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")
from har.cli.predict import predict_cmd  # noqa: E402

app.command("predict")(predict_cmd)
from har.cli.cv import cv_cmd  # noqa: E402

app.command("cv")(cv_cmd)

out = Console()
err = Console(stderr=True)

NameArg = Annotated[str, typer.Argument(help="Dataset name (see 'har data list').")]


def _version(value: bool) -> None:
    if value:
        out.print(f"har-lab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """har-lab: human-activity-recognition experiments, from raw sensor data to registered models."""


@data_app.command("list")
def data_list(params: ParamsOpt = Path("params.yaml")) -> None:
    """List every known dataset (built-in and custom ones declared in params.yaml)."""
    from har.data.prepare import expected_classes
    from har.data.registry import dataset_names, load_params, resolve
    from har.data.settings import data_settings

    settings = data_settings(params)
    table = Table(title="datasets (details: har data info NAME)")
    for col in ("name", "Hz", "ch", "classes", "window", "groups", "status"):
        table.add_column(col, no_wrap=col in ("name", "window", "status"))
    for name in dataset_names(load_params(params)):
        spec = resolve(name, params)
        if (settings.prepared_dir / name / "meta.json").is_file():
            status = "prepared"
        elif (settings.raw_dir / name).is_dir():
            status = "fetched"
        else:
            status = "-"
        if spec.window is None:  # images
            crop = spec.options.get("crop", 224)
            rate, window = "-", f"images {crop}x{crop}"
        else:
            rate, window = f"{spec.rate_hz:g}", f"{spec.window.size}/{spec.window.step} {spec.window.label}"
        table.add_row(
            name,
            rate,
            str(len(spec.channels)),
            str(len(expected_classes(spec, params))),
            window,
            ", ".join(spec.groups),
            status,
        )
    out.print(table)


@data_app.command("info")
def data_info(
    name: NameArg,
    sensors: Annotated[
        str, typer.Option("--sensors", help="Sensor permutation to show, e.g. 'acc+gyro' or 'all'.")
    ] = "all",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Show a dataset's sources, checksums, citation, licence, channels, classes, split and window;
    and, once prepared, shapes and per-class window counts per split."""
    from har.data.prepare import expected_classes, reader_options
    from har.data.registry import resolve
    from har.data.settings import data_settings
    from har.sensors import canonical, channels_of

    spec = resolve(name, params)
    chosen = channels_of(sensors, spec.groups, spec.channels, name)
    settings = data_settings(params)
    out.print(f"[bold]{spec.name}[/bold]: {spec.title}")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("format", spec.format)
    facts.add_row("homepage", spec.homepage or "-")
    for src in spec.sources:
        digest = (
            f"sha256 {src.sha256}"
            if src.sha256
            else (f"git blob {src.git_blob_sha1}" if src.git_blob_sha1 else "no published checksum")
        )
        facts.add_row("source", f"{src.url}\n{digest}" + (f"\n{src.note}" if src.note else ""))
    if spec.bundled:
        facts.add_row("bundled", spec.bundled)
    if spec.checksums:
        facts.add_row("file checksums", f"har/data/checksums/{spec.checksums}")
    facts.add_row("citation", spec.citation)
    facts.add_row("licence", spec.licence)
    facts.add_row("kind", spec.kind)
    if spec.rate_hz is not None:
        facts.add_row("rate", f"{spec.rate_hz:g} Hz")
    facts.add_row("groups", "\n".join(f"{g} ({len(c)}): {', '.join(c)}" for g, c in spec.groups.items()))
    classes = expected_classes(spec, params)
    facts.add_row("classes", f"{len(classes)}: {', '.join(classes)}" if classes else "the class folder names")
    w = spec.window
    if w is not None and spec.rate_hz is not None:
        facts.add_row(
            "window", f"{w.size} samples ({w.size / spec.rate_hz:g} s), step {w.step}, label: {w.label}"
        )
    facts.add_row("split", spec.split.rule)
    if spec.split.folds:
        facts.add_row("folds", " | ".join(",".join(map(str, f)) for f in spec.split.folds))
    facts.add_row("sensors", f"{canonical(sensors, spec.groups, name)}: {len(chosen)} channels")
    options = reader_options(spec, params).model_dump()
    if options:
        facts.add_row("options", ", ".join(f"{k}={v}" for k, v in options.items()))
    if spec.notes:
        facts.add_row("notes", spec.notes)
    out.print(facts)
    folder = settings.prepared_dir / name
    if not (folder / "meta.json").is_file():
        out.print(f"\nnot prepared yet: run [bold]har data prepare {name}[/bold]")
        return
    if spec.kind == "images":
        _image_counts(folder)
        return
    from har.data.prepared import load_prepared

    prepared = load_prepared(folder)
    meta = prepared.meta
    n, t, _ = meta["shape"]
    out.print(f"\nprepared in {folder}: X {tuple(meta['shape'])} float32")
    out.print(f"sensors {canonical(sensors, spec.groups, name)}: X ({n}, {t}, {len(chosen)})")
    counts = Table(title="windows per class and split")
    counts.add_column("class")
    for part in ("train", "test"):
        counts.add_column(f"{part} ({meta['split']['windows'][part]} windows)", justify="right")
    for i, cls in enumerate(meta["classes"]):
        counts.add_row(cls, str(meta["class_counts"]["train"][i]), str(meta["class_counts"]["test"][i]))
    out.print(counts)
    split = meta["split"]
    out.print(f"train subjects: {split['train_subjects']}\ntest subjects: {split['test_subjects']}")
    if split.get("extra_windows"):
        out.print(_extra_line(meta))


def _extra_line(meta: dict) -> str:
    """What window.train_step added: training-only windows, not in the counts above."""
    extra, window = meta["split"]["extra_windows"], meta["window"]
    return (f"plus {extra['train']} train / {extra['test']} test-subject windows every {window['train_step']} "
            f"samples (window.train_step), used for training only: scoring uses the step-{window['step']} windows")  # fmt: skip


def _image_counts(folder: Path) -> None:
    """Per-class image counts of a prepared image dataset (train / val / test)."""
    meta = json.loads((folder / "meta.json").read_text())
    image, images = meta["image"], meta["split"]["images"]
    out.print(f"\nprepared in {folder}: {meta['shape'][0]} images, stored {image['size']}x{image['size']} "
              f"({image['encoding']}, {meta['bytes'] / 1e6:.1f} MB), model input {image['crop']}x{image['crop']}")  # fmt: skip
    counts = Table(title=f"images per class and split ({meta['split']['by']}, seed {meta['split']['seed']})")
    counts.add_column("class")
    for part in ("train", "val", "test"):
        counts.add_column(f"{part} ({images[part]})", justify="right")
    for i, cls in enumerate(meta["classes"]):
        counts.add_row(cls, *(str(meta["class_counts"][p][i]) for p in ("train", "val", "test")))
    out.print(counts)
    out.print(f"split of every file: {folder / 'index.csv'}")


@data_app.command("fetch")
def data_fetch(
    name: NameArg,
    mirror: Annotated[
        Path | None,
        typer.Option(
            "--mirror",
            help="Local root folder with one subfolder per dataset holding the official archive or its "
            "extracted files (plain or .gz). Default: $HAR_DATA_MIRROR, then params.yaml data.mirror.",
        ),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Download (or copy from a local mirror) a dataset's official files, verify checksums, extract safely."""
    from har.data.fetch import fetch
    from har.data.registry import resolve
    from har.data.settings import data_settings, resolve_mirror

    spec = resolve(name, params)
    settings = data_settings(params)
    dest = fetch(spec, settings.raw_dir, resolve_mirror(mirror, settings), repo_root=Path("."))
    out.print(f"fetched {name} -> {dest}")


@data_app.command("prepare")
def data_prepare(name: NameArg, params: ParamsOpt = Path("params.yaml")) -> None:
    """Cut a fetched dataset into windows: writes X.npy, y.npy, subject.npy, split.npy and meta.json
    to data/prepared/<name>/ (normalisation statistics fitted on training subjects only)."""
    from har.data.prepare import prepare
    from har.data.registry import resolve
    from har.data.settings import data_settings

    spec = resolve(name, params)
    settings = data_settings(params)
    start = time.perf_counter()
    if spec.kind == "images":
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task(f"resizing {name} images", total=None)
            target = prepare(spec, settings.raw_dir / name, settings.prepared_dir, params,
                             progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
        meta = json.loads((target / "meta.json").read_text())
        images = meta["split"]["images"]
        out.print(f"prepared {name} -> {target}: {meta['shape'][0]} images of {len(meta['classes'])} classes, "
                  f"{images['train']} train / {images['val']} val / {images['test']} test "
                  f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
        return
    with err.status(f"preparing {name} from {settings.raw_dir / name} ..."):
        target = prepare(spec, settings.raw_dir / name, settings.prepared_dir, params)
    from har.data.prepared import load_prepared

    meta = load_prepared(target).meta
    windows = meta["split"]["windows"]
    out.print(
        f"prepared {name} -> {target}: X {tuple(meta['shape'])}, {windows['train']} train / "
        f"{windows['test']} test windows, {len(meta['classes'])} classes "
        f"({time.perf_counter() - start:.1f} s)"
    )
    if meta.get("reference_windows"):
        ref, diff = meta["reference_windows"]["published"], meta["reference_windows"]["difference_pct"]
        out.print(
            f"published: {ref['train']} train / {ref['test']} test windows "
            f"(ours {diff['train']:+.1f}% / {diff['test']:+.1f}%)"
        )
    if meta["split"].get("extra_windows"):
        out.print(_extra_line(meta))


@data_app.command("permutations")
def data_permutations(name: NameArg, params: ParamsOpt = Path("params.yaml")) -> None:
    """List the sensor permutations of a dataset ('+'-joined sensor groups, or 'all') and their channels."""
    from har.data.registry import resolve
    from har.sensors import channels_of, permutations

    spec = resolve(name, params)
    table = Table(title=f"sensor permutations of {name}")
    table.add_column("permutation")
    table.add_column("channels", justify="right")
    table.add_column("names")
    for perm in permutations(spec.groups):
        idx = channels_of(perm, spec.groups, spec.channels, name)
        names = [spec.channels[i] for i in idx]
        shown = ", ".join(names) if len(names) <= 9 else ", ".join(names[:8]) + f", ... (+{len(names) - 8})"
        table.add_row(perm, str(len(idx)), shown)
    out.print(table)


@models_app.command("zoo")
def models_zoo(
    channels: Annotated[int, typer.Option(help="Input channels used to count parameters.")] = 9,
    classes: Annotated[int, typer.Option(help="Classes used to count parameters.")] = 6,
    window: Annotated[int, typer.Option(help="Window length used to count parameters.")] = 128,
) -> None:
    """List every architecture and its published presets, with parameter counts (UCI HAR shape by default)."""
    from har.models import build, count_parameters, entry, model_names

    table = Table(title=f"model zoo (parameters for {window} x {channels} windows, {classes} classes)")
    for col in ("model", "preset", "parameters", "description / published result"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for name in model_names():
        item = entry(name)
        shape = (3, classes, 224) if item.inputs == "images" else (channels, classes, window)
        summary = item.summary + (" [images 224x224]" if item.inputs == "images" else "")
        table.add_row(name, "(defaults)", f"{count_parameters(build(name, *shape)):,}", summary)
        for p in item.presets.values():
            params = count_parameters(build(name, *shape, **p.hparams))
            table.add_row("", f"{name}:{p.name}", f"{params:,}", p.published)
    out.print(table)


@app.command("train")
def train_cmd(
    dataset: DatasetOpt,
    model: ModelOpt,
    sensors: SensorsOpt = "all",
    preset: PresetOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = 0,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Mini-batch size.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    hparam: HparamOpt = [],  # noqa: B006
    setting: SettingOpt = [],  # noqa: B006
    val_fraction: ValFractionOpt = 0.2,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Checkpoint folder (default runs/train/<name>).")
    ] = None,
    device: DeviceOpt = "auto",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Train one model on a prepared dataset: selection on validation subjects, one test evaluation,
    a checkpoint (state_dict + JSON) in runs/train/."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from har.data.settings import data_settings
    from har.train.checkpoint import save_checkpoint
    from har.train.run import checkpoint_info, run

    spec = run_spec(dataset, model, sensors, preset, hparam, setting, val_fraction,
                    max_epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device)  # fmt: skip
    settings = data_settings(params)
    # check what the user typed before the progress bars start, so that bad input stays one line
    from har.models import build
    from har.train.data import load_train_data
    from har.train.run import resolve as resolve_run

    run_hparams, run_config = resolve_run(spec)
    data = load_train_data(settings.prepared_dir, dataset, sensors, val_fraction, spec.split_seed)
    build(model, len(data.channels), len(data.classes), data.window, **run_hparams)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        epoch_task = progress.add_task("epochs", total=None, status="")
        batch_task = progress.add_task("batches", total=None, status="")

        def on_batch(done: int, total: int) -> None:
            progress.update(batch_task, completed=done, total=total)

        def report(epoch: int, row: dict[str, float]) -> None:
            status = f"val acc {row['val/accuracy']:.3f}  macro F1 {row['val/macro_f1']:.3f}  loss {row['val/loss']:.3f}"
            progress.update(epoch_task, completed=epoch, status=status)

        progress.update(epoch_task, total=run_config.max_epochs)
        result = run(spec, settings.prepared_dir, data=data, report=report, on_batch=on_batch)
    name = f"{dataset}-{result.data.sensors}-{model}" + (f"-{preset}" if preset else "") + f"-s{seed}"
    target = save_checkpoint(
        out_dir or Path("runs/train") / name, result.model, checkpoint_info(spec, result)
    )
    _metrics_table(result, target)


def _metrics_table(result, target: Path) -> None:
    table = Table(title=f"{result.data.dataset} / {result.data.sensors} / parameters {result.parameters:,}")
    table.add_column("split")
    for col in ("accuracy", "macro F1", "weighted F1", "loss"):
        table.add_column(col, justify="right")
    for prefix, metrics in (("val/", result.val), ("test/", result.test)):
        if metrics:
            table.add_row(
                prefix.rstrip("/"),
                *(f"{metrics[prefix + k]:.4f}" for k in ("accuracy", "macro_f1", "weighted_f1", "loss")),
            )
    out.print(table)
    fit = result.fit
    out.print(
        f"best epoch {fit.best_epoch} of {len(fit.history)} ({fit.seconds_per_epoch:.1f} s/epoch); "
        f"validation subjects {result.data.val_subjects}; checkpoint {target}"
    )


@app.command("evaluate")
def evaluate_cmd(
    checkpoints: Annotated[
        list[Path],
        typer.Argument(
            metavar="CHECKPOINT",
            help="Checkpoint folder written by 'har train'. Several: evaluate their ensemble (the mean of "
            "their class probabilities; same dataset, channels, classes and window)."
        ),
    ],
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "test",
    repeats: Annotated[
        int, typer.Option("--repeats", help="Retrain with seeds 0..N-1 and report mean +- std on the split.")
    ] = 0,
    adapt: Annotated[
        str,
        typer.Option(
            "--adapt",
            help="none, or subject: predict each subject with BatchNorm statistics re-estimated on that "
            "subject's unlabeled windows of the split (AdaBN; transductive, report it apart).",
        ),
    ] = "none",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Evaluate a checkpoint (or an ensemble of several) on a split of its dataset, or retrain N seeds
    (--repeats) for mean +- std."""
    import numpy as np

    from har.data.settings import data_settings
    from har.metrics import classification_metrics
    from har.train.checkpoint import check_channels
    from har.train.data import load_train_data
    from har.train.ensemble import load_members, mean_probs, normalised
    from har.train.loop import evaluate
    from har.train.run import RunSpec, run

    if split not in ("train", "val", "test"):
        raise BadInput(f"--split {split!r}: choose train, val or test")
    if adapt not in ("none", "subject"):
        raise BadInput(f"--adapt {adapt!r}: choose none or subject")
    if adapt != "none" and repeats:
        raise BadInput("--adapt scores one checkpoint; drop --repeats (har cv --adapt compares both)")
    if len(checkpoints) > 1 and (repeats or adapt != "none"):
        raise BadInput("several checkpoints are scored as one ensemble; drop --repeats and --adapt")
    members = load_members(checkpoints)
    model, info = members[0]
    if adapt != "none":
        from har.train.adapt import check_adaptable

        check_adaptable(model, info["model"])
    settings = data_settings(params)
    data = load_train_data(  # the checkpoint's own validation subjects (older checkpoints: the defaults)
        settings.prepared_dir, info["dataset"], info["sensors"], info.get("val_fraction", 0.2),
        info.get("split_seed", 0),
    )  # fmt: skip
    check_channels(info, data.channels, f"{settings.prepared_dir / info['dataset']}")
    if adapt != "none" and not data.subjects:
        raise BadInput(f"--adapt {adapt}: {info['dataset']} has no subjects to adapt to (an image dataset)")
    splits = {(m.get("val_fraction", 0.2), m.get("split_seed", 0)) for _, m in members}
    if split != "test" and len(splits) > 1:  # one member's validation windows would be another's training
        raise BadInput(
            f"--split {split}: the checkpoints carve different validation subjects (val_fraction or "
            "split_seed); score their ensemble on --split test, or train the members with the same split"
        )
    if data.kind == "images" and len(members) > 1:
        raise BadInput(
            f"{checkpoints[0]}: an image model; ensembles are of sensor models, evaluate one checkpoint"
        )
    if not repeats:
        X, y = data.splits[split]
        if data.kind == "images":  # decoded and normalised per batch by the image set
            metrics = evaluate(model, X, y, info["classes"], f"{split}/")
        else:
            raw = X * data.std + data.mean  # each checkpoint normalises with its own statistics
            if len(members) > 1:
                probs = mean_probs(members, raw)
                metrics = classification_metrics(y, probs.argmax(axis=1), info["classes"], prefix=f"{split}/")
            else:
                groups = data.subjects[split] if adapt == "subject" else None
                metrics = evaluate(model, normalised(info, raw), y, info["classes"], f"{split}/", groups=groups)
        what = f"ensemble of {len(members)} checkpoints" if len(members) > 1 else str(checkpoints[0])
        how = ", BatchNorm adapted per subject" if adapt == "subject" else ""
        unit = "images" if data.kind == "images" else "windows"
        table = Table(title=f"{what} on {info['dataset']}/{info['sensors']} {split} ({len(y)} {unit}{how})")
        for col in ("accuracy", "macro F1", "weighted F1"):
            table.add_column(col, justify="right")
        table.add_row(*(f"{metrics[f'{split}/{k}']:.4f}" for k in ("accuracy", "macro_f1", "weighted_f1")))
        out.print(table)
        return
    scores = []
    for seed in range(repeats):
        spec = RunSpec(
            dataset=info["dataset"], sensors=info["sensors"], model=info["model"], preset=info.get("preset"),
            hparams=info["hparams"], train={**info["train_config"], "seed": seed},
        )  # fmt: skip
        with err.status(f"seed {seed + 1}/{repeats}: training {info['model']} ..."):
            result = run(spec, settings.prepared_dir, data=data, test=split == "test")
        metrics = result.test if split == "test" else result.val
        scores.append((metrics[f"{split}/accuracy"], metrics[f"{split}/macro_f1"]))
        out.print(f"seed {seed}: accuracy {scores[-1][0]:.4f}  macro F1 {scores[-1][1]:.4f}")
    acc, f1 = np.array(scores).T
    out.print(
        f"{info['model']} on {info['dataset']}/{info['sensors']} {split}, {repeats} seeds: accuracy "
        f"{acc.mean():.4f} +- {acc.std():.4f}, macro F1 {f1.mean():.4f} +- {f1.std():.4f}"
    )


TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
    ),
]


@app.command("tune")
def tune_cmd(
    study: Annotated[
        str, typer.Option("--study", "-s", help="Study name (pipelines/<study>.yaml) or a YAML path.")
    ],
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join, e.g. 10.0.0.1:6379 or auto (default: $RAY_ADDRESS, else local Ray)."
        ),
    ] = None,
    storage_path: Annotated[
        str | None,
        typer.Option(
            help="Tune storage for trial checkpoints: a folder (shared on clusters) or a URI like s3://bucket/har "
            "(default: $HAR_STORAGE_PATH, else runs/tune)."
        ),
    ] = None,
    tracking_uri: TrackingOpt = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the newest unfinished run of this study (searcher state included)."
        ),
    ] = False,
    trials: Annotated[int | None, typer.Option(help="Override budget.trials (per permutation).")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Override budget.max_epochs.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Override the number of concurrent trials.")] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs of a local Ray instance (default: all).")] = None,
    num_gpus: Annotated[int | None, typer.Option(help="GPUs of a local Ray instance (default: all).")] = None,
    metrics_out: Annotated[
        Path | None,
        typer.Option(
            help="Write the best metrics per permutation here (default: runs/<study>/metrics.json)."
        ),
    ] = None,
    no_register: Annotated[
        bool, typer.Option("--no-register", help="Test and log winners, skip the registry.")
    ] = False,
    live: Annotated[
        bool | None,
        typer.Option(
            "--live/--plain",
            help="Progress as a live table redrawn in place, or as plain log lines "
            "(default: live on a terminal, plain otherwise, e.g. CI and dvc repro).",
        ),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run a study: for each sensor permutation, an Optuna (TPE) search with ASHA early stopping on Ray Tune;
    the winner is tested once on the test subjects, logged to MLflow and registered as
    har-<dataset>-<permutation> (alias 'champion' moves only when it wins on the same test split)."""
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Tune's own console output off (verbose=0): har's progress callback reports instead
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # trials checkpoint every epoch with num_to_keep=1, which forces frequent experiment snapshots
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # a tracking server that is down must not stall the driver for minutes per call (MLflow's default
    # is 7 retries with exponential backoff): fail fast, the driver queues and retries itself
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    from har.data.settings import data_settings
    from har.tune.study import load_study

    spec = load_study(study, params)
    updates: dict[str, object] = {}
    if trials is not None:
        updates["trials"] = trials
    if max_epochs is not None:
        updates["max_epochs"] = max_epochs
    for key, value in updates.items():
        if int(value) < 1:  # type: ignore[call-overload]
            raise BadInput(f"--{key.replace('_', '-')}: must be at least 1 (got {value})")
    spec.budget = spec.budget.model_copy(update=updates)
    if concurrency is not None:
        if concurrency < 1:
            raise BadInput(f"--concurrency: must be at least 1 (got {concurrency})")
        spec.concurrency = concurrency
    from har.tune.driver import TuneOptions, run_study

    options = TuneOptions(
        address=address, storage_path=storage_path, tracking_uri=tracking_uri, resume=resume,
        prepared_dir=data_settings(params).prepared_dir, params_path=params, num_cpus=num_cpus, num_gpus=num_gpus,
        metrics_out=metrics_out or Path("runs") / spec.name / "metrics.json", register=not no_register, live=live,
    )  # fmt: skip
    outcomes = run_study(spec, options)
    table = Table(title=f"study {spec.name}: winners per sensor permutation")
    for col in (
        "permutation",
        "model",
        "val macro F1",
        "test accuracy",
        "test macro F1",
        "trials",
        "version",
    ):
        table.add_column(col)
    for o in outcomes:
        table.add_row(
            o.permutation, o.model, f"{o.val.get('val/macro_f1', float('nan')):.4f}",
            f"{o.test.get('test/accuracy', float('nan')):.4f}", f"{o.test.get('test/macro_f1', float('nan')):.4f}",
            f"{o.trials} ({o.failed} failed)", f"v{o.version} (champion v{o.champion})" if o.registered else "-",
        )  # fmt: skip
    out.print(table)
    from har.tracking.store import resolve_uri

    uri = resolve_uri(tracking_uri)
    ui = f"mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else f"open {uri}"
    out.print(
        f"metrics: {options.metrics_out}\nnext: 'har report --study {spec.name}', '{ui}', 'har models list'"
    )


@models_app.command("list")
def models_list(tracking_uri: TrackingOpt = None) -> None:
    """Registered models (har-<dataset>-<permutation>): champion version, its model and test metrics.
    Lineage (data version, git commit, params hash) is in each version's tags (MLflow UI, Models tab)."""
    from har.tracking.registry import registered_models
    from har.tracking.store import connect, resolve_uri

    uri = resolve_uri(tracking_uri)
    rows = registered_models(connect(uri, create=False))
    if not rows:
        out.print(f"no registered har-lab models in {uri}; run 'har tune --study quickstart'")
        return
    table = Table(title=f"registered models ({uri})")
    table.add_column("name", no_wrap=True)
    for col in ("champion", "model", "test acc", "test F1", "study"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        champ = row["champion"]
        tags = champ.tags if champ else {}
        table.add_row(
            row["name"], f"v{champ.version} of {row['versions']}" if champ else f"- of {row['versions']}",
            tags.get("model", ""), tags.get("test/accuracy", "")[:6], tags.get("test/macro_f1", "")[:6],
            tags.get("study", ""),
        )  # fmt: skip
    out.print(table)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. har-uci_hapt-all.")],
    version: Annotated[str, typer.Argument(help="Version to make the champion.")],
    tracking_uri: TrackingOpt = None,
) -> None:
    """Move the 'champion' alias to VERSION by hand (the tuner moves it only when a version wins)."""
    from har.tracking.registry import promote
    from har.tracking.store import connect, resolve_uri

    promote(connect(resolve_uri(tracking_uri), create=False), name, version)
    out.print(f"{name}@champion -> v{version}")


@app.command("report")
def report_cmd(
    study: Annotated[str, typer.Option("--study", "-s", help="Study name (its MLflow experiment).")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Reports folder; the report is <out>/<study>/.")
    ] = Path("reports"),
    study_run: Annotated[
        str | None,
        typer.Option(help="Only this study run (tag har.study_run, e.g. 20261122-081500); default: all."),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="The selection metric the leaderboards rank by.")
    ] = "val/macro_f1",
    top: Annotated[int, typer.Option(help="Leaderboard rows per permutation.", min=1)] = 15,
    mlflow_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL of the MLflow UI for links (default: the tracking server, else "
            "http://127.0.0.1:5000 as served by 'mlflow ui')."
        ),
    ] = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Write reports/<study>/index.html and index.md: per sensor permutation a leaderboard (validation and
    test scores, mean +- std over repeated study runs, parameters, latency, training time), the champions,
    a sensor-permutation chart, an accuracy-vs-latency Pareto plot, confusion matrices, learning curves and
    links to the MLflow runs."""
    from har.report.render import write_report
    from har.tracking.store import resolve_uri

    if not metric.startswith("val/"):
        raise BadInput(
            f"--metric {metric}: rank by a validation metric (val/macro_f1, val/accuracy, val/loss)"
        )
    folder = write_report(study, out_dir, resolve_uri(tracking_uri), metric, study_run, mlflow_url, top)
    out.print(f"report: {folder / 'index.html'} (and index.md)")


@app.command("plots-template")
def plots_template_cmd(
    path: Annotated[
        Path, typer.Argument(help="Where to write it (.dvc/config points plots.html_template here).")
    ] = Path(".dvc/plots/offline.html"),
) -> None:
    """Write the offline HTML template for 'dvc plots show' (Vega libraries inlined, no CDN); 'har tune'
    writes it on first use in a DVC project."""
    from har.report.dvc_template import write_offline_template

    out.print(f"wrote {write_offline_template(path, force=True)}; now: dvc plots show")


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2 (bad input) or 1."""
    import os

    # offline, MLflow's telemetry thread races client requests for an environment variable (a lost write)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        app()
    except HarError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
