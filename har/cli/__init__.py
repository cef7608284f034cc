"""The ``har`` command line: one small module per command group (parse, call the library, print).

Every command imports the library it calls inside its own function, so ``har --help`` loads only typer
and rich; ``main`` maps ``HarError`` to a one-line message and its exit code.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from har import __version__
from har.cli import cv, data, jobs, models, predict, report, train, tune, ui
from har.cli.console import err, out
from har.cli.helptext import reflow_app
from har.errors import HarError

app = typer.Typer(
    help="har-lab: human-activity-recognition experiments, from raw sensor data to registered models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.command("train")(train.train_cmd)
app.command("evaluate")(train.evaluate_cmd)
app.command("cv")(cv.cv_cmd)
app.command("tune")(tune.tune_cmd)
app.command("predict")(predict.predict_cmd)
app.command("report")(report.report_cmd)
app.command("plots-template")(report.plots_template_cmd)
app.command("ui")(ui.ui_cmd)
app.add_typer(jobs.app, name="jobs")
reflow_app(app)


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


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2 (bad input) or 1."""
    # offline, MLflow's telemetry thread races client requests for an environment variable (a lost write)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow's "View run ... at: URL" after every run ended on a tracking server: the commands print their
    # own links where they help (har ui, har report)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        app()
    except HarError as exc:
        # escaped: a message naming "[acc]" (a permutation) or "[train]" (a key) is text, not rich markup
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
