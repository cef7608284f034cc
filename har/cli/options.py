"""Command-line options shared by the commands that train (``har train``, ``har cv``), and the parser of
their ``key=value`` overrides. Only typer is imported here, so ``har --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from har.errors import BadInput

if TYPE_CHECKING:
    from har.train.run import RunSpec

ParamsOpt = Annotated[
    Path, typer.Option("--params", help="params.yaml with data settings and per-dataset overrides.")
]
DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="Prepared dataset (har data prepare NAME).")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Architecture (har models zoo).")]
SensorsOpt = Annotated[str, typer.Option("--sensors", "-s", help="Sensor permutation: 'acc+gyro', 'all'.")]
PresetOpt = Annotated[
    str | None, typer.Option("--preset", "-p", help="Published configuration, e.g. 3x3 for res_bilstm.")
]
EpochsOpt = Annotated[
    int | None, typer.Option("--epochs", help="Maximum epochs (early stopping may end sooner).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Training seed (same seed, same metrics on CPU).")]
HparamOpt = Annotated[
    list[str], typer.Option("--hparam", "-H", help="Architecture override key=value (repeatable).")
]
SettingOpt = Annotated[
    list[str], typer.Option("--set", help="Training override key=value, e.g. patience=5 (repeatable).")
]
ValFractionOpt = Annotated[float, typer.Option(help="Share of training subjects held out for validation.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")]


def parse_overrides(pairs: list[str], what: str) -> dict[str, object]:
    """``key=value`` pairs; values are parsed as YAML scalars / lists (``hidden=64``, ``betas=[0.9,0.99]``)."""
    import yaml

    parsed: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"{what} {pair!r}: expected key=value")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def run_spec(
    dataset: str, model: str, sensors: str, preset: str | None, hparam: list[str], setting: list[str],
    val_fraction: float, **train: object,
) -> RunSpec:  # fmt: skip
    """The ``RunSpec`` of a training command: ``--set`` overrides, then the explicit flags (None: unset)."""
    from har.train.run import RunSpec

    overrides = parse_overrides(setting, "--set")
    overrides.update({key: value for key, value in train.items() if value is not None})
    return RunSpec(
        dataset=dataset, sensors=sensors, model=model, preset=preset, hparams=parse_overrides(hparam, "--hparam"),
        train=overrides, val_fraction=val_fraction,
    )  # fmt: skip


TrackingOpt = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
    ),
]
