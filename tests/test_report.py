"""`har report` on a real MLflow SQLite store written through MlflowClient the way `har tune` writes it
(no Ray: the end-to-end report of a real study is in tests/test_tune.py): repeats grouped by
configuration (mean +- std over seeds), ranking, winners, champion, figures, bad input."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from har.report.data import collect
from tests.cli_helpers import har, har_in_process, one_line_error


@pytest.fixture(scope="module")
def study_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _study(tmp_path_factory.mktemp("report"))


def _study(root: Path) -> str:
    """Two study runs (seeds 0 and 1) of one permutation; the same two configurations in each."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("demo", tags={"har.kind": "study"})
    scores = {("lstm", 0): 0.80, ("lstm", 1): 0.84, ("cnn_lstm", 0): 0.70, ("cnn_lstm", 1): 0.50}
    for seed in (0, 1):
        parent = client.create_run(exp, run_name=f"acc (run{seed})", tags={
            "har.role": "parent", "har.study": "demo", "har.study_run": f"run{seed}", "har.permutation": "acc"})  # fmt: skip
        client.log_param(parent.info.run_id, "dataset", "uci_hapt_sample")
        for model in ("lstm", "cnn_lstm"):
            child = client.create_run(exp, run_name=f"{model} hidden=12 [t{seed}{model}]", tags={
                "mlflow.parentRunId": parent.info.run_id, "har.role": "trial", "har.model": model,
                "har.outcome": "completed", "har.winner": "true" if model == "lstm" else "false"})  # fmt: skip
            run_id = child.info.run_id
            for key, value in {
                "model": model,
                "hparams.hidden": 12,
                "train.seed": seed,
                "params_hash": seed,
            }.items():
                client.log_param(run_id, key, value)
            value = scores[(model, seed)]
            metrics = {"best/val/macro_f1": value, "best/val/accuracy": value + 0.01, "latency_ms": 1.5,
                       "parameters": 1000.0, "time_total_s": 20.0}  # fmt: skip
            if model == "lstm":
                metrics.update({"test/accuracy": value - 0.05, "test/macro_f1": value - 0.06})
            for key, v in metrics.items():
                client.log_metric(run_id, key, v, step=3)
            client.set_terminated(run_id, "FINISHED")
        client.set_terminated(parent.info.run_id, "FINISHED")
    failed = client.create_run(exp, tags={"mlflow.parentRunId": parent.info.run_id, "har.role": "trial",
                                          "har.outcome": "failed", "har.model": "lstm"})  # fmt: skip
    client.set_terminated(failed.info.run_id, "FAILED")
    return uri


def test_repeats_are_grouped_ranked_and_averaged(study_uri: str) -> None:
    uri = study_uri
    report = collect(MlflowClient(uri), "demo", uri)
    assert report.study_runs == ["run0", "run1"] and report.dataset == "uci_hapt_sample"
    (perm,) = report.permutations
    assert perm.counts() == {"trials": 5, "finished": 4, "pruned": 0, "failed": 1}
    assert [e.best.model for e in perm.entries] == ["lstm", "cnn_lstm"]  # ranked by mean val macro F1
    lstm, cnn = perm.entries
    assert len(lstm.trials) == 2 and lstm.stat("best/val/macro_f1").values == pytest.approx([0.84, 0.80])
    assert cnn.stat("best/val/macro_f1").std == pytest.approx(statistics.stdev([0.7, 0.5]))
    assert lstm.stat("test/accuracy").text() == f"{0.77:.4f} ± {statistics.stdev([0.79, 0.75]):.4f}"
    assert [w.study_run for w in perm.winners] == ["run1", "run0"] and perm.champion is None
    only = collect(MlflowClient(uri), "demo", uri, study_run="run0")
    assert [len(e.trials) for e in only.permutations[0].entries] == [1, 1]


def test_report_files_and_bad_input(study_uri: str, tmp_path: Path) -> None:
    uri = study_uri
    proc = har(
        "report", "--study", "demo", "--tracking-uri", uri, "--out", str(tmp_path / "reports"), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "reports" / "demo"
    md, html = (folder / "index.md").read_text(), (folder / "index.html").read_text()
    for text in (md, html):
        assert "lstm hidden=12" in text and "0.8200 ± 0.0283" in text  # mean +- std over the two seeds
        assert "http://127.0.0.1:5000/#/experiments/" in text and "none registered" in text
    assert (folder / "img" / "permutations.png").stat().st_size > 10_000
    assert (folder / "img" / "pareto.png").stat().st_size > 10_000
    assert "`acc`: lstm hidden=12, val/macro_f1 0.8400 (best 0.8400), **1.500 ms** per window" in md
    assert "<b>1.500 ms</b> per window" in html  # the fastest trial within half a point of the best
    assert "[t0lstm]" not in md  # the trial id suffix is dropped from labels
    # bad input: one line, exit 2, the previous report left as it was
    before = md
    # the console script where the command opens the database (it sets MLflow's process-wide tracking
    # URI), this process where it fails before that
    for run, args, expected in (
        (har, ["--study", "nope"], "no MLflow experiment"),
        (
            har,
            ["--study", "demo", "--study-run", "zzz"],
            "--study-run zzz: not a run of study 'demo' (known: run0, run1)",
        ),
        (har_in_process, ["--study", "demo", "--metric", "test/accuracy"], "--metric test/accuracy"),
    ):
        bad = run("report", *args, "--tracking-uri", uri, "--out", str(tmp_path / "reports"), cwd=tmp_path)
        assert bad.returncode == 2 and expected in one_line_error(bad)
    missing = har_in_process(
        "report", "--study", "demo", "--tracking-uri", f"sqlite:///{tmp_path}/none.db", cwd=tmp_path
    )
    assert missing.returncode == 2 and "no MLflow database" in one_line_error(missing)
    assert (folder / "index.md").read_text() == before
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["demo"]  # no staging folders left
