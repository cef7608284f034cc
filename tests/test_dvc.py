"""The DVC pipeline in a temporary git repo: repro, no-op repro, and a param change re-runs only dependents."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.cli_helpers import BIN, REPO, env


def run(*args: str, cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def dvc(*args: str, cwd: Path) -> str:
    return run(str(BIN / "dvc"), *args, cwd=cwd)


def dvc_json(*args: str, cwd: Path):
    """A DVC command's --json answer (stdout only: DVC warns on stderr about studies not run yet)."""
    proc = subprocess.run([str(BIN / "dvc"), *args, "--json"], cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def ran(output: str) -> set[str]:
    """Stages that DVC executed in a repro run."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def copy_project(repo: Path, folders: tuple[str, ...] = ("har", "sample")) -> Path:
    """The pipeline's files in a fresh folder ``repo``: dvc.yaml, params.yaml and ``folders``."""
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, repo / name)
    for folder in folders:
        shutil.copytree(REPO / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return repo


def commit_project(repo: Path) -> None:
    """git + DVC initialised, everything committed (dvc exp and lineage need a commit)."""
    run("git", "init", "-q", cwd=repo)
    run("git", "config", "user.email", "ci@example.invalid", cwd=repo)
    run("git", "config", "user.name", "ci", cwd=repo)
    dvc("init", "-q", cwd=repo)
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-qm", "project", cwd=repo)


def test_dvc_repro_and_param_change(tmp_path: Path) -> None:
    repo = copy_project(tmp_path / "project")
    commit_project(repo)

    first = dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    assert ran(first) == {"fetch@uci_hapt_sample", "prepare@uci_hapt_sample"}
    x_before = np.load(repo / "data/prepared/uci_hapt_sample/X.npy", mmap_mode="r").shape

    again = dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    assert ran(again) == set()

    # another dataset's parameter does not touch this dataset's stages
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"]["watch"]["window"]["step"] = 25
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert "up to date" in dvc("status", "prepare@uci_hapt_sample", cwd=repo)

    # this dataset's window step: prepare re-runs, fetch does not
    params["datasets"]["uci_hapt_sample"]["window"]["step"] = 32
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    assert ran(changed) == {"prepare@uci_hapt_sample"}
    x_after = np.load(repo / "data/prepared/uci_hapt_sample/X.npy", mmap_mode="r").shape
    assert x_after[0] > 1.8 * x_before[0]  # half the step, about twice the windows


TINY_QUICKSTART = {
    "dataset": "uci_hapt_sample",
    "permutations": ["all"],
    "models": {"lstm": {"space": {"hidden": {"int": [6, 12]}}}},
    "train": {"lr": {"loguniform": [1.0e-3, 1.0e-2]}},
    "budget": {"trials": 2, "max_epochs": 2, "grace_period": 1, "reduction_factor": 2, "retries": 0},
    "concurrency": 2,
}


@pytest.mark.slow
def test_dvc_tune_stage_runs_prepare_tune_register(tmp_path: Path) -> None:
    """`dvc repro tune@quickstart` (what `make run` does, with a smaller study): prepare -> tune ->
    register; the study's metrics are DVC metrics; the registered version carries the DVC md5."""
    repo = copy_project(tmp_path / "project", ("har", "sample", "pipelines"))
    (repo / "pipelines" / "quickstart.yaml").write_text(yaml.safe_dump(TINY_QUICKSTART))
    (repo / ".gitignore").write_text("/mlflow.db\n/optuna.db\n/mlruns/\n/runs/tune/\n/dvc_plots/\n")
    commit_project(repo)
    shutil.copy(REPO / ".dvc" / "config", repo / ".dvc" / "config")  # the project's: offline plots template
    shutil.copy(REPO / ".dvc" / ".gitignore", repo / ".dvc" / ".gitignore")
    run("git", "commit", "-qam", "dvc config", cwd=repo)
    tune_env = {
        "RAY_USAGE_STATS_ENABLED": "0",
        "OMP_NUM_THREADS": "1",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    proc = subprocess.run(
        [str(BIN / "dvc"), "repro", "tune@quickstart"], cwd=repo, env={**env(), **tune_env},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert ran(proc.stdout) == {"fetch@uci_hapt_sample", "prepare@uci_hapt_sample", "tune@quickstart"}
    metrics = json.loads((repo / "runs" / "quickstart" / "metrics.json").read_text())
    best = metrics["permutations"]["all"]
    assert best["registered"] == "har-uci_hapt_sample-all/1" and 0 <= best["test/accuracy"] <= 1
    shown = dvc("metrics", "show", "--json", cwd=repo)
    assert "test/accuracy" in shown and "runs/quickstart/metrics.json" in shown
    with sqlite3.connect(repo / "mlflow.db") as db:
        (data_version,) = db.execute(
            "select value from model_version_tags where name = 'har-uci_hapt_sample-all' and key = 'data_version'"
        ).fetchone()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    prepared_md5 = next(
        out["md5"] for out in lock["stages"]["prepare@uci_hapt_sample"]["outs"]
        if out["path"] == "data/prepared/uci_hapt_sample"
    )  # fmt: skip
    assert data_version == f"dvc-md5:{prepared_md5}"  # lineage: registry version -> exact data version
    assert ran(dvc("repro", "tune@quickstart", cwd=repo)) == set()
    # `dvc metrics diff`: against the commit before the study (no metrics), then after committing the lock
    diff = dvc_json("metrics", "diff", cwd=repo)["runs/quickstart/metrics.json"]
    assert diff["permutations.all.test/accuracy"] == {"old": None, "new": best["test/accuracy"]}
    run("git", "add", "dvc.lock", cwd=repo)
    run("git", "commit", "-qm", "study results", cwd=repo)
    assert dvc_json("metrics", "diff", cwd=repo) == {}  # unchanged since that commit
    # `dvc plots show` renders the winner's curves and confusion matrix offline: no CDN in the page
    template = repo / ".dvc" / "plots" / "offline.html"
    assert template.stat().st_size > 500_000  # written by `har tune` on first use: Vega inlined
    assert "plots/offline.html" not in run("git", "status", "--porcelain", cwd=repo)  # generated, ignored
    dvc("plots", "show", "-o", "dvc_plots", cwd=repo)  # every study's plots; only quickstart has data
    page = (repo / "dvc_plots" / "index.html").read_text()
    assert "cdn.jsdelivr.net" not in page and "<script src=" not in page
    for title in (
        "winner's loss per epoch",
        "winner's validation scores per epoch",
        "winner's confusion matrix",
    ):
        assert title in page
    assert '"val_macro_f1"' in page and '"actual"' in page
    # ... and the page really draws in a browser with no network: Chromium, every request local
    from tests.browser import browser_page

    with browser_page() as tab:
        remote: list[str] = []
        tab.on(
            "request", lambda r: remote.append(r.url) if not r.url.startswith(("file:", "data:")) else None
        )
        tab.goto((repo / "dvc_plots" / "index.html").as_uri())
        tab.wait_for_timeout(1500)
        lines, cells = tab.locator("g.mark-line path").count(), tab.locator("g.mark-rect path").count()
    assert lines >= 4 and cells >= 6 and remote == [], (
        lines,
        cells,
        remote,
    )  # 2 curves x 2 plots; the matrix


@pytest.mark.slow
def test_study_files_are_params_and_queued_experiments_share_the_project_stores(tmp_path: Path) -> None:
    """Issue 24: every key of pipelines/<study>.yaml is a param of tune@<study> (`dvc params diff`,
    `dvc exp run -S`, `dvc exp show`); two queued experiments run one after the other from copies under
    .dvc/tmp/exps/ and both log to the project's MLflow and Optuna databases (not to the copies')."""
    repo = copy_project(tmp_path / "project", ("har", "sample", "pipelines"))
    (repo / "pipelines" / "quickstart.yaml").write_text(yaml.safe_dump({**TINY_QUICKSTART, "seed": 0}))
    (repo / ".gitignore").write_text("/mlflow.db\n/optuna.db\n/mlruns/\n/runs/tune/\n")
    commit_project(repo)
    tune_env = {**env(), "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    run("git", "add", "dvc.lock", cwd=repo)
    run("git", "commit", "-qm", "data", cwd=repo)
    study_file = repo / "pipelines" / "quickstart.yaml"
    edited = yaml.safe_load(study_file.read_text())
    edited["budget"]["trials"] = 3
    study_file.write_text(yaml.safe_dump(edited))
    diff = dvc_json("params", "diff", cwd=repo)
    assert diff["pipelines/quickstart.yaml"]["budget.trials"] == {"old": 2, "new": 3, "diff": 1}
    run("git", "checkout", "pipelines/quickstart.yaml", cwd=repo)
    for trials, seed in ((1, 1), (2, 2)):
        dvc("exp", "run", "--queue", "tune@quickstart", "-S", f"pipelines/quickstart.yaml:budget.trials={trials}",
            "-S", f"pipelines/quickstart.yaml:seed={seed}", cwd=repo)  # fmt: skip
    # the worker outlives `dvc queue start` and holds its output pipes: no capture
    subprocess.run([str(BIN / "dvc"), "queue", "start", "-j", "1"], cwd=repo, env=tune_env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)  # fmt: skip
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            status = dvc("queue", "status", cwd=repo)
            if status.count("Success") == 2 or "Failed" in status:
                break
            time.sleep(3)
        assert status.count("Success") == 2, status
    finally:
        subprocess.run([str(BIN / "dvc"), "queue", "stop", "--kill"], cwd=repo, env=env(), capture_output=True,
                       timeout=60)  # fmt: skip
    with sqlite3.connect(repo / "mlflow.db") as db:  # the project's store, not the copies'
        exps = db.execute("select value from tags where key = 'dvc.exp_name'").fetchall()
        trials = db.execute("select count(*) from tags where key = 'har.role' and value = 'trial'").fetchone()
        versions = db.execute("select count(*) from model_versions").fetchone()
        (artifacts,) = db.execute(
            "select artifact_location from experiments where name = 'quickstart'"
        ).fetchone()
    assert len(exps) == 2 and trials == (3,) and versions[0] >= 1
    assert artifacts.startswith(str(repo / "mlruns")) and ".dvc/tmp" not in artifacts
    with sqlite3.connect(repo / "optuna.db") as db:
        assert db.execute("select count(*) from studies").fetchone() == (2,)
    shown = dvc_json("exp", "show", cwd=repo)
    revs = [r for base in shown for exp in base.get("experiments") or [] for r in exp["revs"]]
    assert len(revs) == 2
    for rev in revs:
        data = rev["data"]
        params = data["params"]["pipelines/quickstart.yaml"]["data"]
        best = data["metrics"]["runs/quickstart/metrics.json"]["data"]["permutations"]["all"]
        assert (params["budget"]["trials"], params["seed"]) in ((1, 1), (2, 2))
        assert best["trials"] == params["budget"]["trials"] and 0 <= best["test/accuracy"] <= 1


@pytest.mark.slow
def test_push_to_the_default_remote_then_pull_in_a_fresh_clone(tmp_path: Path) -> None:
    """Issue 24: .dvc/config names a default remote (a folder beside the project, replaceable in
    .dvc/config.local); `dvc push`, then `dvc pull` in a fresh clone restores raw and prepared data and
    `dvc status` is clean; the committed dvc.lock is what the clone pulls by."""
    repo = copy_project(tmp_path / "project")
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")
    commit_project(repo)
    shutil.copy(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    run("git", "commit", "-qam", "the project's DVC config: default remote", cwd=repo)
    dvc("repro", "prepare@uci_hapt_sample", cwd=repo)
    run("git", "add", "dvc.lock", cwd=repo)
    run("git", "commit", "-qm", "uci_hapt_sample prepared", cwd=repo)
    assert "files pushed" in dvc("push", cwd=repo)
    assert (tmp_path / "har-lab-dvc-storage" / "files" / "md5").is_dir()  # ../har-lab-dvc-storage
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(repo), str(clone), cwd=tmp_path)
    assert not (clone / "data").exists()
    # plain `dvc pull` also wants the outputs of stages never run (other datasets): exit 1 by design;
    # --allow-missing pulls what was pushed, `dvc pull -d prepare@NAME` one dataset with its raw files
    dvc("pull", "--allow-missing", cwd=clone)
    for part in ("raw", "prepared"):
        assert sorted(p.name for p in (clone / "data" / part / "uci_hapt_sample").rglob("*")) == sorted(
            p.name for p in (repo / "data" / part / "uci_hapt_sample").rglob("*")
        )
    np.testing.assert_array_equal(
        np.load(clone / "data" / "prepared" / "uci_hapt_sample" / "X.npy"),
        np.load(repo / "data" / "prepared" / "uci_hapt_sample" / "X.npy"),
    )
    assert "up to date" in dvc("status", "prepare@uci_hapt_sample", cwd=clone)
    assert ran(dvc("repro", "prepare@uci_hapt_sample", cwd=clone)) == set()  # nothing to redo
    # a private remote replaces the default in .dvc/config.local, which git never sees
    dvc("remote", "add", "--local", "-d", "mine", str(tmp_path / "private"), cwd=clone)
    assert "mine" in dvc("remote", "default", cwd=clone)
    assert run("git", "status", "--porcelain", cwd=clone).strip() == ""
