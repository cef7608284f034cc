"""The MLflow tracking store: connection (a SQLite database is created once, here), the study's
experiment, parent and child runs, batched metric and parameter writes.

Only the tuner's driver writes here (trials report to Ray), so SQLite is safe and workers need no
access to the tracking server.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from har.errors import BadInput, HarError

CHECKPOINT_DIR = "checkpoint"  # artifact folder holding the har-lab checkpoint of a winner

TRACKING_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_URI = "sqlite:///mlflow.db"


def resolve_uri(flag: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the project's embedded SQLite database."""
    return flag or os.environ.get(TRACKING_ENV) or default_uri()


def default_uri(cwd: Path | None = None) -> str:
    """``sqlite:///mlflow.db``; inside a queued or ``--temp`` DVC experiment, which runs in a copy of the
    project under ``<project>/.dvc/tmp/exps/``, the project's own database (absolute), so that the runs
    and registered models outlive the copy."""
    origin = dvc_experiment_origin(cwd or Path.cwd())
    return f"sqlite:///{origin / 'mlflow.db'}" if origin else DEFAULT_URI


def dvc_experiment_origin(cwd: Path) -> Path | None:
    """The project whose ``.dvc/tmp/exps/`` holds ``cwd`` (a DVC experiment's copy), else None."""
    parts = cwd.resolve().parts
    for i in range(len(parts) - 3, 0, -1):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return None


# MLflow narrates creating and migrating a SQLite database at INFO; a study's output is not the place
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


def connect(uri: str, create: bool = True):
    """A client for ``uri``; creates (and migrates) a SQLite database once, here in the driver.
    Readers (``har models``, ``har predict``) pass ``create=False``: a missing database is bad input."""

    if uri.startswith("file:") or (uri and "://" not in uri):
        raise BadInput(
            f"tracking URI {uri!r}: MLflow's file store is not supported; use sqlite:///mlflow.db or a server URL"
        )
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).expanduser()
        if not create and not db.is_file():
            raise BadInput(
                f"no MLflow database at {db} (tracking URI {uri}); run 'har tune' first, or pass --tracking-uri "
                "/ set MLFLOW_TRACKING_URI"
            )
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:
        raise HarError(
            f"MLflow tracking at {uri} is not reachable: {str(exc).splitlines()[0][:200]}"
        ) from exc
    return client


def wait_for_tracking(client, uri: str, seconds: float | None = None) -> None:
    """Block until the tracking server answers (it may be restarting); HarError after ``seconds``
    (default $HAR_TRACKING_WAIT or 120): the study's trials and checkpoints stay in the Tune storage and
    ``har tune --resume`` logs the rest."""

    seconds = float(os.environ.get("HAR_TRACKING_WAIT", "120")) if seconds is None else seconds
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.search_experiments(max_results=1)
            return
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise HarError(
                    f"MLflow at {uri} unreachable for {seconds:.0f} s ({str(exc).splitlines()[0][:120]}); "
                    "the trials are kept in the Tune storage: run 'har tune --resume' when it is back"
                ) from exc
            time.sleep(2)


# the MLflow 3 UI opens an experiment of this kind on its training runs (not the GenAI overview)
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def ensure_experiment(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        if found.tags.get("mlflow.experimentKind") is None:
            client.set_experiment_tag(found.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
        return found.experiment_id
    return client.create_experiment(
        name, artifact_location=_artifact_location(name), tags={"har.kind": "study", **EXPERIMENT_KIND}
    )


def _artifact_location(name: str) -> str | None:
    """MLflow's default (``./mlruns/<id>`` of the working folder), except where a SQLite database lives
    elsewhere (a DVC experiment's copy writing to the project's database): ``mlruns/<name>`` beside it,
    so that the winners' checkpoints outlive the copy."""
    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    folder = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
    return None if folder == Path.cwd().resolve() else str(folder / "mlruns" / name)


def quote(value: str) -> str:
    return value.replace("'", "\\'")


def find_runs(client, experiment_id: str, tags: dict[str, str]) -> list:
    query = " and ".join(f"tags.`{k}` = '{quote(v)}'" for k, v in tags.items())
    return client.search_runs([experiment_id], filter_string=query, max_results=10_000)


def parent_run(client, experiment_id: str, tags: dict[str, str], run_name: str) -> str:
    """The parent run of one permutation in one study run; reused on --resume."""
    found = find_runs(client, experiment_id, {**tags, "har.role": "parent"})
    if found:
        run_id = found[0].info.run_id
        if found[0].info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        return run_id
    run = client.create_run(experiment_id, run_name=run_name, tags={**tags, "har.role": "parent"})
    return run.info.run_id


def child_runs(client, experiment_id: str, parent_id: str) -> list:
    return find_runs(client, experiment_id, {"mlflow.parentRunId": parent_id})


def create_child(client, experiment_id: str, parent_id: str, run_name: str, tags: dict[str, str]) -> str:
    run = client.create_run(
        experiment_id,
        run_name=run_name,
        tags={**tags, "mlflow.parentRunId": parent_id, "har.role": "trial"},
    )
    return run.info.run_id


def last_step(client, run_id: str, key: str) -> int:
    """The highest step logged for ``key`` (0 when none): a resumed trial logs only newer epochs."""
    history = client.get_metric_history(run_id, key)
    return max((m.step for m in history), default=0)


def log_metrics(client, run_id: str, metrics: dict[str, float], step: int) -> None:

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for i in range(0, len(batch), 900):  # the server's batch limit is 1000
        client.log_batch(run_id, metrics=batch[i : i + 900])


def log_params(client, run_id: str, params: dict[str, Any]) -> None:

    items = [Param(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in sorted(params.items())]
    for i in range(0, len(items), 90):
        client.log_batch(run_id, params=items[i : i + 90])


def close_open_children(client, experiment_id: str, parent_id: str, status: str = "KILLED") -> int:
    """No child run stays RUNNING after a study: whatever is left open is marked ``status``."""
    closed = 0
    for run in child_runs(client, experiment_id, parent_id):
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, "har.outcome", "interrupted")
            client.set_terminated(run.info.run_id, status=status)
            closed += 1
    return closed


def git_commit() -> str:
    """HEAD of the working tree (``-dirty`` with uncommitted changes); in images without .git, the
    ``HAR_GIT_COMMIT`` the image was built with."""
    if os.environ.get("HAR_GIT_COMMIT"):
        return os.environ["HAR_GIT_COMMIT"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def all_runs(client, experiment_id: str) -> list:
    """Every run of the experiment, page by page."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs
