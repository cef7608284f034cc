"""Faults a study survives on a real local multi-node Ray cluster (127.0.0.1): a worker node's raylet
killed mid-study, the driver killed mid-study, a trial worker SIGKILLed as the OOM killer does. (The
same driver kill with a driver-started Ray and raising / NaN trials are in tests/test_tune.py; the
MLflow server restart is in tests/test_tracking_server.py.)"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.cli_helpers import BIN, env
from tests.test_tune import (
    RAY_ENV,
    TINY,
    _free_port,
    kill_driver_then_resume,
    make_project,
    metric_steps,
    runs,
    write_study,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("faults-project"))


def start_cluster(port: int, victim_port: int | None = None) -> None:
    """A head that only runs the driver's tasks (0 CPUs) and two worker nodes with one CPU each."""
    ray = str(BIN / "ray")
    node = ["--memory", str(2 * 1024**3), "--object-store-memory", str(256 * 1024**2), "--disable-usage-stats",
            "--node-ip-address", "127.0.0.1"]  # fmt: skip
    victim = ["--node-manager-port", str(victim_port)] if victim_port else []
    for args in (["--head", "--port", str(port), "--num-cpus", "0", "--include-dashboard", "false"],
                 ["--address", f"127.0.0.1:{port}", "--num-cpus", "1"],
                 ["--address", f"127.0.0.1:{port}", "--num-cpus", "1", *victim]):  # fmt: skip
        started = subprocess.run([ray, "start", *args, *node], capture_output=True, text=True,
                                 env={**env(), **RAY_ENV}, timeout=120)  # fmt: skip
        assert started.returncode == 0, started.stderr


