"""Everything that leaves a node, written to a real S3-compatible server (moto's, on 127.0.0.1, see
tests/servers.py): DVC's remote, Ray Tune's storage and the team tracking server's artifact store.

Credentials and the endpoint reach every client through the environment only (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``): boto3, pyarrow (Tune), s3fs
(DVC) and MLflow all read them; nothing of them is written into the repository.
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli_helpers import BIN, env
from tests.test_dvc import commit_project, copy_project, dvc, run
from tests.test_tune import RAY_ENV, TINY, make_project, write_study

if TYPE_CHECKING:
    from tests.servers import ObjectStore, Postgres

pytest_plugins = ["tests.servers"]  # the postgres and object_store fixtures


def same_tree(a: Path, b: Path) -> None:
    compared = filecmp.dircmp(a, b)
    assert not (compared.left_only or compared.right_only or compared.diff_files), (a, compared.report())
    for sub in compared.common_dirs:
        same_tree(a / sub, b / sub)


@pytest.mark.slow
def test_dvc_remote_on_s3_push_then_pull_into_a_fresh_clone(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    repo = copy_project(tmp_path / "project")
    commit_project(repo)
    dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    dvc("remote", "add", "-d", "storage", "s3://har/dvc", cwd=repo)
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-qm", "data on S3", cwd=repo)
    s3 = {**env(), **object_store.env}
    pushed = subprocess.run([str(BIN / "dvc"), "push", "--with-deps", "prepare@uci_hapt_sample"], cwd=repo, env=s3, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert object_store.keys("har", "dvc/files/md5/"), "the push wrote DVC's content-addressed objects"

    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    assert not (clone / "data" / "prepared" / "uci_hapt_sample").exists()
    # a clone pulls what it needs: the prepared dataset and what it was made from
    pulled = subprocess.run([str(BIN / "dvc"), "pull", "--with-deps", "prepare@uci_hapt_sample"], cwd=clone, env=s3, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    for folder in ("data/raw/uci_hapt_sample", "data/prepared/uci_hapt_sample"):
        same_tree(repo / folder, clone / folder)
    status = subprocess.run([str(BIN / "dvc"), "status", "--with-deps", "prepare@uci_hapt_sample"], cwd=clone, env=s3, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert status.returncode == 0 and "Data and pipelines are up to date" in status.stdout, status.stdout
    committed = subprocess.run(["git", "grep", "-I", "-l", object_store.env["AWS_SECRET_ACCESS_KEY"]], cwd=clone,
                               capture_output=True, text=True)  # fmt: skip
    assert committed.stdout == "", "a credential was written into the repository"


def children(client, study: str) -> list:
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`har.role` = 'trial'")


@pytest.mark.slow
def test_tune_storage_and_mlflow_artifacts_on_s3_survive_a_killed_driver(
    object_store: ObjectStore, postgres: Postgres, tmp_path: Path
) -> None:
    """The team setup: tracking server on PostgreSQL with its artifacts on S3, Optuna on PostgreSQL,
    Tune's checkpoints on S3. The driver is SIGKILLed mid-study; ``--resume`` continues from S3 and the
    registered champion's model comes back from S3 through ``har predict``."""
    from mlflow.tracking import MlflowClient

    from tests.servers import running_mlflow_server

    (tmp_path / "project").mkdir()
    project = make_project(tmp_path / "project")
    body = {**TINY, "budget": {**TINY["budget"], "trials": 3, "max_epochs": 4, "grace_period": 4}}
    write_study(project, "s3study", body)
    with running_mlflow_server(
        postgres, tmp_path / "mlflow", artifacts="s3://har/mlflow", env=object_store.env
    ) as server:
        stores = {**env(), **RAY_ENV, **object_store.env, **postgres.env,
                  "MLFLOW_TRACKING_URI": server.url, "HAR_STORAGE_PATH": "s3://har/tune",
                  "HAR_OPTUNA_STORAGE": postgres.create_database("optuna")}  # fmt: skip
        client = MlflowClient(server.url)
        proc = subprocess.Popen(
            [str(BIN / "har"), "tune", "--study", "s3study", "--num-cpus", "2"], cwd=project, env=stores,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.time() + 300
        try:
            while time.time() < deadline:  # kill once a trial finished and another is mid-training
                time.sleep(0.5)
                found = children(client, "s3study")
                if any(r.info.status == "FINISHED" for r in found) and any(
                    r.info.status == "RUNNING" for r in found
                ):
                    break
            else:
                pytest.fail("the study did not reach the kill point")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        finished_before = {r.data.tags["ray.trial_id"] for r in found if r.info.status == "FINISHED"}
        assert object_store.keys("har", "tune/s3study-"), "Tune's checkpoints and experiment state are on S3"
        assert not (project / "runs" / "tune").exists()

        resumed = subprocess.run(
            [str(BIN / "har"), "tune", "--study", "s3study", "--resume", "--num-cpus", "2"], cwd=project, env=stores,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        trials = children(client, "s3study")
        assert (
            len(trials) == 3 and len({r.data.tags["ray.trial_id"] for r in trials}) == 3
        )  # none lost or twice
        assert finished_before <= {r.data.tags["ray.trial_id"] for r in trials}
        assert all(r.info.status == "FINISHED" for r in trials)
        for trial in trials:  # resumed trials did not log an epoch twice
            steps = [m.step for m in client.get_metric_history(trial.info.run_id, "val/loss")]
            assert sorted(steps) == list(range(1, len(steps) + 1)), steps
        version = client.get_model_version_by_alias("har-uci_hapt_sample-all", "champion")
        assert object_store.keys("har", "mlflow/"), "the server wrote the model's artifacts to S3"
        assert not list((tmp_path / "mlflow" / "artifacts").iterdir()), "nothing in the server's local folder"

        import numpy as np
        import pandas as pd

        from har.data.formats import uci_hapt

        acc, gyro = uci_hapt.read_experiment(
            uci_hapt.raw_dir(project / "data" / "raw" / "uci_hapt_sample"), 1, 1
        )
        table = pd.DataFrame(
            np.hstack([acc, gyro]), columns=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
        )
        table.insert(0, "time", np.arange(len(table)) / 50.0)
        table.to_csv(project / "walk.csv", index=False)
        # the client has no S3 credentials: the server hands out the artifacts (proxied)
        client_env = {k: v for k, v in stores.items() if not k.startswith("AWS_")}
        predicted = subprocess.run(
            [str(BIN / "har"), "predict", "--model", "har-uci_hapt_sample-all@champion", "--input", "walk.csv",
             "--output", "walk.champion.csv"], cwd=project, capture_output=True, text=True, timeout=300,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **client_env,
                 "HAR_CACHE": str(tmp_path / "cache")},
        )  # fmt: skip
        assert predicted.returncode == 0, predicted.stderr[-3000:]
        labels = pd.read_csv(project / "walk.champion.csv")
        assert len(labels) > 0
        assert (
            tmp_path / "cache" / "models" / "har-uci_hapt_sample-all" / version.version / "checkpoint"
        ).is_dir()
