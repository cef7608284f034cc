"""``har data``: the dataset registry, fetching, preparing and inspecting datasets.

Each command imports the library it calls inside its function body: ``har --help`` loads only typer
and rich (see ``har/cli/__init__.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from har.cli.console import err, out
from har.cli.options import (
    ParamsOpt,
)

app = typer.Typer(
    help="Datasets: list the registry, fetch archives, prepare windows, inspect prepared data.",
    no_args_is_help=True,
)


NameArg = Annotated[str, typer.Argument(help="Dataset name (see 'har data list').")]


@app.command("list")
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


@app.command("info")
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
    facts.add_row("pins", _pins_line(spec, settings.pins_dir))
    if spec.unpinned:
        facts.add_row(
            "unpinned", "files the reader reads that no shipped pin covers: " + ", ".join(spec.unpinned)
        )
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


def _pins_line(spec, pins_dir: Path) -> str:
    """Which pins check the files the reader reads."""
    from har.data.pins import UNPINNED_FORMATS, pin_set

    if spec.format in UNPINNED_FORMATS:
        return f"none: {UNPINNED_FORMATS[spec.format]} (unpinned)"
    pinned = pin_set(spec, pins_dir)
    if pinned is None:
        return "none"
    line = f"{len(pinned.pins)} files, {pinned.label}"
    if pinned.user:
        line += f" (replacing har/data/checksums/{spec.checksums}; delete it to go back)"
    return line


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


@app.command("fetch")
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
    dest = fetch(
        spec,
        settings.raw_dir,
        resolve_mirror(mirror, settings),
        repo_root=Path("."),
        pins_dir=settings.pins_dir,
    )
    out.print(f"fetched {name} -> {dest}")


@app.command("pin")
def data_pin(
    name: NameArg,
    source: Annotated[
        Path,
        typer.Option(
            "--source",
            help="Your copy: its extracted folder, or a folder holding the official archive.",
            exists=True,
            file_okay=False,
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Pin without asking when files differ.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Check your own copy of a dataset against the shipped pins, print every differing digest, and pin
    your copy for this project (params.yaml data.pins_dir, default pins/NAME.sha256; commit it so that
    collaborators check the same bytes). The shipped pins are never changed; delete the file to go back."""
    import datetime
    import tempfile

    from har.atomic import atomic_file
    from har.data.fetch import unpack_copy
    from har.data.pins import compare_copy, pin_text, user_pin_file
    from har.data.registry import resolve
    from har.data.settings import data_settings

    spec = resolve(name, params)
    settings = data_settings(params)
    with tempfile.TemporaryDirectory(prefix=f"har-pin-{name}-") as tmp:
        unpack_copy(spec, source, Path(tmp))
        rows = compare_copy(spec, Path(tmp))
    table = Table(title=f"{name}: your copy ({source}) against har/data/checksums/{spec.checksums}")
    for column in ("file", "pinned", "your copy (sha256)", ""):
        table.add_column(column, overflow="fold")
    for row in rows:
        pinned = f"{row.shipped.kind} {row.shipped.digest}" if row.shipped else "unpinned"
        verdict = "new pin" if row.same is None else ("same" if row.same else "[bold red]DIFFERS[/bold red]")
        if row.same is not True:
            table.add_row(row.path, pinned, row.sha256, verdict)
    differ = sum(row.same is False for row in rows)
    same = sum(row.same is True for row in rows)
    if differ or len(rows) > same:
        out.print(table)
    out.print(f"{same} file(s) as pinned, {differ} differ, {len(rows) - same - differ} not pinned before")
    if differ and not yes and not typer.confirm(f"pin your copy of {name} for this project?", default=False):
        raise typer.Exit(1)
    target = user_pin_file(name, settings.pins_dir)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with atomic_file(target, "w") as handle:
        handle.write(pin_text(spec, rows, str(source), when))
    out.print(f"pinned {len(rows)} files of {name} -> {target}; next: 'har data fetch {name} --mirror ...'")


@app.command("prepare")
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
            target = prepare(spec, settings.raw_dir / name, settings.prepared_dir, params, pins_dir=settings.pins_dir,
                             progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
        meta = json.loads((target / "meta.json").read_text())
        images = meta["split"]["images"]
        out.print(f"prepared {name} -> {target}: {meta['shape'][0]} images of {len(meta['classes'])} classes, "
                  f"{images['train']} train / {images['val']} val / {images['test']} test "
                  f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
        return
    with err.status(f"preparing {name} from {settings.raw_dir / name} ..."):
        target = prepare(
            spec, settings.raw_dir / name, settings.prepared_dir, params, pins_dir=settings.pins_dir
        )
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


@app.command("permutations")
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
