"""A shared tracking server for real: PostgreSQL started by the test (tests/servers.py), ``mlflow server``
on 127.0.0.1 backed by it with proxied artifacts, and a study with 8 concurrent trials logging through
it. Every trial's per-epoch metrics are counted against the trials' own result.json; the registry,
``har models list`` and ``har predict NAME@champion`` work through the server."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.cli_helpers import BIN, REPO, env, har

if TYPE_CHECKING:
    from tests.servers import MlflowServer, Postgres

pytest_plugins = ["tests.servers"]  # the postgres and mlflow_server fixtures

DATASET = "uci_hapt_sample"
MODEL = f"har-{DATASET}-all"
STUDY = "server8"
TRIALS = 8
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "OMP_NUM_THREADS": "1",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}
BODY = {  # 8 trials at once on 2 CPUs: a quarter CPU each (one torch thread)
    "dataset": DATASET,
    "models": {"lstm": {"space": {"hidden": {"int": [6, 12]}}, "train": {"batch_size": 64}}},
    "train": {"lr": {"loguniform": [1.0e-3, 1.0e-2]}},
    "budget": {"trials": TRIALS, "max_epochs": 2, "grace_period": 1, "reduction_factor": 2, "retries": 0},
    "resources": {"cpu": 0.25},
    "concurrency": TRIALS,
    "seed": 0,
}
EPOCH_KEYS = ("train/loss", "val/loss", "val/accuracy", "val/macro_f1", "val/weighted_f1", "lr",
              "epoch_seconds", "latency_ms", "parameters", "best/val/macro_f1")  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("server-project")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "sample", root / "sample")
    (root / "pipelines").mkdir()
    (root / "pipelines" / f"{STUDY}.yaml").write_text(yaml.safe_dump(BODY))
    for step in ("fetch", "prepare"):
        proc = har("data", step, DATASET, cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def study(project: Path, mlflow_server: MlflowServer) -> Iterator[subprocess.CompletedProcess]:
    # a private Ray temp dir: a cluster that `ray start` left on this machine (another test, another
    # user) is found through /tmp/ray/ray_current_cluster and would be joined instead of a local Ray
    ray_tmp = tempfile.mkdtemp(prefix="har-ray-")
    try:
        yield subprocess.run(
            [str(BIN / "har"), "tune", "--study", STUDY, "--tracking-uri", mlflow_server.url, "--num-cpus", "2",
             "--storage-path", str(project / "tune")],
            cwd=project, env={**env(), **RAY_ENV, "RAY_TMPDIR": ray_tmp}, capture_output=True, text=True,
            timeout=1500,
        )  # fmt: skip
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def trial_results(storage: Path) -> dict[str, list[dict]]:
    """Every trial's reported epochs, from Tune's own result.json files (one JSON object per line)."""
    by_trial: dict[str, list[dict]] = {}
    for path in storage.rglob("result.json"):
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                by_trial.setdefault(row["trial_id"], []).append(row)
    return by_trial


def max_overlap(by_trial: dict[str, list[dict]]) -> int:
    """The most trials training at one time (from Tune's per-epoch timestamps)."""
    events = []
    for rows in by_trial.values():
        rows = sorted(rows, key=lambda r: r["training_iteration"])
        events += [(rows[0]["timestamp"] - rows[0]["time_this_iter_s"], 1), (rows[-1]["timestamp"], -1)]
    running = most = 0
    for _, change in sorted(events):
        running += change
        most = max(most, running)
    return most


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_eight_concurrent_trials_log_every_epoch_through_the_server(
    project: Path, mlflow_server: MlflowServer, postgres: Postgres, study: subprocess.CompletedProcess
) -> None:
    from mlflow.tracking import MlflowClient

    assert study.returncode == 0, study.stdout[-3000:] + study.stderr[-3000:] + mlflow_server.log_tail()
    assert "NOT logged" not in study.stdout and "unreachable" not in study.stdout, study.stdout
    assert "postgresql://" not in study.stdout  # the study sees only the server's URL
    assert "View run" not in study.stdout  # MLflow's own two lines per ended run (har ui prints the links)
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name(STUDY)
    assert experiment is not None and experiment.artifact_location.startswith("mlflow-artifacts:")
    all_runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in all_runs if r.data.tags.get("har.role") == "parent"]
    children = [r for r in all_runs if r.data.tags.get("har.role") == "trial"]
    assert len(parents) == 1 and len(children) == TRIALS, [r.data.tags for r in all_runs]
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["har.status"] == "complete"
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert not [r.info.run_id for r in all_runs if r.info.status == "RUNNING"]
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.data.tags["har.outcome"] for c in children} <= {"completed", "early-stopped", "pruned"}

    tune_results = trial_results(project / "tune")
    by_trial = {c.data.tags["ray.trial_id"]: c for c in children}
    assert set(by_trial) == set(tune_results), (sorted(by_trial), sorted(tune_results))
    epochs_total = values_stored = 0
    for trial_id, child in by_trial.items():
        reported = sorted(tune_results[trial_id], key=lambda r: r["training_iteration"])
        epochs = [int(r["epoch"]) for r in reported]
        assert epochs == list(range(1, len(epochs) + 1)) and 1 <= len(epochs) <= 2, (trial_id, epochs)
        for key in EPOCH_KEYS:
            history = sorted(client.get_metric_history(child.info.run_id, key), key=lambda m: m.step)
            assert [m.step for m in history] == epochs, (trial_id, key, [m.step for m in history], epochs)
            for metric, row in zip(history, reported, strict=True):
                assert metric.value == pytest.approx(float(row[key]), rel=1e-6, abs=1e-9), (trial_id, key)
            values_stored += len(history)
        epochs_total += len(epochs)
    assert values_stored == epochs_total * len(EPOCH_KEYS)  # nothing lost, nothing twice
    assert epochs_total >= TRIALS
    # the trials really ran (and were logged) concurrently: all 8 overlapped on the 2-CPU machine here
    assert max_overlap(tune_results) >= TRIALS // 2

    winners = [c for c in children if c.data.tags.get("har.winner") == "true"]
    assert len(winners) == 1 and parent.data.tags["har.best_run"] == winners[0].info.run_id
    assert client.get_metric_history(winners[0].info.run_id, "test/accuracy")
    # proxied artifacts: the checkpoint went through the server into its artifact folder
    names = {f.path for f in client.list_artifacts(winners[0].info.run_id, "checkpoint")}
    assert {"checkpoint/model.pt", "checkpoint/checkpoint.json"} <= names
    assert list((mlflow_server.folder / "artifacts").rglob("checkpoint.json"))

    # the database password is only in the client's password file: not in any log or output
    password = postgres.passfile.read_text().strip().rsplit(":", 1)[1]
    for text in (study.stdout, study.stderr, mlflow_server.log_tail(10**7), postgres.log_tail(10**7)):
        assert password not in text
    for path in (project / "tune").rglob("*"):
        if path.is_file() and path.suffix in {".json", ".log", ".txt", ".csv"}:
            assert password not in path.read_text(errors="replace"), path


