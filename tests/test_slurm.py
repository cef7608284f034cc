"""The project's Slurm scripts on a real Slurm (tests/slurm.py: munged, slurmctld and slurmd on
127.0.0.1, one node with this machine's CPUs and four stand-in GPUs): ``sbatch infra/slurm/har-tune.sbatch``
and the array script via ``submit-studies.sh``, followed with ``scontrol show job``.

Each test's project is a checkout as a user has it (params.yaml, pipelines/, infra/slurm/, the bundled
sample prepared); the job runs there with the test's virtual environment (``HAR_VENV``), Ray token
authentication as shipped, and the stores named in the environment. What one host cannot show (head
and workers on several nodes, the token reaching them) stays in tests/test_infra.py with stand-ins.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli_helpers import BIN, REPO
from tests.test_tune import TINY, champion, make_project, metric_steps, runs, write_study

if TYPE_CHECKING:
    from tests.servers import MlflowServer, Postgres
    from tests.slurm import Slurm

pytest_plugins = ["tests.slurm", "tests.servers"]

VENV = Path(sys.executable).parent.parent
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("slurm-project"))
    shutil.copytree(REPO / "infra" / "slurm", root / "infra" / "slurm")
    return root


def job_env(slurm: Slurm, project: Path, **extra: str) -> dict[str, str]:
    """The submitting shell's environment (sbatch exports it to the job)."""
    return {
        **os.environ,
        **slurm.env,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HAR_VENV": str(VENV),
        "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db",
        "HAR_STORAGE_PATH": str(project / "runs" / "tune"),
        "HAR_RAY_OBJECT_STORE_MEMORY": str(256 * 1024**2),
        "RAY_USAGE_STATS_ENABLED": "0",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def sbatch(slurm: Slurm, project: Path, study: str, *options: str, **env: str) -> str:
    """``sbatch`` the shipped script from the project folder, on this one node; the job id."""
    import subprocess

    proc = subprocess.run(
        ["sbatch", "--parsable", "--nodes=1", "--cpus-per-task=2", "--mem=4G", "--time=00:20:00",
         f"--output={project}/slurm-%j.out", *options, "infra/slurm/har-tune.sbatch"],
        cwd=project, env=job_env(slurm, project, STUDY=study, **env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(";")[0]


def output(project: Path, job_id: str) -> str:
    path = project / f"slurm-{job_id}.out"
    return path.read_text(errors="replace") if path.exists() else ""


def ended(slurm: Slurm, project: Path, job_id: str, timeout: float = 400) -> dict[str, str]:
    try:
        return slurm.wait(job_id, ENDED, timeout)
    except TimeoutError as exc:
        slurm.run("scancel", job_id)
        raise AssertionError(f"{exc}\n--- job output\n{output(project, job_id)[-4000:]}") from None


@pytest.mark.slow
def test_the_jobs_exit_code_is_the_drivers_and_bad_input_stops_it_before_ray(
    slurm: Slurm, project: Path
) -> None:
    write_study(project, "unprepared", {**TINY, "dataset": "uci_hapt"})  # never prepared here
    # every trial raises (an LSTM of 0 layers): the study fails after Ray started, exit code 1
    failing = {**TINY, "models": {"lstm": {"space": {"hidden": 8, "layers": 0}}},
               "budget": {**TINY["budget"], "trials": 1, "max_epochs": 1}}  # fmt: skip
    write_study(project, "failing", failing)
    bad, broken = (
        sbatch(slurm, project, "unprepared", "--cpus-per-task=1"),
        sbatch(slurm, project, "failing", "--cpus-per-task=1"),
    )
    fields = ended(slurm, project, bad, timeout=120)
    log = output(project, bad)
    assert fields["JobState"] == "FAILED" and fields["ExitCode"] == "2:0", log
    (error,) = [line for line in log.splitlines() if line.startswith("error:")]
    assert "data/prepared/uci_hapt: not prepared" in error and "har data prepare uci_hapt" in error
    assert "Ray cluster at" not in log and "stopping Ray" not in log
    fields = ended(slurm, project, broken)
    log = output(project, broken)
    assert fields["JobState"] == "FAILED" and fields["ExitCode"] == "1:0", log[-4000:]
    assert (
        "Ray cluster at" in log and "stopping Ray on 1 node(s)" in log
    )  # Ray stopped after a failed driver too
    (error,) = [line for line in log.splitlines() if line.startswith("error:")]
    assert "[all] every trial failed (1 of 1)" in error, log[-3000:]


@pytest.mark.slow
def test_a_requeued_job_comes_back_and_resumes_without_lost_or_duplicated_runs(
    slurm: Slurm, project: Path
) -> None:
    """``scontrol requeue`` (what preemption with PreemptMode=REQUEUE does) mid-study: Slurm sends the
    job SIGTERM, the script stops the driver (Tune saves) and Ray, and the job starts again with
    SLURM_RESTART_COUNT=1, which makes the driver resume."""
    budget = {**TINY["budget"], "trials": 3, "max_epochs": 3, "grace_period": 3}
    write_study(project, "requeued", {**TINY, "budget": budget})
    job = sbatch(slurm, project, "requeued")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # requeue once a trial finished and another is mid-training
        time.sleep(0.5)
        assert slurm.job(job).get("JobState") in {"PENDING", "RUNNING"}, output(project, job)[-4000:]
        if (project / "mlflow.db").exists():
            children = [r for r in runs(project, "requeued") if r.get("har.role") == "trial"]
            if any(r["status"] == "FINISHED" for r in children) and any(
                r["status"] == "RUNNING" for r in children
            ):
                break
    else:
        pytest.fail(f"the study did not reach the requeue point\n{output(project, job)[-4000:]}")
    finished_before = {r["ray.trial_id"] for r in children if r["status"] == "FINISHED"}
    requeued = slurm.run("scontrol", "requeue", job)
    assert requeued.returncode == 0, requeued.stderr
    # Slurm holds a requeued job back (BeginTime) for about two minutes; let it start when it can
    deadline = time.monotonic() + 60
    while slurm.job(job).get("JobState") != "PENDING" and time.monotonic() < deadline:
        time.sleep(0.5)
    slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")
    fields = ended(slurm, project, job)
    log = output(project, job)
    assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", log[-4000:]
    assert fields["Restarts"] == "1"
    # the log is appended to: each attempt starts with the check, then Ray on the node (with Slurm's
    # GPUs) and the driver; the first one ends at the requeue, the second resumes
    _, first, again = log.split("ready: study requeued")
    assert "DUE TO JOB REQUEUE" in first and "stopping the Tune driver" in first, first[-3000:]
    steps = [rf"job {job}, study requeued, 1 node\(s\) x 2 CPU / 1 GPU", "Ray cluster at", r", resumed\): 1 permutation",
             "the winner of each sensor permutation", r"stopping Ray on 1 node\(s\)"]  # fmt: skip
    positions = [m.start() if (m := re.search(step, again)) else -1 for step in steps]
    assert -1 not in positions and positions == sorted(positions), (positions, again[-4000:])
    assert f"JobId={job} " in slurm.completions() and "JobState=COMPLETED" in slurm.completions()
    assert not Path(f"/tmp/ray-{job}").exists(), "the job's Ray temp folder is removed"
    children = [r for r in runs(project, "requeued") if r.get("har.role") == "trial"]
    assert len(children) == 3 and len({c["ray.trial_id"] for c in children}) == 3  # none lost, none twice
    assert finished_before <= {c["ray.trial_id"] for c in children}
    assert not [r for r in runs(project, "requeued") if r["status"] == "RUNNING"]
    for child in children:
        steps = metric_steps(project, child["id"], "val/loss")
        assert steps == list(range(1, len(steps) + 1)), steps  # no epoch logged twice
    assert champion(project, "har-uci_hapt_sample-all")[0]


@pytest.mark.slow
def test_an_array_of_two_studies_runs_at_once_on_one_tracking_server(
    slurm: Slurm, project: Path, postgres: Postgres, mlflow_server: MlflowServer
) -> None:
    """``submit-studies.sh`` sizes one array job from a list; its two tasks run at the same time on the
    node (each 1 CPU, 1 GPU) with their own Ray (port blocks, temp folders), both writing to the team's
    tracking server and Optuna database (PostgreSQL) and to one Tune storage, and both finish."""
    import subprocess

    from mlflow.tracking import MlflowClient

    for name, perm in (("left", "all"), ("right", "acc")):
        write_study(project, name, {**TINY, "permutations": [perm],
                                    "budget": {**TINY["budget"], "trials": 2, "max_epochs": 2}})  # fmt: skip
    (project / "studies.txt").write_text("# two studies, one array\nleft\nright\n")
    env = job_env(
        slurm, project, **postgres.env, MLFLOW_TRACKING_URI=mlflow_server.url,
        HAR_OPTUNA_STORAGE=postgres.create_database("optuna"),
    )  # fmt: skip
    env.pop("STUDY", None)
    proc = subprocess.run(
        ["bash", "infra/slurm/submit-studies.sh", "-p", "2", "studies.txt", "--parsable", "--nodes=1",
         "--cpus-per-task=1", "--mem=4G", "--time=00:20:00", f"--output={project}/array-%A_%a.out"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    array = proc.stdout.strip().split(";")[0]
    tasks = {}
    for index in (0, 1):
        fields = ended(slurm, project, f"{array}_{index}")
        log = (project / f"array-{array}_{index}.out").read_text(errors="replace")
        assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", log[-4000:]
        tasks[index] = (fields, log)
    (first, log0), (second, log1) = tasks[0], tasks[1]
    assert "task 0 of 2: study left" in log0 and "task 1 of 2: study right" in log1
    assert first["StartTime"] < second["EndTime"] and second["StartTime"] < first["EndTime"], "ran at once"
    blocks = [tuple(map(int, re.search(r"ports (\d+)-(\d+)", log).groups())) for log in (log0, log1)]
    assert blocks[0][1] < blocks[1][0] or blocks[1][1] < blocks[0][0], blocks  # no shared port
    client = MlflowClient(mlflow_server.url)
    for name, perm in (("left", "all"), ("right", "acc")):
        experiment = client.get_experiment_by_name(name)
        children = client.search_runs([experiment.experiment_id], "tags.`har.role` = 'trial'")
        assert len(children) == 2 and all(r.info.status == "FINISHED" for r in children)
        assert client.get_model_version_by_alias(f"har-uci_hapt_sample-{perm}", "champion")
    experiments = [p.name for p in (project / "runs" / "tune").iterdir()]  # one Tune storage, both studies
    assert any(n.startswith("left") for n in experiments) and any(n.startswith("right") for n in experiments)
