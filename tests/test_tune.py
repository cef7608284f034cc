"""``har tune`` end to end with real Ray, real MLflow (SQLite) and the real bundled sample: study files,
parent/child runs, the registry's champion rule, failed trials, progress, report, DVC plot data and the
MLflow UI. (``--resume`` after a killed driver, on a multi-node Ray cluster on 127.0.0.1 whose trials
run on both worker nodes, is in tests/test_faults.py.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from har.errors import BadInput
from har.tune.study import load_study
from tests.cli_helpers import BIN, REPO, env, har, one_line_error

DATASET = "uci_hapt_sample"
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "OMP_NUM_THREADS": "1",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}
TINY = {
    "dataset": DATASET,
    "models": {"lstm": {"space": {"hidden": {"int": [6, 12]}}, "train": {"batch_size": 64}}},
    "train": {"lr": {"loguniform": [1.0e-3, 1.0e-2]}},
    "budget": {"trials": 4, "max_epochs": 3, "grace_period": 1, "reduction_factor": 2, "retries": 0},
    "resources": {"cpu": 1},
    "concurrency": 2,
    "seed": 0,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("tune-project"))


def make_project(root: Path) -> Path:
    """A scratch project: params.yaml, the bundled sample fetched and prepared, an empty pipelines/."""
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "sample", root / "sample")
    (root / "pipelines").mkdir()
    for step in ("fetch", "prepare"):
        proc = har("data", step, DATASET, cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root


def write_study(root: Path, name: str, body: dict) -> None:
    (root / "pipelines" / f"{name}.yaml").write_text(yaml.safe_dump(body))


def tune(root: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "har"), "tune", *args, "--num-cpus", "2"],
        cwd=root,
        env={**env(), **RAY_ENV, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc


def runs(root: Path, study: str) -> list[dict]:
    """Every active (not deleted) run of the study's experiment, read straight from the SQLite database.

    A database whose tables MLflow is still creating (a poll can land between the file's creation and
    the end of its migrations) holds no runs yet.
    """
    try:
        with sqlite3.connect(root / "mlflow.db") as db:
            rows = db.execute(
                "select r.run_uuid, r.status, r.start_time, r.end_time from runs r join experiments e "
                "on r.experiment_id = e.experiment_id where e.name = ? and r.lifecycle_stage = 'active'",
                (study,),
            ).fetchall()
            tags = db.execute("select run_uuid, key, value from tags").fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" not in str(error):
            raise
        return []
    by_run: dict[str, dict[str, str]] = {}
    for run_id, key, value in tags:
        by_run.setdefault(run_id, {})[key] = value
    return [
        {"id": rid, "status": status, "start": start, "end": end, **by_run.get(rid, {})}
        for rid, status, start, end in rows
    ]


def metric_steps(root: Path, run_id: str, key: str) -> list[int]:
    with sqlite3.connect(root / "mlflow.db") as db:
        return [
            s
            for (s,) in db.execute(
                "select step from metrics where run_uuid = ? and key = ? order by step", (run_id, key)
            )
        ]


def last_metric(root: Path, run_id: str, key: str) -> float:
    with sqlite3.connect(root / "mlflow.db") as db:
        (value,) = db.execute(
            "select value from latest_metrics where run_uuid = ? and key = ?", (run_id, key)
        ).fetchone()
    return float(value)


OUTCOME_STATE = {
    "completed": "COMPLETE",
    "early-stopped": "COMPLETE",
    "pruned": "PRUNED",
    "failed": "FAIL",
}


def optuna_studies(root: Path, study: str) -> dict[str, list]:
    """The Optuna studies of ``study`` in the project's optuna.db: name -> its trials."""
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{root / 'optuna.db'}")
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
        for s in optuna.get_all_study_summaries(storage)
        if s.study_name.startswith(f"{study}/")
    }


def assert_optuna_matches_mlflow(root: Path, study: str) -> None:
    """One Optuna study per permutation and study run (<study>/<run>/<permutation>); its trials are the
    MLflow child runs (by Ray trial id), with the same ending (complete, pruned, failed) and objective."""
    children = [r for r in runs(root, study) if r.get("har.role") == "trial"]
    parents = {r["id"]: r for r in runs(root, study) if r.get("har.role") == "parent"}
    studies = optuna_studies(root, study)
    expected = {f"{study}/{p['har.study_run']}/{p['har.permutation']}" for p in parents.values()}
    assert set(studies) == expected, (set(studies), expected)
    trials = {
        t.user_attrs["ray_trial_id"]: t
        for ts in studies.values()
        for t in ts
        if not t.user_attrs.get("har_outcome", "").startswith("orphaned")
    }
    assert set(trials) == {c["ray.trial_id"] for c in children}
    for child in children:
        trial = trials[child["ray.trial_id"]]
        assert trial.state.name == OUTCOME_STATE[child["har.outcome"]], (
            f"trial {child['ray.trial_id']}: MLflow {child['har.outcome']!r}, Optuna {trial.state.name}; "
            f"error: {child.get('har.error', '')[-1500:]}; retries: {child.get('har.retries')}, "
            f"last error: {child.get('har.last_error', '')[-1500:]}"
        )
        if trial.state.name == "COMPLETE":
            assert trial.value == pytest.approx(last_metric(root, child["id"], "best/val/macro_f1"))


def champion(root: Path, name: str) -> tuple[str, list[str]]:
    with sqlite3.connect(root / "mlflow.db") as db:
        alias = db.execute(
            "select version from registered_model_aliases where name = ? and alias = 'champion'", (name,)
        ).fetchone()
        versions = [
            str(v) for (v,) in db.execute("select version from model_versions where name = ?", (name,))
        ]
    return (str(alias[0]) if alias else "", versions)


# -- study files (no Ray) -----------------------------------------------------------------------
def test_shipped_studies_are_valid() -> None:
    names = sorted(p.stem for p in (REPO / "pipelines").glob("*.yaml"))
    assert {"quickstart", "uci_har", "myogym", "opportunity", "watch"} <= set(names)
    for name in names:
        spec = load_study(name, REPO / "params.yaml", REPO / "pipelines")
        assert spec.name == name and spec.models
    myogym = load_study("myogym", REPO / "params.yaml", REPO / "pipelines")
    assert {"emg", "acc", "gyro", "acc+gyro", "emg+acc+gyro"} <= set(myogym.permutations)
    watch = load_study("watch", REPO / "params.yaml", REPO / "pipelines")
    assert {"acc", "gyro", "acc+gyro"} <= set(watch.permutations)


def test_define_by_run_samples_only_the_chosen_models_parameters(tmp_path: Path) -> None:
    body = {
        "dataset": DATASET,
        "models": {
            "lstm": {"space": {"hidden": {"int": [8, 16]}}},
            "resnet1d": {"space": {"widths": {"choice": [[8, 8, 8], [16, 16, 16]]}, "dropout": 0.1}},
        },
        "train": {"lr": {"loguniform": [1.0e-4, 1.0e-2]}, "patience": 3},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(body))
    spec = load_study(str(tmp_path / "s.yaml"), REPO / "params.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        constants = spec.sample(trial)
        config = {**trial.params, **constants}
        setup = spec.decode(config)
        seen.add(setup.model)
        other = "resnet1d" if setup.model == "lstm" else "lstm"
        assert not any(k.startswith(other + ".") for k in config), config
        assert setup.train["patience"] == 3 and setup.train["max_epochs"] == spec.budget.max_epochs
        assert setup.train["monitor"] == "val/macro_f1" and 1e-4 <= setup.train["lr"] <= 1e-2
        if setup.model == "resnet1d":
            assert setup.hparams["widths"] in ([8, 8, 8], [16, 16, 16]) and setup.hparams["dropout"] == 0.1
        else:
            assert 8 <= setup.hparams["hidden"] <= 16
        study.tell(trial, 0.5)
    assert seen == {"lstm", "resnet1d"}


@pytest.mark.parametrize(
    ("sampler", "kind", "expected"),
    [("tpe", "asha", "AsyncHyperBandScheduler"), ("gp", "hyperband", "AsyncHyperBandScheduler"),
     ("random", "median", "MedianStoppingRule"), ("tpe", "none", "FIFOScheduler")],
)  # fmt: skip
def test_search_settings_choose_the_sampler_and_the_early_stopping(
    tmp_path: Path, sampler: str, kind: str, expected: str
) -> None:
    from har.tune.search import scheduler, searcher

    (tmp_path / "pipelines").mkdir()
    write_study(tmp_path, "s", {**TINY, "search": {"sampler": sampler, "scheduler": kind}})
    spec = load_study(str(tmp_path / "pipelines" / "s.yaml"), REPO / "params.yaml")
    chosen = scheduler(spec)
    assert type(chosen).__name__ == expected
    if kind in ("asha", "hyperband"):
        assert len(chosen._brackets) == (3 if kind == "hyperband" else 1)
    names = {"tpe": "TPESampler", "gp": "GPSampler", "random": "RandomSampler"}
    assert type(searcher(spec)._sampler).__name__ == names[sampler]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"colour": "red"}, "colour"),
        ({"dataset": "nope"}, "dataset"),
        ({"permutations": ["emg"]}, "permutations"),
        ({"models": {"transformer": {}}}, "models.transformer"),
        ({"models": {"lstm": {"preset": "nope"}}}, "models.lstm.preset"),
        ({"models": {"lstm": {"space": {"width": 3}}}}, "models.lstm.space.width"),
        ({"train": {"lr": {"loguniform": [0.0, 1.0]}}}, "train.lr"),
        ({"train": {"lr": {"uniform": [1.0, 0.1]}}}, "train.lr"),
        ({"train": {"optimiser": "sgd"}}, "train.optimiser"),
        ({"train": {"max_epochs": 3}}, "train.max_epochs"),
        ({"train": {"batch_size": {"choice": [32, -1]}}}, "train.batch_size"),
        ({"budget": {"trials": 0}}, "budget.trials"),
        ({"resources": {"gpu": -1}}, "resources.gpu"),
        ({"metric": "val/loss", "mode": "max"}, "mode"),
        ({"objectives": [{"metric": "flops"}]}, "objectives.0.metric"),
    ],
)
def test_bad_study_files_are_bad_input_naming_the_key(tmp_path: Path, change: dict, expected: str) -> None:
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**TINY, **change}))
    with pytest.raises(BadInput) as caught:
        load_study(str(tmp_path / "bad.yaml"), REPO / "params.yaml")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'bad.yaml'}: ") and expected in message, message
    assert "\n" not in message


def test_bad_study_file_exits_2_with_one_line_and_writes_nothing(project: Path) -> None:
    write_study(project, "bad", {**TINY, "budget": {"trials": 0}})
    proc = har("tune", "--study", "bad", cwd=project)
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc)
    assert "pipelines/bad.yaml" in line and "budget.trials" in line, line
    assert not (project / "mlflow.db").exists() or runs(project, "bad") == []


def test_unknown_study_and_unprepared_dataset_exit_2(project: Path, tmp_path: Path) -> None:
    proc = har("tune", "--study", "nothing-here", cwd=project)
    assert proc.returncode == 2 and "nothing-here.yaml" in one_line_error(proc)
    write_study(project, "unprepared", {**TINY, "dataset": "uci_hapt"})
    proc = har("tune", "--study", "unprepared", "--tracking-uri", f"sqlite:///{tmp_path}/m.db", cwd=project)
    assert proc.returncode == 2 and "har data prepare uci_hapt" in one_line_error(proc)