@pytest.mark.slow
def test_registry_models_list_and_predict_through_the_server(
    project: Path, mlflow_server: MlflowServer, study: subprocess.CompletedProcess, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from har.data.formats import uci_hapt

    assert study.returncode == 0, study.stderr[-3000:]
    client = MlflowClient(mlflow_server.url)
    assert client.get_registered_model(MODEL).name == MODEL
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == "1" and champion.tags["study"] == STUDY
    listing = har("models", "list", "--tracking-uri", mlflow_server.url, cwd=project)
    assert listing.returncode == 0, listing.stderr
    assert MODEL in listing.stdout and "v1" in listing.stdout, listing.stdout

    acc, gyro = uci_hapt.read_experiment(uci_hapt.raw_dir(project / "data" / "raw" / DATASET), 1, 1)
    table = pd.DataFrame(
        np.hstack([acc, gyro]), columns=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    )
    table.insert(0, "time", np.arange(len(table)) / 50.0)
    table.to_csv(tmp_path / "walk.csv", index=False)
    cache = tmp_path / "cache"
    proc = har("predict", "--model", f"{MODEL}@champion", "--input", "walk.csv", "--output", "walk.out.csv",
               "--tracking-uri", mlflow_server.url, cwd=tmp_path, extra_env={"HAR_CACHE": str(cache)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    predicted = pd.read_csv(tmp_path / "walk.out.csv")
    assert len(predicted) == (len(table) - 128) // 64 + 1
    info = json.loads((cache / "models" / MODEL / "1" / "checkpoint" / "checkpoint.json").read_text())
    assert info["study"] == STUDY and info["dataset"] == DATASET


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_server_restart_mid_study_loses_nothing(
    project: Path, mlflow_server: MlflowServer, study: subprocess.CompletedProcess
) -> None:
    """The server goes away while trials train and comes back: the study finishes, and the epochs
    logged while it was down arrive (queued by the driver), each exactly once."""
    import time

    from mlflow.tracking import MlflowClient

    body = {**BODY, "budget": {**BODY["budget"], "trials": 4, "max_epochs": 8, "grace_period": 8},
            "resources": {"cpu": 1}, "concurrency": 2}  # fmt: skip
    (project / "pipelines" / "restart.yaml").write_text(yaml.safe_dump(body))
    client = MlflowClient(mlflow_server.url)
    ray_tmp = tempfile.mkdtemp(prefix="har-ray-")
    driver = subprocess.Popen(
        [str(BIN / "har"), "tune", "--study", "restart", "--tracking-uri", mlflow_server.url, "--num-cpus", "2",
         "--storage-path", str(project / "tune-restart"), "--no-register"],
        cwd=project, env={**env(), **RAY_ENV, "RAY_TMPDIR": ray_tmp, "HAR_TRACKING_FINAL_WAIT": "120",
             "HAR_TRACKING_RETRY_SECONDS": "3"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 400
        while time.time() < deadline:  # stop the server once trials are logging epochs
            time.sleep(0.5)
            experiment = client.get_experiment_by_name("restart")
            if experiment is None:
                continue
            trials = client.search_runs([experiment.experiment_id], "tags.`har.role` = 'trial'")
            if any(client.get_metric_history(r.info.run_id, "val/loss") for r in trials):
                break
        else:
            pytest.fail("no trial logged an epoch")
        mlflow_server.stop()
        time.sleep(10)  # trials keep training while the server is down (retries every 3 s)
        assert driver.poll() is None, "the study ended while the tracking server was down"
        mlflow_server.start()
        output, _ = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)
        if not mlflow_server.healthy():
            mlflow_server.start()
    assert driver.returncode == 0, output[-4000:]
    assert "unreachable" in output and "reachable again" in output, output[-4000:]
    assert "NOT logged" not in output
    experiment = client.get_experiment_by_name("restart")
    children = client.search_runs([experiment.experiment_id], "tags.`har.role` = 'trial'")
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    reported = trial_results(project / "tune-restart")
    for child in children:
        epochs = sorted(int(r["epoch"]) for r in reported[child.data.tags["ray.trial_id"]])
        steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "val/loss"))
        assert steps == epochs, (child.data.tags["ray.trial_id"], steps, epochs)  # all arrived, none twice


def test_drivers_opening_one_new_optuna_database_at_once_all_succeed(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Slurm array's tasks start together against one empty PostgreSQL database: each creates Optuna's
    tables; the ones that lose the race retry instead of failing the job."""
    import threading

    from har.tune.optuna_store import open_storage

    for key, value in postgres.env.items():  # the password file
        monkeypatch.setenv(key, value)
    url = postgres.create_database("optuna_race")
    start, errors = threading.Barrier(6), []

    def open_one() -> None:
        start.wait()
        try:
            open_storage(url).get_all_studies()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
