"""``har train`` and ``har evaluate``: one training run, and scoring checkpoints or repeated runs.

Each command imports the library it calls inside its function body: ``har --help`` loads only typer
and rich (see ``har/cli/__init__.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from har.cli.console import err, out
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
    if warning := result.data.val_warning():
        err.print(f"warning: {warning}", markup=False, highlight=False)


def evaluate_cmd(
    checkpoints: Annotated[
        list[Path],
        typer.Argument(
            metavar="CHECKPOINT",
            help="Checkpoint folder written by 'har train'. Several: evaluate their ensemble (the mean of "
            "their class probabilities; same dataset, channels, classes and window).",
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
    from har.train.scoring import check_request, load_for_scoring, repeat_runs, score

    check_request(checkpoints, split, repeats, adapt)
    prepared_dir = data_settings(params).prepared_dir
    members, data = load_for_scoring(checkpoints, split, adapt, prepared_dir)
    if not repeats:
        s = score(checkpoints, members, data, split, adapt)
        how = ", BatchNorm adapted per subject" if s.adapted else ""
        table = Table(title=f"{s.what} on {s.dataset}/{s.sensors} {split} ({s.windows} {s.unit}{how})")
        for col in ("accuracy", "macro F1", "weighted F1"):
            table.add_column(col, justify="right")
        table.add_row(*(f"{s.metrics[f'{split}/{k}']:.4f}" for k in ("accuracy", "macro_f1", "weighted_f1")))
        out.print(table)
        return
    info = members[0][1]
    scores = []
    for seed, metrics in repeat_runs(info, data, prepared_dir, split, repeats, busy=err.status):
        scores.append((metrics[f"{split}/accuracy"], metrics[f"{split}/macro_f1"]))
        out.print(f"seed {seed}: accuracy {scores[-1][0]:.4f}  macro F1 {scores[-1][1]:.4f}")
    acc, f1 = np.array(scores).T
    out.print(
        f"{info['model']} on {info['dataset']}/{info['sensors']} {split}, {repeats} seeds: accuracy "
        f"{acc.mean():.4f} +- {acc.std():.4f}, macro F1 {f1.mean():.4f} +- {f1.std():.4f}"
    )
