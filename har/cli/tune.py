"""``har tune``: run a study (a Ray Tune + Optuna search per sensor permutation).

Each command imports the library it calls inside its function body: ``har --help`` loads only typer
and rich (see ``har/cli/__init__.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from har.cli.console import out
from har.cli.options import (
    ParamsOpt,
    TrackingOpt,
)


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
    optuna_storage: Annotated[
        str | None,
        typer.Option(
            help="Database of the Optuna studies, one per permutation (<study>/<run>/<permutation>), e.g. "
            "postgresql://user@host/har (default: $HAR_OPTUNA_STORAGE, else optuna.db beside mlflow.db). "
            "Browse it with: optuna-dashboard URL."
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the newest unfinished run of this study (searcher state included)."
        ),
    ] = False,
    trials: Annotated[int | None, typer.Option(help="Override budget.trials (per permutation).")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Override budget.max_epochs.")] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Override the study's concurrency: trials running at once over all permutations."),
    ] = None,
    permutations: Annotated[
        str | None,
        typer.Option(
            help="Search only these of the study's sensor permutations, comma-separated, e.g. 'all' or "
            "'acc,gyro' (default: every permutation the study lists)."
        ),
    ] = None,
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential",
            help="Search the permutations one after another, each with the whole concurrency "
            "(default: all at once, their trials sharing the cluster's slots).",
        ),
    ] = False,
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
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only check the study file, its prepared data and the Optuna storage, print what would run "
            "and exit (0: ready, 2: bad input) without starting Ray; batch jobs run this first.",
        ),
    ] = False,
    simulate: Annotated[
        Path | None,
        typer.Option(
            help="For benchmarks and tests of the tuning machinery only: trials sleep each epoch for a duration "
            'drawn from this JSON file ({"epoch_seconds": [...]}) and report made-up learning curves; '
            "nothing is trained, tested or registered, no metrics file is written.",
            rich_help_panel="Benchmarking",
        ),
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run a study: for each sensor permutation, an Optuna (TPE) search with ASHA early stopping on Ray Tune,
    all permutations at once in one Tune run (their trials share the cluster); each permutation's winner is
    tested once on the test subjects, logged to MLflow and registered as
    har-<dataset>-<permutation> (alias 'champion' moves only when it wins on the same test split)."""
    from har.data.settings import data_settings
    from har.tune.simulate import load_epoch_seconds
    from har.tune.study import load_study

    epoch_seconds = load_epoch_seconds(simulate) if simulate else None
    spec = load_study(study, params).overridden(
        trials,
        max_epochs,
        concurrency,
        [p.strip() for p in permutations.split(",") if p.strip()] if permutations else None,
    )
    from har.tune.driver import TuneOptions, check_study, run_study

    options = TuneOptions(
        address=address, storage_path=storage_path, tracking_uri=tracking_uri, optuna_storage=optuna_storage,
        resume=resume, sequential=sequential,
        prepared_dir=data_settings(params).prepared_dir, params_path=params, num_cpus=num_cpus, num_gpus=num_gpus,
        metrics_out=None if simulate else metrics_out or Path("runs") / spec.name / "metrics.json",
        register=not (no_register or simulate), live=live, simulate=epoch_seconds,
    )  # fmt: skip
    if check:
        out.print(f"ready: {check_study(spec, options)}", markup=False, highlight=False, soft_wrap=True)
        return
    outcomes = run_study(spec, options)
    # fits 80 columns: short headers, names never cut (failures and champions said below the table)
    table = Table(
        title=f"study {spec.name}: the winner of each sensor permutation",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in ("sensors", "model", "val F1", "test acc", "test F1", "trials", "registered"):
        table.add_column(
            col, no_wrap=True, justify="left" if col in ("sensors", "model", "registered") else "right"
        )
    notes = []
    for o in outcomes:
        registered = f"v{o.version}" if o.registered else "-"
        if o.registered and o.champion == o.version:
            registered += " champion"
        elif o.registered and o.champion:
            how = "tied it: a tie keeps the champion" if o.tied else "did not beat it"
            notes.append(f"{o.registered}: champion stays v{o.champion} (v{o.version} {how})")
        if o.failed:
            notes.append(f"{o.permutation}: {o.failed} of {o.trials} trials failed (MLflow tag har.error)")
        table.add_row(
            o.permutation, o.model, f"{o.val.get('val/macro_f1', float('nan')):.4f}",
            f"{o.test.get('test/accuracy', float('nan')):.4f}", f"{o.test.get('test/macro_f1', float('nan')):.4f}",
            str(o.trials), registered,
        )  # fmt: skip
    out.print(table)
    for note in notes:
        out.print(note)
    from har.tracking.store import resolve_uri

    uri = resolve_uri(tracking_uri)
    ui = f"har ui --study {spec.name}" + (f" --tracking-uri {uri}" if tracking_uri else "")
    if simulate:
        return
    out.print(
        f"metrics: {options.metrics_out}\nnext: 'har report --study {spec.name}', '{ui}', 'har models list'"
    )
