"""MLflow: one experiment per study, a parent run per sensor permutation, a child run per trial;
the winner's test evaluation and artifacts; the registry (``har-<dataset>-<permutation>``) with a
``champion`` alias that moves only when a new version wins on the same test split.

Only the tuner's driver writes here (trials report to Ray), so SQLite is safe and workers need no
access to the tracking server.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har.errors import BadInput, HarError

TRACKING_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_URI = "sqlite:///mlflow.db"
CHAMPION = "champion"
CHECKPOINT_DIR = "checkpoint"  # artifact folder holding the har-lab checkpoint of a winner
TEST_KEYS = ("test/accuracy", "test/macro_f1", "test/weighted_f1", "test/loss")


def resolve_uri(flag: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the embedded SQLite database."""
    return flag or os.environ.get(TRACKING_ENV) or DEFAULT_URI


def connect(uri: str, create: bool = True):
    """A client for ``uri``; creates (and migrates) a SQLite database once, here in the driver.
    Readers (``har models``, ``har predict``) pass ``create=False``: a missing database is bad input."""
    import mlflow
    from mlflow.tracking import MlflowClient

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
    import time

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


def model_name(dataset: str, permutation: str) -> str:
    return f"har-{dataset}-{permutation}"


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
    return client.create_experiment(name, tags={"har.kind": "study", **EXPERIMENT_KIND})


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def find_runs(client, experiment_id: str, tags: dict[str, str]) -> list:
    query = " and ".join(f"tags.`{k}` = '{_quote(v)}'" for k, v in tags.items())
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
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for i in range(0, len(batch), 900):  # the server's batch limit is 1000
        client.log_batch(run_id, metrics=batch[i : i + 900])


def log_params(client, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

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


# -- the winner of a permutation ---------------------------------------------------------------
def log_winner(
    client,
    run_id: str,
    model,
    info: dict[str, Any],
    test: dict[str, Any],
    example,
) -> str:
    """Test metrics, confusion matrix, learning curves, classification report, the har-lab checkpoint
    and the ``mlflow.pytorch`` model (signature + input example) on the winner's run. Returns the
    logged model's URI."""
    import mlflow
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    from har.checkpoint import save_checkpoint
    from har.metrics import scalars
    from har.plots import confusion_matrix_png, learning_curves_png

    classes = info["classes"]
    log_metrics(client, run_id, scalars(test), step=info.get("best_epoch", 0))
    with tempfile.TemporaryDirectory(prefix="har-winner-") as tmp:
        root = Path(tmp)
        save_checkpoint(root / CHECKPOINT_DIR, model, info)
        client.log_artifacts(run_id, str(root / CHECKPOINT_DIR), CHECKPOINT_DIR)
        title = f"{info['dataset']}/{info['sensors']} {info['model']} (test)"
        confusion_matrix_png(test["confusion_matrix"], classes, root / "confusion_matrix.png", title)
        learning_curves_png(info["history"], root / "learning_curves.png", title)
        (root / "classification_report.json").write_text(
            json.dumps({"per_class": test["per_class"], **scalars(test)}, indent=2) + "\n"
        )
        (root / "classification_report.txt").write_text(classification_report_text(test, classes))
        for name in (
            "confusion_matrix.png",
            "learning_curves.png",
            "classification_report.json",
            "classification_report.txt",
        ):
            client.log_artifact(run_id, str(root / name), "evaluation")
    model = model.cpu().eval()
    example = np.asarray(example, dtype=np.float32)
    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        # torch.export notes that nn.LSTM re-assigns its flat weights: harmless, and noise in the study log
        warnings.filterwarnings("ignore", message=".*were assigned during export.*")
        logged = mlflow.pytorch.log_model(
            model,
            name="model",
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"har-lab=={info['har_version']}"],
        )
    return logged.model_uri


def classification_report_text(test: dict[str, Any], classes: list[str]) -> str:
    width = max(len(c) for c in classes) + 2
    lines = [f"{'class':<{width}}precision  recall  f1      support"]
    for c in classes:
        row = test["per_class"][c]
        lines.append(
            f"{c:<{width}}{row['precision']:<11.4f}{row['recall']:<8.4f}{row['f1']:<8.4f}{row['support']}"
        )
    lines.append("")
    for key in ("test/accuracy", "test/macro_f1", "test/weighted_f1"):
        lines.append(f"{key:<{width}}{test[key]:.4f}")
    return "\n".join(lines) + "\n"


