"""``har models``: the model zoo (architectures, presets) and the registry of champions.

Each command imports the library it calls inside its function body: ``har --help`` loads only typer
and rich (see ``har/cli/__init__.py``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from har.cli.console import out
from har.cli.options import TrackingOpt

app = typer.Typer(
    help="The model zoo (architectures, presets) and the registry (champions per dataset x sensors).",
    no_args_is_help=True,
)


@app.command("zoo")
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


@app.command("list")
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
    # fits 80 columns: short headers, names never cut
    table = Table(
        title=f"registered models ({uri}): the champion's test scores",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in ("name", "champion", "model", "acc", "F1", "study"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("acc", "F1") else "left")
    for row in rows:
        champ = row["champion"]
        tags = champ.tags if champ else {}
        table.add_row(
            row["name"], f"v{champ.version} of {row['versions']}" if champ else f"- of {row['versions']}",
            tags.get("model", ""), _score(tags.get("test/accuracy")), _score(tags.get("test/macro_f1")),
            tags.get("study", ""),
        )  # fmt: skip
    out.print(table)


@app.command("promote")
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


def _score(tag: str | None) -> str:
    """A registered test score, rounded as every other table rounds it (tags hold 6 decimals)."""
    return f"{float(tag):.4f}" if tag else ""