def stop_cluster(port: int) -> None:
    """Kill this cluster only (its GCS on ``port``, every process of its Ray session, and their
    children), never another test's Ray: ``ray stop --force`` would kill every Ray on the machine."""
    session = None
    for proc in psutil.process_iter(["cmdline"]):
        args = proc.info["cmdline"] or []
        if f"--gcs_server_port={port}" in args:
            session = next((a.split("=", 1)[1] for a in args if a.startswith("--session-name=")), None)
    if session is None:
        return
    doomed: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if any(session in arg for arg in proc.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                for member in (proc, *proc.children(recursive=True)):
                    doomed[member.pid] = member
    for proc in doomed.values():
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(list(doomed.values()), timeout=20)


@pytest.mark.slow
def test_a_killed_driver_resumes_on_the_cluster_and_trials_ran_on_both_nodes(
    project: Path, tmp_path: Path
) -> None:
    port = _free_port()
    try:
        start_cluster(port)
        kill_driver_then_resume(project, "driverloss", "--address", f"127.0.0.1:{port}",
                                "--storage-path", str(tmp_path / "shared"))  # fmt: skip
    finally:
        stop_cluster(port)
    # the study ran on the cluster: trials on both worker nodes, Tune's storage where it was told
    children = [r for r in runs(project, "driverloss") if r.get("har.role") == "trial"]
    assert len({c.get("ray.node_id") for c in children} - {None}) == 2
    assert any((tmp_path / "shared").iterdir())


def _tune_restart_race(error: str) -> bool:
    """Ray Tune 2.60: the dead actor's stop task fails after the trial was requeued for its retry, and a
    failure of a PENDING trial is final. The error holds two failures of the same, unavailable actor."""
    actors = [a or b for a, b in re.findall(r"The actor (\w+) is unavailable|actor_id: (\w+)", error)]
    return "Failure # 2" in error and len(actors) >= 2 and len(set(actors)) == 1


def _essentials(output: str) -> str:
    """The driver's own lines (Ray's raylet state dumps, forwarded after a node death, drown them)."""
    return "\n".join(
        line for line in output.splitlines() if "(raylet)" not in line and "[state-dump]" not in line
    )[-4000:]


def _raylet(node_manager_port: int) -> psutil.Process | None:
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "raylet" in (proc.info["name"] or "") and f"--node_manager_port={node_manager_port}" in cmd:
            return proc
    return None


@pytest.mark.slow
def test_a_killed_worker_node_loses_trials_that_are_retried(project: Path, tmp_path: Path) -> None:
    port, victim_port = _free_port(), _free_port()
    ray_env = {**env(), **RAY_ENV}
    body = {
        **TINY,
        "budget": {
            **TINY["budget"],
            "trials": 4,
            "max_epochs": 6,
            "grace_period": 6,
            "retries": 3,
        },  # see below
    }
    write_study(project, "nodeloss", body)
    driver = None
    try:
        start_cluster(port, victim_port)
        victim = _raylet(victim_port)
        assert victim is not None, "the victim node's raylet was not found"
        victim_node = next(a.split("=", 1)[1] for a in victim.cmdline() if a.startswith("--node_id="))
        driver = subprocess.Popen(
            [str(BIN / "har"), "tune", "--study", "nodeloss", "--address", f"127.0.0.1:{port}",
             "--storage-path", str(tmp_path / "shared"), "--no-register"],
            cwd=project, env=ray_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.time() + 240
        while time.time() < deadline:  # kill while a trial on the victim node is mid-training: it has
            time.sleep(0.3)  # logged an epoch and has at least two of its 6 left, so it cannot end first
            if (project / "mlflow.db").exists():
                training = [r for r in runs(project, "nodeloss") if r.get("har.role") == "trial"
                            and r["status"] == "RUNNING" and r.get("ray.node_id") == victim_node]  # fmt: skip
                if any(1 <= len(metric_steps(project, r["id"], "val/loss")) <= 4 for r in training):
                    break
        else:
            pytest.fail("no trial was ever training on the victim node")
        os.kill(victim.pid, signal.SIGKILL)
        output, _ = driver.communicate(timeout=420)
        assert driver.returncode == 0, output[-4000:]
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        stop_cluster(port)
    children = [r for r in runs(project, "nodeloss") if r.get("har.role") == "trial"]
    assert len(children) == 4 and len({c["ray.trial_id"] for c in children}) == 4  # one run per trial
    assert not [c for c in children if c["status"] == "RUNNING"]
    retried = [c for c in children if c.get("har.retries")]
    assert retried, "no trial was retried after the node died"
    for (
        child
    ) in retried:  # finished on the surviving node, or hit Ray Tune's restart race (docs/reliability.md)
        assert child["status"] == "FINISHED" or _tune_restart_race(child.get("har.error", "")), child.get(
            "har.error"
        )
    assert sum(c["status"] == "FINISHED" for c in children) >= 3  # the study went on without the node


def _trial_workers(driver_pid: int) -> list[psutil.Process]:
    """Trial worker processes of this driver's local Ray (its descendants), not of any other Ray."""
    found = []
    for proc in psutil.Process(driver_pid).children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if cmd.startswith(("ray::ImplicitFunc", "ray::run_trial")):
            found.append(proc)
    return found


@pytest.mark.slow
def test_a_trial_killed_like_the_oom_killer_is_failed_and_the_study_goes_on(project: Path) -> None:
    """The kernel's OOM killer and Ray's memory monitor end a trial with SIGKILL of its worker process."""
    body = {
        **TINY,
        "budget": {**TINY["budget"], "trials": 4, "max_epochs": 5, "grace_period": 5, "retries": 0},
    }
    write_study(project, "oom", body)
    driver = subprocess.Popen(
        [str(BIN / "har"), "tune", "--study", "oom", "--num-cpus", "2", "--no-register"],
        cwd=project, env={**env(), **RAY_ENV}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 240
        victim = None
        while time.time() < deadline and victim is None:
            time.sleep(0.3)
            if (project / "mlflow.db").exists():
                training = [r for r in runs(project, "oom") if r.get("har.role") == "trial" and r.get("ray.node_id")
                            and r["status"] == "RUNNING"]  # fmt: skip
                workers = _trial_workers(driver.pid)
                if training and workers:
                    victim = workers[0]
        assert victim is not None, "no trial worker was training"
        victim.send_signal(signal.SIGKILL)
        output, _ = driver.communicate(timeout=420)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, output[-4000:]
    children = [r for r in runs(project, "oom") if r.get("har.role") == "trial"]
    assert len(children) == 4 and not [c for c in children if c["status"] == "RUNNING"]
    failed = [c for c in children if c["status"] == "FAILED"]
    assert len(failed) == 1 and failed[0]["har.outcome"] == "failed", [c["status"] for c in children]
    assert sum(c["status"] == "FINISHED" for c in children) == 3  # the study went on
