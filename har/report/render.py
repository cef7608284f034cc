"""`har report`: a study's leaderboards, champions and figures as reports/<study>/index.{html,md}.

The report is built in a temporary folder next to the target and swapped in at the end, so a failed
run leaves the previous report as it was."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from har.atomic import _umask
from har.data.registry import resolve
from har.errors import BadInput
from har.plots import pareto_png, permutation_bars_png
from har.report.data import Entry, PermutationReport, Stat, StudyReport, Trial, collect
from har.tracking.store import connect

DEFAULT_UI = "http://127.0.0.1:5000"
TOP = 15  # leaderboard rows per permutation


def ui_base(tracking_uri: str, flag: str | None = None) -> str:
    """Where the MLflow UI of these runs is: --mlflow-url, the tracking server itself, else `har ui`."""
    if flag:
        return flag.rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return DEFAULT_UI


# Deep links into the MLflow 3 UI (`har report` and `har ui` print the same ones). Its hash routes open an
# experiment on the GenAI overview (traces, token usage) unless the query asks for the model-training
# view, which this parameter does; the registered-models list rewrites its own query (it would drop the
# parameter) and shows the same table in either view.
TRAINING_VIEW = "workflowType=machine_learning"


def experiment_url(base: str, experiment_id: str) -> str:
    """An experiment's (a study's) runs table, in the model-training view."""
    return f"{base}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW}"


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    """One run's page (metrics, parameters, artifacts), in the model-training view."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"


def models_url(base: str) -> str:
    """The registered models (champion aliases, latest versions)."""
    return f"{base}/#/models"


def model_url(base: str, name: str) -> str:
    """One registered model's versions, in the model-training view."""
    return f"{base}/#/models/{quote(name, safe='')}?{TRAINING_VIEW}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _leaderboard(perm: PermutationReport, base: str, experiment_id: str, top: int) -> list[dict[str, Any]]:
    champion_run = perm.champion.run_id if perm.champion else ""
    rows = []
    for rank, entry in enumerate(perm.entries[:top], start=1):
        best = entry.best
        rows.append(
            {
                "rank": rank,
                "name": _label(best),
                "runs": len(entry.trials),
                "outcome": best.outcome,
                "val_accuracy": entry.stat("best/val/accuracy").text(),
                "val_macro_f1": entry.stat("best/val/macro_f1").text(),
                "test_accuracy": entry.stat("test/accuracy").text(),
                "test_macro_f1": entry.stat("test/macro_f1").text(),
                "parameters": _int(best.value("parameters")),
                "latency_ms": _num(best.value("latency_ms"), 2),
                "train_seconds": _seconds(entry),
                "champion": any(t.run_id == champion_run for t in entry.trials),
                "winner": any(t.winner for t in entry.trials),
                "link": _run_link(base, experiment_id, best),
            }
        )
    return rows


def _label(trial: Trial) -> str:
    """The run name without the trial id suffix that keeps MLflow names unique."""
    return re.sub(r"\s*\[[^\]]+\]$", "", trial.name) or trial.model


def _int(value: float | None) -> str:
    return "-" if value is None else f"{int(value):,}"


def _seconds(entry: Entry) -> str:
    stat = entry.stat("time_total_s")
    return "-" if not stat.values else f"{stat.mean:.0f}"


def _run_link(base: str, experiment_id: str, trial: Trial) -> str:
    return run_url(base, experiment_id, trial.run_id)


def _winner_scores(perm: PermutationReport) -> dict[str, tuple[float, float]]:
    scores = {}
    for key, label in (("test/accuracy", "test accuracy"), ("test/macro_f1", "test macro F1")):
        stat = Stat([v for t in perm.winners if (v := t.value(key)) is not None])
        if stat.values:
            scores[label] = (stat.mean, stat.std)
    return scores


def build_context(report: StudyReport, base: str, top: int = TOP) -> dict[str, Any]:
    perms = []
    for perm in report.permutations:
        winner = perm.winners[0] if perm.winners else None
        champ = perm.champion
        perms.append(
            {
                "name": perm.permutation,
                "slug": _slug(perm.permutation),
                "counts": perm.counts(),
                "warnings": perm.warnings,
                "rows": _leaderboard(perm, base, report.experiment_id, top),
                "shown": min(top, len(perm.entries)),
                "configs": len(perm.entries),
                "fastest_close": _fastest_close(perm, report.metric),
                "winner": None
                if winner is None
                else {
                    "name": _label(winner),
                    "study_run": winner.study_run,
                    "test_accuracy": _num(winner.value("test/accuracy")),
                    "test_macro_f1": _num(winner.value("test/macro_f1")),
                    "link": _run_link(base, report.experiment_id, winner),
                    "repeats": len(perm.winners),
                    "scores": {k: f"{m:.4f} ± {s:.4f}" for k, (m, s) in _winner_scores(perm).items()},
                },
                "champion": None
                if champ is None
                else {
                    "name": champ.name,
                    "version": champ.version,
                    "model": champ.tags.get("model", ""),
                    "study": champ.tags.get("study", ""),
                    "test_accuracy": _num(_float(champ.tags.get("test/accuracy"))),
                    "test_macro_f1": _num(_float(champ.tags.get("test/macro_f1"))),
                    "link": model_url(base, champ.name),
                },
            }
        )
    return {
        "study": report.study,
        "dataset": report.dataset,
        "held_out": held_out_words(report.dataset),
        "metric": report.metric,
        "tracking_uri": report.tracking_uri,
        "experiment_link": experiment_url(base, report.experiment_id),
        "study_runs": report.study_runs,
        "generated": time.strftime("%Y-%m-%d %H:%M %Z"),
        "permutations": perms,
        "figures": {},
    }