@dataclass
class Registration:
    name: str
    version: str
    promoted: bool
    decision: str
    champion_version: str


def register(
    client,
    name: str,
    model_uri: str,
    run_id: str,
    tags: dict[str, str],
    score_key: str,
    score: float,
    test_split: str,
    rescore_champion: Callable[[Path], float] | None = None,
) -> Registration:
    """A new version of ``name``; the ``champion`` alias moves only if it beats the champion's
    ``score_key`` on the same test split (the champion is re-scored on this split when its own tag
    names another one; without ``rescore_champion`` it then stays)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={"har.kind": "dataset x permutation"})
    # MLflow 3 logged models (models:/m-...): a tracking server requires the model id with the source
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = client.create_model_version(
        name, model_uri, run_id=run_id, tags={k: str(v) for k, v in tags.items()}, model_id=model_id
    )
    version_id = str(version.version)
    client.set_model_version_tag(name, version_id, "test_split", test_split)
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    higher_is_better = not score_key.endswith("loss")
    if current is None:
        promoted, decision = True, f"first version: champion with {score_key} {score:.4f}"
    else:
        if current.tags.get("test_split") == test_split and score_key in current.tags:
            theirs = float(current.tags[score_key])
            how = "stored"
        elif rescore_champion is not None:
            theirs = rescore_champion(download_checkpoint(f"{name}/{current.version}", client=client))
            how = "re-scored on this test split"
        else:
            theirs, how = float("inf") if higher_is_better else float("-inf"), "other test split"
        better = score > theirs if higher_is_better else score < theirs
        promoted = bool(better)
        verb = "beats" if promoted else "does not beat"
        decision = f"{score_key} {score:.4f} {verb} champion v{current.version} ({theirs:.4f}, {how})"
    client.set_model_version_tag(name, version_id, "champion_decision", decision)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version_id)
    champion = version_id if promoted else str(current.version)
    return Registration(name, version_id, promoted, decision, champion)


def promote(client, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        raise BadInput(
            f"registered model {name!r} has no version {version!r} (see 'har models list')"
        ) from exc
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "champion_decision", "promoted by hand (har models promote)")


def registered_models(client) -> list[dict[str, Any]]:
    """Every har-lab registered model with its champion version, tags and version count."""
    from mlflow.exceptions import MlflowException

    rows = []
    for rm in client.search_registered_models(max_results=1000):
        if not rm.name.startswith("har-"):
            continue
        versions = client.search_model_versions(f"name = '{_quote(rm.name)}'", max_results=10_000)
        try:
            champion = client.get_model_version_by_alias(rm.name, CHAMPION)
        except MlflowException:
            champion = None
        rows.append({"name": rm.name, "versions": len(versions), "champion": champion})
    return sorted(rows, key=lambda r: r["name"])


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``name@alias`` / ``name/version`` / ``models:/...`` -> (name, alias, version)."""
    ref = ref.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, alias, None
    if "/" in ref:
        name, version = ref.rsplit("/", 1)
        return name, None, version
    return ref, CHAMPION, None


def download_checkpoint(ref: str, tracking_uri: str | None = None, client=None) -> Path:
    """The har-lab checkpoint folder of a registered model version (downloaded once, then cached)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = client or connect(resolve_uri(tracking_uri), create=False)
    name, alias, version = parse_ref(ref)
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
    except MlflowException as exc:
        raise BadInput(
            f"model {ref!r}: not in the registry at {client.tracking_uri} (see 'har models list')"
        ) from exc
    if not mv.run_id:
        raise HarError(f"model {ref!r}: version {mv.version} has no source run with a har-lab checkpoint")
    cache = (
        Path(os.environ.get("HAR_CACHE", Path.home() / ".cache" / "har-lab"))
        / "models"
        / name
        / str(mv.version)
    )
    if (cache / CHECKPOINT_DIR / "checkpoint.json").is_file():
        return cache / CHECKPOINT_DIR
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=CHECKPOINT_DIR, dst_path=tmp, tracking_uri=client.tracking_uri
        )
        os.replace(local, cache / CHECKPOINT_DIR)
    return cache / CHECKPOINT_DIR
