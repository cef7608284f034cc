"""Issue 22: a study handed to a running Ray cluster as a Ray job (`har jobs`), on a real local Ray head
with its job server (127.0.0.1), stopped cleanly mid-study and resumed by a second job."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_helpers import BIN, env, one_line_error
from tests.test_faults import stop_cluster
from tests.test_tune import RAY_ENV, TINY, _free_port, champion, make_project, metric_steps, runs, write_study


def har_jobs(project: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "har"), "jobs", *args], cwd=project, env={**env(), **RAY_ENV},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def start_head(port: int, dashboard: int) -> None:
    """A one-node cluster whose head runs the job server (the dashboard's Jobs API) and two trials."""
    args = ["--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard", "true",
            "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard), "--memory", str(3 * 1024**3),
            # the job agent's own port: its default (52365) may be held by another Ray on this machine
            "--dashboard-agent-listen-port", str(_free_port()),
            "--object-store-memory", str(256 * 1024**2), "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]  # fmt: skip
    started = subprocess.run([str(BIN / "ray"), "start", *args], capture_output=True, text=True,
                             env={**env(), **RAY_ENV}, timeout=120)  # fmt: skip
    assert started.returncode == 0, started.stderr


@pytest.mark.slow
def test_a_study_runs_as_a_ray_job_stops_cleanly_and_resumes_as_another(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    project = make_project(tmp_path / "project")
    body = {**TINY, "budget": {**TINY["budget"], "trials": 4, "max_epochs": 3, "grace_period": 3}}
    write_study(project, "jobs", body)
    port, dashboard = _free_port(), _free_port()
    address = f"http://127.0.0.1:{dashboard}"
    stores = [
        "--tracking-uri",
        f"sqlite:///{project / 'mlflow.db'}",
        "--storage-path",
        str(tmp_path / "shared"),
    ]
    try:
        start_head(port, dashboard)
        # stores inside the job's copy of the project would vanish with it: refused before submitting
        bad = har_jobs(project, "submit", "--study", "jobs", "--address", address, "--storage-path", "runs/tune",
                       "--tracking-uri", f"sqlite:///{project / 'mlflow.db'}")  # fmt: skip
        assert bad.returncode == 2 and "--storage-path runs/tune" in one_line_error(bad)
        bad = har_jobs(project, "submit", "--study", "jobs", "--address", address, *stores[2:])
        assert bad.returncode == 2 and "--tracking-uri sqlite:///mlflow.db" in one_line_error(bad)
        first = har_jobs(
            project, "submit", "--study", "jobs", "--address", address, *stores, "--job-id", "jobs-1"
        )
        assert first.returncode == 0, first.stderr
        assert "submitted job jobs-1" in first.stdout
        deadline = time.time() + 240  # stop once some trials finished and others are mid-training
        while time.time() < deadline:
            time.sleep(0.5)
            if (project / "mlflow.db").exists():
                children = [r for r in runs(project, "jobs") if r.get("har.role") == "trial"]
                if any(r["status"] == "FINISHED" for r in children) and any(
                    r["status"] == "RUNNING" for r in children
                ):
                    break
        else:
            pytest.fail(
                "the job did not reach the stop point: "
                + har_jobs(project, "logs", "jobs-1", "--address", address).stdout[-2000:]
            )
        stopped = har_jobs(project, "stop", "jobs-1", "--address", address)
        assert stopped.returncode == 0 and "job jobs-1: STOPPED" in stopped.stdout, (
            stopped.stdout + stopped.stderr
        )
        logs = har_jobs(project, "logs", "jobs-1", "--address", address).stdout
        assert "study interrupted after" in logs and "--resume" in logs, logs[-2000:]  # Tune stopped cleanly
        assert "Tuner.restore" not in logs  # har's way to continue, not Tune's
        before = runs(project, "jobs")
        (parent,) = [r for r in before if r.get("har.role") == "parent"]
        assert parent["har.status"] == "interrupted" and not [r for r in before if r["status"] == "RUNNING"]
        # a second job resumes the study run and finishes it
        second = har_jobs(project, "submit", "--study", "jobs", "--address", address, *stores, "--resume",
                          "--job-id", "jobs-2", "--follow", timeout=400)  # fmt: skip
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
        assert (
            "registered har-uci_hapt_sample-all" in second.stdout and "job jobs-2: SUCCEEDED" in second.stdout
        )
        status = har_jobs(project, "status", "jobs-2", "--address", address)
        assert status.returncode == 0 and "job jobs-2: SUCCEEDED" in status.stdout
        listed = har_jobs(project, "list", "--address", address).stdout
        assert "jobs-1" in listed and "STOPPED" in listed and "jobs-2" in listed and "SUCCEEDED" in listed
        after = runs(project, "jobs")
        children = [r for r in after if r.get("har.role") == "trial"]
        assert len([r for r in after if r.get("har.role") == "parent"]) == 1
        assert len(children) == 4 and len({c["ray.trial_id"] for c in children}) == 4  # none lost, none twice
        for child in children:
            steps = metric_steps(project, child["id"], "val/loss")
            assert steps == list(range(1, len(steps) + 1)), steps
        assert champion(project, "har-uci_hapt_sample-all")[0] == "1"
        missing = har_jobs(project, "status", "nope", "--address", address)
        assert missing.returncode == 2 and "job 'nope': not found" in one_line_error(missing)
    finally:
        stop_cluster(port)