CLOSE = 0.005  # "within half a point" of the best validation score


def _fastest_close(perm: PermutationReport, metric: str) -> dict[str, Any] | None:
    """The finished trial with the lowest batch-1 latency whose validation score is within half a point of
    the best one (loss: within 0.005 of the lowest): the model to deploy when speed matters."""
    key, sign = f"best/{metric}", (-1 if metric.endswith("loss") else 1)
    trials = [t for e in perm.entries for t in e.trials if t.value(key) is not None and t.value("latency_ms")]
    if not trials:
        return None
    best = max(sign * (t.value(key) or 0.0) for t in trials)
    close = [t for t in trials if sign * (t.value(key) or 0.0) >= best - CLOSE]
    fastest = min(close, key=lambda t: t.value("latency_ms") or float("inf"))
    return {"name": _label(fastest), "score": _num(fastest.value(key)), "best": _num(sign * best),
            "latency_ms": f"{fastest.value('latency_ms'):.3f}", "run_id": fastest.run_id}  # fmt: skip


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def held_out_words(dataset: str) -> dict[str, str]:
    """How the report names the validation and test data: subjects (sensor data) or images."""

    try:
        kind = resolve(dataset).kind
    except BadInput:  # a dataset this checkout does not declare: say subjects, the common case
        kind = "windows"
    if kind == "images":
        return {"val": "the validation images (a stratified split stored by prepare)",
                "test": "the held-out test images", "short": "test images"}  # fmt: skip
    return {"val": "the validation subjects (carved from the training subjects)",
            "test": "the held-out test subjects", "short": "test subjects"}  # fmt: skip


def draw_figures(report: StudyReport, client, folder: Path, ctx: dict[str, Any]) -> None:
    """Sensor comparison, accuracy vs latency, and each permutation's winner's evaluation figures."""

    img = folder / "img"
    img.mkdir(parents=True, exist_ok=True)
    scores = {p.permutation: s for p in report.permutations if (s := _winner_scores(p))}
    if scores:
        repeats = max(len(p.winners) for p in report.permutations)
        note = f", mean ± std over {repeats} study runs" if repeats > 1 else ""
        permutation_bars_png(scores, img / "permutations.png",
                             f"{report.study}: each permutation's winner on the {ctx['held_out']['short']}{note}")  # fmt: skip
        ctx["figures"]["permutations"] = "img/permutations.png"
    points = {
        p.permutation: [
            (lat, val)
            for e in p.entries
            for t in e.trials
            if (lat := t.value("latency_ms")) is not None
            and (val := t.value(f"best/{report.metric}")) is not None
        ]
        for p in report.permutations
    }
    if any(points.values()):
        pareto_png(points, img / "pareto.png", f"best {report.metric} (validation)",
                   f"{report.study}: validation score vs inference latency, every finished trial")  # fmt: skip
        ctx["figures"]["pareto"] = "img/pareto.png"
    for perm, view in zip(report.permutations, ctx["permutations"], strict=True):
        view["figures"] = {}
        if not perm.winners:
            continue
        with tempfile.TemporaryDirectory(prefix="har-report-") as tmp:
            try:
                got = Path(client.download_artifacts(perm.winners[0].run_id, "evaluation", tmp))
            except Exception as exc:  # artifacts of a run on another machine's disk: say so, go on
                view["figures_error"] = f"evaluation figures not readable: {str(exc).splitlines()[0][:160]}"
                continue
            for name in ("confusion_matrix", "learning_curves"):
                source = got / f"{name}.png"
                if source.is_file():
                    target = f"img/{view['slug']}-{name}.png"
                    shutil.copyfile(source, folder / target)
                    view["figures"][name] = target


def render(ctx: dict[str, Any], folder: Path) -> None:

    env = Environment(
        loader=PackageLoader("har.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    (folder / "index.html").write_text(env.get_template("report.html.j2").render(**ctx))
    (folder / "index.md").write_text(env.get_template("report.md.j2").render(**ctx))


def write_report(
    study: str,
    out_dir: Path,
    tracking_uri: str,
    metric: str = "val/macro_f1",
    study_run: str | None = None,
    mlflow_url: str | None = None,
    top: int = TOP,
) -> Path:
    """Collect, draw and render into ``out_dir/<study>``; returns that folder."""

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = connect(tracking_uri, create=False)
    report = collect(client, study, tracking_uri, metric, study_run)
    ctx = build_context(report, ui_base(tracking_uri, mlflow_url), top)
    target = out_dir / study
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{study}-", dir=out_dir))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a report is an ordinary folder
    try:
        draw_figures(report, client, staging, ctx)
        render(ctx, staging)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{study}-old-", dir=out_dir))
            target.rename(old / "report")
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
