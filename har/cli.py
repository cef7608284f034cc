"""The ``har`` command line: thin wiring of har.data (later: train, tune, models, predict, report)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from har import __version__
from har.errors import HarError

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

out = Console()
err = Console(stderr=True)

ParamsOpt = Annotated[
    Path, typer.Option("--params", help="params.yaml with data settings and per-dataset overrides.")
]
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
    from har.config import data_settings
    from har.data.prepare import expected_classes
    from har.data.registry import dataset_names, load_params, resolve

    settings = data_settings(params)
    table = Table(title="datasets (details: har data info NAME)")
    for col in ("name", "Hz", "ch", "classes", "window", "groups", "status"):
        table.add_column(col, no_wrap=col in ("name", "window", "status"))
    for name in dataset_names(load_params(params)):
        spec = resolve(name, params)
        w = spec.window
        if (settings.prepared_dir / name / "meta.json").is_file():
            status = "prepared"
        elif (settings.raw_dir / name).is_dir():
            status = "fetched"
        else:
            status = "-"
        table.add_row(
            name,
            f"{spec.rate_hz:g}",
            str(len(spec.channels)),
            str(len(expected_classes(spec, params))),
            f"{w.size}/{w.step} {w.label}",
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
    from har.config import data_settings
    from har.data.prepare import expected_classes, reader_options
    from har.data.registry import resolve
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
    facts.add_row("rate", f"{spec.rate_hz:g} Hz")
    facts.add_row("groups", "\n".join(f"{g} ({len(c)}): {', '.join(c)}" for g, c in spec.groups.items()))
    classes = expected_classes(spec, params)
    facts.add_row("classes", f"{len(classes)}: {', '.join(classes)}")
    w = spec.window
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
    from har.config import data_settings, resolve_mirror
    from har.data.fetch import fetch
    from har.data.registry import resolve

    spec = resolve(name, params)
    settings = data_settings(params)
    dest = fetch(spec, settings.raw_dir, resolve_mirror(mirror, settings), repo_root=Path("."))
    out.print(f"fetched {name} -> {dest}")


@data_app.command("prepare")
def data_prepare(name: NameArg, params: ParamsOpt = Path("params.yaml")) -> None:
    """Cut a fetched dataset into windows: writes X.npy, y.npy, subject.npy, split.npy and meta.json
    to data/prepared/<name>/ (normalisation statistics fitted on training subjects only)."""
    from har.config import data_settings
    from har.data.prepare import prepare
    from har.data.registry import resolve

    spec = resolve(name, params)
    settings = data_settings(params)
    start = time.perf_counter()
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


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2 (bad input) or 1."""
    try:
        app()
    except HarError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