def test_permutations_option_searches_a_subset_and_refuses_others(project: Path) -> None:
    write_study(project, "perms", {**TINY, "permutations": ["all", "acc"]})
    proc = har("tune", "--study", "perms", "--permutations", "acc", "--check", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "1 permutation(s) of" in proc.stdout, proc.stdout
    proc = har("tune", "--study", "perms", "--permutations", "acc,gyro", "--check", cwd=project)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "--permutations: gyro not in study 'perms'" in line and "all, acc" in line, line


# -- studies on real Ray + MLflow ---------------------------------------------------------------
@pytest.fixture(scope="module")
def first_study(project: Path) -> subprocess.CompletedProcess:
    write_study(project, "tiny", TINY)
    return tune(project, "--study", "tiny")


@pytest.mark.slow
def test_study_logs_parent_children_and_registers_a_champion(project: Path, first_study) -> None:
    assert first_study.returncode == 0, first_study.stderr[-3000:]
    all_runs = runs(project, "tiny")
    parents = [r for r in all_runs if r.get("har.role") == "parent"]
    children = [r for r in all_runs if r.get("har.role") == "trial"]
    assert len(parents) == 1 and parents[0]["status"] == "FINISHED" and parents[0]["har.status"] == "complete"
    assert len(children) == 4 and all(c["mlflow.parentRunId"] == parents[0]["id"] for c in children)
    assert len({c["ray.trial_id"] for c in children}) == 4
    assert not [r for r in all_runs if r["status"] == "RUNNING"]
    assert {c["har.outcome"] for c in children} <= {"completed", "early-stopped", "pruned"}
    for child in children:  # one value per epoch, no duplicates
        steps = metric_steps(project, child["id"], "val/macro_f1")
        assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= 3
    winners = [c for c in children if c.get("har.winner") == "true"]
    assert len(winners) == 1 and parents[0]["har.best_run"] == winners[0]["id"]
    assert metric_steps(project, winners[0]["id"], "test/accuracy")  # tested once, on the winner only
    assert all(not metric_steps(project, c["id"], "test/accuracy") for c in children if c is not winners[0])
    alias, versions = champion(project, "har-uci_hapt_sample-all")
    assert alias == "1" and versions == ["1"]
    metrics = yaml.safe_load((project / "runs" / "tiny" / "metrics.json").read_text())
    assert metrics["permutations"]["all"]["registered"] == "har-uci_hapt_sample-all/1"
    listing = har("models", "list", cwd=project)
    assert listing.returncode == 0 and "har-uci_hapt_sample-all" in listing.stdout and "v1" in listing.stdout


def test_trial_runs_carry_their_data_as_mlflow_datasets_and_system_metrics(
    project: Path, first_study
) -> None:
    """Issue 25: the UI's Dataset column (train / validation inputs of every trial, test of the winner, the
    digest of the prepared data's version) and its System metrics tab (CPU and memory of the trial's node)."""
    from mlflow.tracking import MlflowClient

    assert first_study.returncode == 0, first_study.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    children = [r for r in runs(project, "tiny") if r.get("har.role") == "trial"]
    versions = set()
    for child in children:
        inputs = {
            next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
            for i in client.get_run(child["id"]).inputs.dataset_inputs
        }
        want = (
            {"train", "validation", "test"} if child.get("har.winner") == "true" else {"train", "validation"}
        )
        assert set(inputs) == want, (child["id"], set(inputs))
        for context, dataset in inputs.items():
            profile = json.loads(dataset.profile)
            versions.add(profile["data_version"])
            assert dataset.name == f"{DATASET}/all"
            assert dataset.digest == f"{profile['data_version'].split(':', 1)[-1][:24]}-{context}"
            assert json.loads(dataset.source)["uri"] == str(
                (project / "data" / "prepared" / DATASET).resolve()
            )
            assert profile["examples"]["train"] > profile["examples"]["val"] > 0
        cpu = client.get_metric_history(child["id"], "system/cpu_utilization_percentage")
        memory = client.get_metric_history(child["id"], "system/system_memory_usage_megabytes")
        assert cpu and memory and all(0 <= m.value <= 100 for m in cpu) and all(m.value > 0 for m in memory)
    version = client.get_model_version("har-uci_hapt_sample-all", "1")
    winner = next(c for c in children if c.get("har.winner") == "true")
    assert version.run_id == winner["id"] and versions == {version.tags["data_version"]}


@pytest.mark.slow
def test_each_search_is_an_optuna_study_that_matches_mlflow(project: Path, first_study) -> None:
    """Issue 21: the search persists in optuna.db beside mlflow.db, one study per permutation, its trial
    states and values those of the MLflow child runs; pruned trials are PRUNED, not COMPLETE."""
    assert first_study.returncode == 0, first_study.stderr[-3000:]
    assert_optuna_matches_mlflow(project, "tiny")
    (trials,) = optuna_studies(project, "tiny").values()
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"} and len(trials) == 4
    assert "searches sqlite:///" in first_study.stdout and "optuna.db" in first_study.stdout


@pytest.mark.slow
def test_optuna_dashboard_shows_the_searches(project: Path, first_study) -> None:
    """`optuna-dashboard sqlite:///optuna.db` (the `dashboard` extra), started on 127.0.0.1, finds the
    study's search and its trials through its HTTP API; stopped by process id."""
    import json
    import urllib.request

    assert first_study.returncode == 0, first_study.stderr[-3000:]
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "optuna-dashboard"), f"sqlite:///{project / 'optuna.db'}", "--host", "127.0.0.1",
         "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base, deadline, listing = f"http://127.0.0.1:{port}/api/studies", time.time() + 60, None
        while listing is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(base, timeout=5) as response:
                    listing = json.load(response)
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.5)
        assert listing is not None, "optuna-dashboard did not answer"
        (search,) = [s for s in listing["study_summaries"] if s["study_name"].startswith("tiny/")]
        assert search["study_name"].endswith("/all")
        with urllib.request.urlopen(f"{base}/{search['study_id']}", timeout=10) as response:
            detail = json.load(response)
        assert len(detail["trials"]) == 4
        assert {t["user_attrs"][0]["key"] for t in detail["trials"]} == {"ray_trial_id"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def trial_spans(root: Path, study: str, study_run: str) -> dict[str, list[tuple[int, int]]]:
    """(start, end) in ms of each child run of one study run, by permutation."""
    all_runs = runs(root, study)
    parents = {
        r["id"]: r for r in all_runs if r.get("har.role") == "parent" and r["har.study_run"] == study_run
    }
    spans: dict[str, list[tuple[int, int]]] = {p["har.permutation"]: [] for p in parents.values()}
    for child in all_runs:
        parent = parents.get(child.get("mlflow.parentRunId", ""))
        if child.get("har.role") == "trial" and parent is not None:
            spans[parent["har.permutation"]].append((child["start"], child["end"]))
    return spans


@pytest.mark.slow
def test_permutations_are_searched_at_once_each_with_its_budget_and_champion(tmp_path: Path) -> None:
    """Issue 21: one Tune run searches both permutations, their trials sharing the slots (they overlap
    in time) while each keeps its budget, Optuna study and champion (--sequential: the simulated test)."""
    root = make_project(tmp_path)
    body = {**TINY, "permutations": ["all", "acc"], "resources": {"cpu": 1, "gpu": 0.25},
            "budget": {**TINY["budget"], "trials": 3, "max_epochs": 2}}  # fmt: skip
    write_study(root, "pair", body)
    proc = tune(root, "--study", "pair", "--num-gpus", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # a GPU share asked of a cluster without GPUs: the trials run on CPU, and the driver says so
    assert "no GPU in the Ray cluster: trials run on CPU" in proc.stdout, proc.stdout[-2000:]
    assert "2 permutation(s) of uci_hapt_sample searched at once, 3 trials each, 2 at a time" in proc.stdout
    for perm in ("all", "acc"):
        assert re.search(rf"\[{perm}\] 3/3 trials done: 0 running", proc.stdout), proc.stdout[-2000:]
        assert re.search(rf"\[{perm}\] trial \w+ started: lstm", proc.stdout)
        assert champion(root, f"har-uci_hapt_sample-{perm}")[0] == "1"
    (study_run,) = {r["har.study_run"] for r in runs(root, "pair") if r.get("har.role") == "parent"}
    spans = trial_spans(root, "pair", study_run)
    assert {p: len(s) for p, s in spans.items()} == {"all": 3, "acc": 3}  # each its budget, no more
    overlapping = [(a, b) for a in spans["all"] for b in spans["acc"] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, spans  # trials of both permutations trained at the same time
    assert_optuna_matches_mlflow(root, "pair")
    assert len(optuna_studies(root, "pair")) == 2


@pytest.mark.slow
def test_a_class_validation_lacks_is_warned_on_the_console_in_mlflow_and_in_the_report(
    tmp_path: Path,
) -> None:
    """Issue 24: each subject performed one activity, and only one training subject ran: validation
    cannot hold 'run', and the study says so where a user looks."""
    from tests.test_formats import custom_params, make_custom

    files = {
        f"s{s:02d}.csv": [(s, label, 60)]
        for s, label in ((1, "walk"), (4, "sit"), (5, "walk"), (6, "sit"), (7, "run"))
    }
    files["s03.csv"] = [(3, "walk", 40), (3, "sit", 40), (3, "run", 40)]
    make_custom(tmp_path / "toy", files=files)
    custom_params(tmp_path, tmp_path / "toy")
    (tmp_path / "pipelines").mkdir()
    for step in ("fetch", "prepare"):
        assert har("data", step, "toy", cwd=tmp_path).returncode == 0
    body = {**TINY, "dataset": "toy", "budget": {**TINY["budget"], "trials": 1, "max_epochs": 1}}
    write_study(tmp_path, "lopsided", body)
    proc = tune(tmp_path, "--study", "lopsided", "--no-register")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"\[all\] warning: validation subjects \[[\d, ]+\] performed no run", proc.stdout)
    (parent,) = [r for r in runs(tmp_path, "lopsided") if r.get("har.role") == "parent"]
    assert "performed no run" in parent["har.val_warning"]
    assert har("report", "--study", "lopsided", cwd=tmp_path).returncode == 0
    report = (tmp_path / "reports" / "lopsided" / "index.md").read_text()
    assert "> **Warning:** validation subjects" in report and "performed no run" in report


@pytest.mark.slow
def test_a_simulated_study_runs_the_real_search_but_never_registers(tmp_path: Path) -> None:
    """Issue 21: --simulate (benchmarks and tests only) needs no data, logs its trials like a real study
    and its Optuna searches match them, but no winner is tested or registered and no metrics file written.
    With --sequential the second permutation's trials start once the first's have ended."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "pipelines").mkdir()
    body = {
        **TINY,
        "permutations": ["all", "acc"],
        "budget": {**TINY["budget"], "trials": 3, "max_epochs": 3},
    }
    write_study(tmp_path, "sim", body)
    (tmp_path / "epochs.json").write_text(json.dumps({"epoch_seconds": [0.05, 0.1, 0.2]}))
    proc = tune(tmp_path, "--study", "sim", "--simulate", "epochs.json", "--sequential")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no winner is tested or registered" in proc.stdout and "searched one after another" in proc.stdout
    assert len(re.findall(r"simulated winner \w+ \(lstm\): .*; not tested, not registered", proc.stdout)) == 2
    all_runs = runs(tmp_path, "sim")
    parents = [r for r in all_runs if r.get("har.role") == "parent"]
    children = [r for r in all_runs if r.get("har.role") == "trial"]
    assert len(parents) == 2 and all(", simulated)" in p["mlflow.runName"] for p in parents)
    assert all(p["har.status"] == "complete" and p["status"] == "FINISHED" for p in parents)
    assert len(children) == 6 and not [c for c in children if c.get("har.winner")]
    for child in children:
        steps = metric_steps(tmp_path, child["id"], "val/macro_f1")
        assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= 3
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        assert db.execute("select count(*) from registered_models").fetchone() == (0,)
        (simulated,) = {v for (v,) in db.execute("select value from params where key = 'simulated'")}
    assert simulated == "true"
    assert_optuna_matches_mlflow(tmp_path, "sim")
    assert not (tmp_path / "runs" / "sim" / "metrics.json").exists()
    spans = trial_spans(tmp_path, "sim", parents[0]["har.study_run"])
    assert {p: len(s) for p, s in spans.items()} == {"all": 3, "acc": 3}
    assert max(end for _, end in spans["all"]) <= min(start for start, _ in spans["acc"]), spans
    bad = tune(tmp_path, "--study", "sim", "--simulate", "missing.json")
    assert bad.returncode == 2 and "--simulate missing.json" in one_line_error(bad)


@pytest.mark.slow
def test_predict_with_the_registered_champion(project: Path, first_study, tmp_path: Path) -> None:
    """`har predict --model NAME@champion`: the registry's checkpoint, downloaded from MLflow, applied to a
    raw recording; the same predictions as the checkpoint folder itself."""
    assert first_study.returncode == 0, first_study.stderr[-3000:]
    from har.data.formats import uci_hapt

    acc, gyro = uci_hapt.read_experiment(uci_hapt.raw_dir(project / "data" / "raw" / DATASET), 1, 1)
    table = pd.DataFrame(
        np.hstack([acc, gyro]), columns=["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    )
    table.insert(0, "time", np.arange(len(table)) / 50.0)
    table.to_csv(project / "walk.csv", index=False)
    cache = {"HAR_CACHE": str(tmp_path / "cache")}
    proc = har("predict", "--model", "har-uci_hapt_sample-all@champion", "--input", "walk.csv", "--output",
               "walk.champion.csv", cwd=project, extra_env=cache)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "cache" / "models" / "har-uci_hapt_sample-all" / "1" / "checkpoint"
    info = json.loads((folder / "checkpoint.json").read_text())
    assert (
        info["study"] == "tiny"
        and info["dataset"] == DATASET
        and info["reader_options"]["median_kernel"] == 3
    )
    direct = har("predict", "--model", str(folder), "--input", "walk.csv", "--output", "walk.folder.csv",
                 cwd=project)  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    by_registry = pd.read_csv(project / "walk.champion.csv")
    by_folder = pd.read_csv(project / "walk.folder.csv")
    assert len(by_registry) == (len(table) - 128) // 64 + 1
    pd.testing.assert_frame_equal(by_registry, by_folder)
    # the tracking URI from the environment, from another working directory
    elsewhere = har("predict", "--model", "har-uci_hapt_sample-all/1", "--input", str(project / "walk.csv"),
                    "--output", str(tmp_path / "w.json"), cwd=tmp_path,
                    extra_env={**cache, "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db"})  # fmt: skip
    assert elsewhere.returncode == 0, elsewhere.stderr
    missing = har(
        "predict", "--model", "har-uci_hapt_sample-emg@champion", "--input", "walk.csv", cwd=project
    )
    assert missing.returncode == 2 and "not in the registry" in missing.stderr


@pytest.mark.slow
def test_a_worse_study_with_failing_trials_keeps_the_champion_and_promote_moves_it(
    project: Path, first_study
) -> None:
    """A second study on the same data: its trials that raise or diverge are recorded as failed and the
    study finishes; its (worse) winner is registered but does not take the champion alias."""
    assert first_study.returncode == 0, first_study.stderr[-3000:]
    # lr 1e-30 leaves the initial weights unchanged: a chance-level model, surely worse on the same test
    # split; layers 0 makes the model builder raise; l2 1e300 makes the loss infinite (training diverged).
    # Seed 2 draws (layers, l2) = (1, 0), (1, 1e300), (1, 0), (0, 1e300): both failures and successes.
    worse = {
        **TINY,
        "models": {"lstm": {"space": {"hidden": 8, "layers": {"choice": [1, 0]}}}},
        "train": {"lr": 1.0e-30, "l2": {"choice": [0.0, 1.0e300]}},
        "budget": {**TINY["budget"], "trials": 4, "max_epochs": 1},
        "seed": 2,
    }
    write_study(project, "worse", worse)
    proc = tune(project, "--study", "worse")
    assert proc.returncode == 0, proc.stderr[-3000:]
    children = [r for r in runs(project, "worse") if r.get("har.role") == "trial"]
    assert len(children) == 4 and not [r for r in children if r["status"] == "RUNNING"]
    failed = [c for c in children if c["status"] == "FAILED"]
    errors = " ".join(c.get("har.error", "") for c in failed)
    assert "num_layers must be greater than zero" in errors  # the raising trial
    assert "training diverged" in errors  # the infinite-loss trial
    assert all(c["har.outcome"] == "failed" for c in failed)
    assert sum(c["status"] == "FINISHED" for c in children) == 2
    assert_optuna_matches_mlflow(project, "worse")  # failed trials are FAIL in Optuna too
    assert re.search(r"\[all\] 4/4 trials done: 0 running, 2 finished, 0 pruned, 2 failed", proc.stdout)
    alias, versions = champion(project, "har-uci_hapt_sample-all")
    assert alias == "1" and sorted(versions) == ["1", "2"]
    assert "does not beat champion v1" in proc.stdout
    proc = har("models", "promote", "har-uci_hapt_sample-all", "2", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert champion(project, "har-uci_hapt_sample-all")[0] == "2"
    bad = har("models", "promote", "har-uci_hapt_sample-all", "9", cwd=project)
    assert bad.returncode == 2 and "no version '9'" in one_line_error(bad)
    har("models", "promote", "har-uci_hapt_sample-all", "1", cwd=project)


@pytest.mark.slow
def test_progress_report_dvc_plot_data_and_the_mlflow_ui(project: Path, first_study) -> None:
    """What people look at: plain progress lines off a TTY, meaningful run names, `har report`, the DVC
    plot data, and the study in the real MLflow UI in headless Chromium (screenshots: test-artifacts/)."""
    from har.report.render import experiment_url, model_url
    from tests.browser import browser_page, har_ui, screenshot

    assert first_study.returncode == 0, first_study.stderr[-3000:]
    out = first_study.stdout
    assert re.search(r"trial \w+ started: lstm hidden=\d+ lr=[0-9.e-]+", out), out[-2000:]
    assert re.search(r"\[all\] 4/4 trials done: 0 running, \d finished, \d pruned, 0 failed \| best val/macro_f1 "
                     r"[0-9.]+ \(lstm hidden=\d+ lr=[0-9.e-]+, trial \w+\) \| \d+m\d\ds elapsed", out), out[-2000:]  # fmt: skip
    children = [r for r in runs(project, "tiny") if r.get("har.role") == "trial"]
    for child in children:  # model and drawn values, then the trial id
        assert re.fullmatch(
            rf"lstm hidden=\d+ lr=[0-9.e-]+ \[{child['ray.trial_id']}\]", child["mlflow.runName"]
        )
    # DVC plot data of the winner
    plots = project / "runs" / "tiny" / "plots"
    loss = pd.read_csv(plots / "loss" / "all.csv")
    assert list(loss.columns) == ["epoch", "train_loss", "val_loss"] and 1 <= len(loss) <= 3
    confusion = pd.read_csv(plots / "confusion" / "all.csv")
    winner = next(c for c in children if c.get("har.winner") == "true")
    with sqlite3.connect(project / "mlflow.db") as db:
        (accuracy,) = db.execute(
            "select value from metrics where run_uuid = ? and key = 'test/accuracy'", (winner["id"],)
        ).fetchone()
    assert (confusion["actual"] == confusion["predicted"]).mean() == pytest.approx(accuracy)
    # the report
    proc = har("report", "--study", "tiny", cwd=project)
    assert proc.returncode == 0, proc.stderr
    folder = project / "reports" / "tiny"
    md = (folder / "index.md").read_text()
    assert (
        f"[har-uci_hapt_sample-all]({model_url('http://127.0.0.1:5000', 'har-uci_hapt_sample-all')}) | v1 | lstm"
        in md
    )
    assert "**(champion)**" in md and f"/runs/{winner['id']}?workflowType=machine_learning)" in md
    for name in ("permutations", "pareto", "all-confusion_matrix", "all-learning_curves"):
        assert (folder / "img" / f"{name}.png").stat().st_size > 5_000, name
    assert 'src="img/pareto.png"' in (folder / "index.html").read_text()
    # the MLflow UI: the study's runs (children under their parent) and the champion alias
    experiment = next(r for r in runs(project, "tiny") if r.get("har.role") == "parent")
    with sqlite3.connect(project / "mlflow.db") as db:
        (experiment_id,) = db.execute("select experiment_id from experiments where name = 'tiny'").fetchone()
    # `har ui`, as a user opens it: the study link it prints lands on the runs (model-training view)
    with har_ui(f"sqlite:///{project / 'mlflow.db'}", project, "tiny") as (url, link), browser_page() as page:
        assert link == experiment_url(url, str(experiment_id))
        page.goto(link)
        parent_row = page.get_by_role("row").filter(has_text=experiment["mlflow.runName"])
        parent_row.first.wait_for()
        parent_row.first.locator('button[data-component-id*="runnamecellrenderer"]').click()  # expand
        for child in children:
            page.get_by_text(child["mlflow.runName"]).first.wait_for()
        page.get_by_text(f"{DATASET}/all").first.wait_for()  # the Dataset column: what each trial saw
        assert "Token Usage" not in page.inner_text("body")
        screenshot(page, "mlflow-ui-study-runs")
        # the compare view: two trials side by side, every per-epoch metric comparable
        pair = json.dumps([c["id"] for c in children[:2]], separators=(",", ":"))
        page.goto(
            f"{url}/#/compare-runs?runs={quote(pair)}&experiments={quote(json.dumps([str(experiment_id)]))}"
        )
        page.get_by_text("Comparing 2 Runs").first.wait_for()
        page.get_by_text("latency_ms").first.wait_for()
        shown = page.inner_text("body")
        assert all(
            key in shown for key in ("val/macro_f1", "best/val/accuracy", "parameters", "hparams.hidden")
        )
        screenshot(page, "mlflow-ui-compare")
        page.goto(f"{url}/#/models")
        row = page.get_by_role("row").filter(has_text="har-uci_hapt_sample-all")
        row.first.wait_for()
        assert "champion" in row.first.inner_text() and "Version 1" in row.first.inner_text()
        screenshot(page, "mlflow-ui-registry")


def kill_driver_then_resume(project: Path, study: str, *args: str) -> None:
    """SIGKILL `har tune` mid-study on the cluster given in ``args`` (--address ...), which keeps running,
    then `har tune --resume`: nothing lost, nothing twice, the winner registered."""
    body = {**TINY, "permutations": ["all", "acc"],
            "budget": {**TINY["budget"], "trials": 3, "max_epochs": 4, "grace_period": 4}}  # fmt: skip
    write_study(project, study, body)
    proc = subprocess.Popen(
        [str(BIN / "har"), "tune", "--study", study, "--num-cpus", "2", *args],
        cwd=project, env={**env(), **RAY_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 300
    try:
        while time.time() < deadline:  # kill once some trials finished and others are mid-training
            time.sleep(0.3)
            if (project / "mlflow.db").exists():
                children = [r for r in runs(project, study) if r.get("har.role") == "trial"]
                if sum(r["status"] == "FINISHED" for r in children) >= 1 and any(
                    r["status"] == "RUNNING" for r in children
                ):
                    break
        else:
            pytest.fail("the study did not reach the kill point")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = runs(project, study)
    assert any(r["status"] == "RUNNING" for r in before)  # the kill left open runs behind
    finished_before = {
        r["ray.trial_id"] for r in before if r.get("har.role") == "trial" and r["status"] == "FINISHED"
    }
    # a trial the driver created just before dying, after Tune's last snapshot: Tune will not know it
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    parent = next(r for r in before if r.get("har.role") == "parent")
    ghost = client.create_run(
        client.get_experiment_by_name(study).experiment_id,
        tags={"mlflow.parentRunId": parent["id"], "har.role": "trial", "ray.trial_id": "ghost000"},
    ).info.run_id
    import optuna  # and its Optuna trial, asked for but never told

    search = f"{study}/{parent['har.study_run']}/{parent['har.permutation']}"
    optuna.load_study(study_name=search, storage=f"sqlite:///{project}/optuna.db").ask().set_user_attr(
        "ray_trial_id", "ghost000"
    )
    resumed = tune(project, "--study", study, "--resume", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    orphan = client.get_run(ghost)
    assert orphan.info.lifecycle_stage == "deleted" and orphan.data.tags["har.outcome"].startswith("orphaned")
    after = runs(project, study)
    children = [r for r in after if r.get("har.role") == "trial"]
    parents = [r for r in after if r.get("har.role") == "parent"]
    assert sorted(p["har.permutation"] for p in parents) == ["acc", "all"]
    assert len(children) == 6 and len({c["ray.trial_id"] for c in children}) == 6  # none lost, none twice
    for parent in parents:  # each permutation its budget
        assert len([c for c in children if c["mlflow.parentRunId"] == parent["id"]]) == 3
    assert finished_before <= {c["ray.trial_id"] for c in children}
    assert not [r for r in after if r["status"] == "RUNNING"]
    for child in children:
        steps = metric_steps(project, child["id"], "val/loss")
        assert steps == list(range(1, len(steps) + 1)), steps  # resumed trials did not log an epoch twice
    for perm in ("all", "acc"):  # the resumed study registered each permutation's winner
        assert champion(project, f"har-uci_hapt_sample-{perm}")[0]
    assert_optuna_matches_mlflow(project, study)  # the resumed searchers wrote on in the same Optuna studies
    trials = [t for ts in optuna_studies(project, study).values() for t in ts]
    assert not [t for t in trials if t.state.name == "RUNNING"]
    (ghost_trial,) = [t for t in trials if t.user_attrs.get("ray_trial_id") == "ghost000"]
    assert ghost_trial.state.name == "FAIL" and ghost_trial.user_attrs["har_outcome"].startswith("orphaned")
    again = tune(project, "--study", study, "--resume", *args)
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_objective_search_and_pareto_front(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from har.tune.search import searcher
    from har.tune.winner import best_result, pareto_front

    (tmp_path / "m.yaml").write_text(yaml.safe_dump({**TINY, "objectives": [{"metric": "latency_ms"}]}))
    spec = load_study(str(tmp_path / "m.yaml"), REPO / "params.yaml")
    optuna_search = searcher(spec)
    assert optuna_search.metric == ["best/val/macro_f1", "latency_ms"] and optuna_search.mode == [
        "max",
        "min",
    ]
    points = [(0.90, 5.0), (0.85, 1.0), (0.80, 2.0), (0.95, 9.0), (0.90, 6.0)]
    results = [
        SimpleNamespace(
            metrics={"best/val/macro_f1": f1, "latency_ms": ms, "trial_id": str(i)}, config={"model": "lstm"}
        )
        for i, (f1, ms) in enumerate(points)
    ]
    front = pareto_front(spec, results)
    # (0.80, 2.0) is dominated by (0.85, 1.0); (0.90, 6.0) by (0.90, 5.0)
    assert [(p["val/macro_f1"], p["latency_ms"]) for p in front] == [(0.85, 1.0), (0.90, 5.0), (0.95, 9.0)]
    assert best_result(spec, results).metrics["trial_id"] == "3"  # no `within`: the best score wins

    # within: 0.05 of the best (0.95) admits 0.90 at 5.0 and 6.0 ms: the faster one is the champion
    (tmp_path / "w.yaml").write_text(
        yaml.safe_dump({**TINY, "objectives": [{"metric": "latency_ms", "within": 0.05}]})
    )
    assert (
        best_result(load_study(str(tmp_path / "w.yaml"), REPO / "params.yaml"), results).metrics["trial_id"]
        == "0"
    )
    (tmp_path / "z.yaml").write_text(
        yaml.safe_dump({**TINY, "objectives": [{"metric": "latency_ms", "within": 0}]})
    )
    assert (
        best_result(load_study(str(tmp_path / "z.yaml"), REPO / "params.yaml"), results).metrics["trial_id"]
        == "3"
    )


def test_warm_start_enqueues_the_best_fitting_configurations_of_an_earlier_search(tmp_path: Path) -> None:
    """Issue 21: `search.warm_start` reads the newest earlier search of the named study and permutation
    from the Optuna storage; its best complete trials that fit this space become the first trials, in
    order of their value; one outside the space is skipped with a note; pruned trials are not taken."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from har.tune.optuna_store import open_storage
    from har.tune.search import searcher
    from har.tune.warm_start import warm_start_points

    body = {**TINY, "search": {"warm_start": {"from": "old/acc", "top": 2}}}
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(body))
    spec = load_study(str(tmp_path / "new.yaml"), REPO / "params.yaml")
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    space = {
        "model": CategoricalDistribution(["lstm"]),
        "lstm.hidden": IntDistribution(4, 20),
        "train.lr": FloatDistribution(1e-4, 1e-1, log=True),
    }

    def search(name: str, rows: list[tuple[float | None, int, float]]) -> None:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        for value, hidden, lr in rows:
            state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.PRUNED
            params = {"model": "lstm", "lstm.hidden": hidden, "train.lr": lr}
            study.add_trial(
                optuna.trial.create_trial(params=params, distributions=space, value=value, state=state)
            )

    search("old/20260101-000000/acc", [(0.99, 7, 2e-3)])  # an older run of the same search: not read
    search("old/20260102-000000/all", [(0.99, 8, 2e-3)])  # another permutation: not read
    # hidden 16 is outside this space (6-12); the pruned trial has no value; the top two that fit remain
    search("old/20260102-000000/acc", [(0.90, 8, 2e-3), (0.95, 16, 3e-3), (0.80, 7, 5e-3), (0.85, 9, 4e-3),
                                       (None, 10, 1e-3)])  # fmt: skip
    notes: list[str] = []
    first = warm_start_points(spec, storage, "all", say=notes.append)
    assert first == [
        {"model": "lstm", "lstm.hidden": 8, "train.lr": 2e-3},
        {"model": "lstm", "lstm.hidden": 9, "train.lr": 4e-3},
    ]
    assert any("skipped" in n and "lstm.hidden" in n for n in notes) and "2 configuration(s)" in notes[-1]
    search_alg = searcher(spec, storage, "new/20260103-000000/all", first)
    drawn = [search_alg.suggest(f"t{i}") for i in range(3)]
    drawn = [{k: v for k, v in config.items() if k in first[0]} for config in drawn]  # constants aside
    assert drawn[:2] == first and drawn[2] not in first  # the first trials run them, in order
    cold = {**TINY, "search": {"warm_start": {"from": "missing"}}}
    (tmp_path / "cold.yaml").write_text(yaml.safe_dump(cold))
    notes.clear()
    assert warm_start_points(load_study(str(tmp_path / "cold.yaml"), REPO / "params.yaml"), storage, "all",
                             say=notes.append) == []  # fmt: skip
    assert "starting cold" in notes[0]


@pytest.mark.slow
def test_an_image_study_tunes_registers_and_predicts(tmp_path: Path) -> None:
    """Issue 7: an image study runs the same `har tune` path (Ray Tune + Optuna, MLflow, registry):
    two backbones on synthetic shapes, the winner registered as har-shapes-rgb@champion, and
    `har predict` with that reference labels an image."""
    from tests.synthetic_media import draw
    from tests.test_images import image_project

    root = image_project(tmp_path / "project")
    for step in ("fetch", "prepare"):
        assert har("data", step, "shapes", cwd=root).returncode == 0
    (root / "pipelines").mkdir()
    write_study(root, "shapes", {
        "dataset": "shapes", "permutations": ["rgb"], "metric": "val/accuracy",
        "models": {"resnet18": {"space": {"fine_tune": True}}, "mobilenet_v3_small": {}},
        "train": {"lr": {"loguniform": [1.0e-3, 5.0e-3]}, "batch_size": 16, "image_augment": "flip",
                  "schedule": {"choice": ["step", "cosine"]}, "step_epochs": 3},
        "budget": {"trials": 2, "max_epochs": 4, "grace_period": 4, "retries": 0},
        "resources": {"cpu": 1}, "concurrency": 2, "seed": 0,
    })  # fmt: skip
    proc = tune(root, "--study", "shapes")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "training from scratch" in proc.stdout and "stratified split of prepare" in proc.stdout
    study_runs = runs(root, "shapes")
    assert len([r for r in study_runs if r.get("har.role") == "parent"]) == 1
    children = [r for r in study_runs if "ray.trial_id" in r]
    assert len(children) == 2 and all(r["status"] == "FINISHED" for r in children)
    assert {r["har.model"] for r in children} <= {"resnet18", "mobilenet_v3_small"}
    alias, versions = champion(root, "har-shapes-rgb")
    assert alias == "1" and versions == ["1"]
    metrics = json.loads((root / "runs" / "shapes" / "metrics.json").read_text())["permutations"]["rgb"]
    assert metrics["test/accuracy"] > 0.5, metrics  # 4 epochs from scratch: well above chance (1/3)
    draw("red circle", np.random.default_rng(3), 48).save(tmp_path / "one.png")
    pred = har("predict", "--model", "har-shapes-rgb@champion", "--input", str(tmp_path / "one.png"),
               cwd=root, extra_env={"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"})  # fmt: skip
    assert pred.returncode == 0, pred.stderr
    row = pd.read_csv(tmp_path / "one.predictions.csv").iloc[0]
    assert row["label"] in ("red circle", "green square", "blue triangle") and 0 < row["probability"] <= 1
    report = har("report", "--study", "shapes", cwd=root)
    assert report.returncode == 0, report.stderr
    text = (root / "reports" / "shapes" / "index.md").read_text()
    assert "the held-out test images" in text and "test subjects" not in text
