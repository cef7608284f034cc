"""``har report`` and ``har plots-template``: a study's HTML / Markdown report and the offline
``dvc plots show`` template.

Each command imports the library it calls inside its function body: ``har --help`` loads only typer
and rich (see ``har/cli/__init__.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from har.cli.console import out
from har.cli.options import TrackingOpt
from har.errors import BadInput


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
            "http://127.0.0.1:5000 as served by 'har ui')."
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


def plots_template_cmd(
    path: Annotated[
        Path, typer.Argument(help="Where to write it (.dvc/config points plots.html_template here).")
    ] = Path(".dvc/plots/offline.html"),
) -> None:
    """Write the offline HTML template for 'dvc plots show' (Vega libraries inlined, no CDN); 'har tune'
    writes it on first use in a DVC project."""
    from har.report.dvc_template import write_offline_template

    out.print(f"wrote {write_offline_template(path, force=True)}; now: dvc plots show")
