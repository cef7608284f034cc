"""``har cv``: leave-subjects-out cross-validation of one configuration (``har.train.crossval``).

Registered in ``har/cli/__init__.py``; the library (and torch) load only when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
from har.errors import BadInput

out = Console()
err = Console(stderr=True)


def cv_cmd(
    dataset: DatasetOpt,
    model: ModelOpt,
    folds: Annotated[
        int | None,
        typer.Option(
            "--folds",
            "-k",
            help="Split the TRAINING subjects into K seeded folds; the test subjects are never used "
            "(compare configurations without spending the test split).",
        ),
    ] = None,
    declared_folds: Annotated[
        bool,
        typer.Option(
            "--declared-folds",
            help="Use the dataset's declared leave-subjects-out folds over EVERY subject (the published "
            "protocol of datasets that declare folds, e.g. watch, myogym).",
        ),
    ] = False,
    sensors: SensorsOpt = "all",
    preset: PresetOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = 0,
    fold_seed: Annotated[int, typer.Option("--fold-seed", help="Seed of the --folds grouping.")] = 0,
    hparam: HparamOpt = [],  # noqa: B006
    setting: SettingOpt = [],  # noqa: B006
    val_fraction: ValFractionOpt = 0.2,
    adapt: Annotated[
        bool,
        typer.Option(
            "--adapt",
            help="Also score each fold's model with its BatchNorm statistics re-estimated on each held-out "
            "subject's unlabeled windows (AdaBN; transductive: reported beside the plain figure).",
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the folds and their summary as JSON.")
    ] = None,
    probs_out: Annotated[
        Path | None,
        typer.Option(
            "--probs-out",
            help="Also write every held-out window's class probabilities, label, subject and fold as a .npz "
            "(to score an ensemble of configurations on exactly the same windows).",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Cross-validate one configuration by subject: a model per fold, each scored once on its held-out
    subjects (epoch chosen on validation subjects carved from the fold's training subjects)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from har.atomic import atomic_file
    from har.data.settings import data_settings
    from har.models import build
    from har.train.crossval import HeldOutProbs, cross_validate, plan_folds, summary
    from har.train.data import load_train_data
    from har.train.run import resolve

    spec = run_spec(dataset, model, sensors, preset, hparam, setting, val_fraction,
                    max_epochs=epochs, seed=seed, device=device)  # fmt: skip
    settings = data_settings(params)
    if probs_out is not None and probs_out.suffix != ".npz":
        raise BadInput(f"--probs-out {probs_out}: give a file name ending in .npz")
    # everything the user typed is checked before training starts: bad input stays one line
    plan, pool = plan_folds(settings.prepared_dir, dataset, folds, declared_folds, fold_seed)
    hparams, cfg = resolve(spec)
    first = load_train_data(
        settings.prepared_dir, dataset, sensors, val_fraction, spec.split_seed, held_out=plan[0], pool=pool
    )
    built = build(model, len(first.channels), len(first.classes), first.window, **hparams)
    if adapt:
        from har.train.adapt import check_adaptable

        check_adaptable(built, model)
    where = "training subjects only" if pool == "train" else "every subject (declared folds)"
    err.print(f"{dataset}/{first.sensors}: {len(plan)} folds over {where}: {plan}")

    table = Table(
        title=f"{model}{':' + preset if preset else ''} on {dataset}/{first.sensors}, {len(plan)} folds"
    )
    numbers = ("windows", "accuracy", "macro F1", "adapted acc")
    for col in ("fold", "held-out subjects", "val subjects", "epoch (of)", *numbers[: 4 if adapt else 3]):
        table.add_column(col, justify="right" if col in numbers else "left")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))  # fmt: skip
    with Progress(*columns, console=err) as progress:
        fold_task = progress.add_task("folds", total=len(plan), status="")
        epoch_task = progress.add_task("epochs", total=cfg.max_epochs, status="")

        def report(epoch: int, row: dict[str, float]) -> None:
            progress.update(epoch_task, completed=epoch, status=f"val acc {row['val/accuracy']:.3f}")

        def on_fold(i: int, fold) -> None:
            progress.update(fold_task, completed=i + 1, status=f"fold {i + 1}: {fold.accuracy:.3f}")
            progress.update(epoch_task, completed=0)
            table.add_row(
                str(i + 1), ",".join(map(str, fold.held_out)), ",".join(map(str, fold.val_subjects)),
                f"{fold.best_epoch} ({fold.epochs})", str(fold.windows), f"{fold.accuracy:.4f}", f"{fold.macro_f1:.4f}",
                *([f"{fold.adapted_accuracy:.4f}"] if adapt else []),
            )  # fmt: skip

        probs = HeldOutProbs() if probs_out else None
        results = cross_validate(
            spec, plan, pool, settings.prepared_dir, on_fold=on_fold, report=report, first=first, adapt=adapt,
            on_model=probs,
        )  # fmt: skip
    stats = summary(results)
    out.print(table)
    out.print(
        f"accuracy {stats['accuracy_mean']:.4f} +- {stats['accuracy_std']:.4f}, macro F1 "
        f"{stats['macro_f1_mean']:.4f} +- {stats['macro_f1_std']:.4f} over {stats['folds']} folds; "
        f"pooled over every held-out window: {stats['pooled_accuracy']:.4f}"
    )
    if adapt:
        out.print(
            f"adapted per held-out subject (AdaBN): accuracy {stats['adapted_accuracy_mean']:.4f} +- "
            f"{stats['adapted_accuracy_std']:.4f}, macro F1 {stats['adapted_macro_f1_mean']:.4f}; pooled "
            f"{stats['adapted_pooled_accuracy']:.4f}"
        )
    if output:
        record = {
            "dataset": dataset, "sensors": first.sensors, "model": model, "preset": preset, "pool": pool,
            "hparams": hparams, "train": cfg.model_dump(mode="json"), "fold_seed": fold_seed,
            "summary": stats, "folds": [fold.__dict__ for fold in results],
        }  # fmt: skip
        with atomic_file(output, "w") as handle:
            json.dump(record, handle, indent=2)
        err.print(f"wrote {output}")
    if probs_out and probs:
        import numpy as np

        with atomic_file(probs_out, "wb") as handle:
            np.savez_compressed(handle, **probs.arrays())
        err.print(f"wrote {probs_out}")
