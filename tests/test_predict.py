"""``har predict`` on real data: a small model trained on the prepared uci_hapt_sample classifies a raw
UCI HAPT experiment exactly as it classifies that experiment's prepared windows; derived-channel input,
JSON output, rate / channel / length / NaN / model errors (exit 2, one line), atomic output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from har.data.fetch import fetch
from har.data.formats import uci_hapt
from har.data.prepare import prepare, reader_options
from har.data.prepared import load_prepared
from har.data.registry import UCI_CHANNELS, resolve
from har.data.windows import UNLABELLED, window_starts
from har.errors import BadInput
from har.metrics import softmax
from har.predict.model import resolve_model
from har.predict.recording import RAW_UCI_HAPT, derive_uci_hapt, read_table, recording_signals
from har.predict.sensors import predict_file
from har.train.checkpoint import save_checkpoint
from har.train.loop import predict_logits
from har.train.run import RunSpec, checkpoint_info, run
from tests.cli_helpers import REPO, har, har_in_process, one_line_error

DATASET = "uci_hapt_sample"
EXP, USER = 1, 1  # experiment 1 of volunteer 1: 20598 samples, 175 prepared windows
SMALL = {"widths": [8, 16, 16], "kernels": [7, 5, 3]}  # a fast resnet1d whose predictions vary
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def invoke(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str):
    """``har ARGS`` in this process (torch is already loaded): a CliRunner result."""
    from typer.testing import CliRunner

    from har.cli import app

    monkeypatch.chdir(project)
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch project: params.yaml, uci_hapt_sample fetched from the bundled sample and prepared."""
    root = tmp_path_factory.mktemp("predict")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    spec = resolve(DATASET, root / "params.yaml")
    raw = fetch(spec, root / "data" / "raw", repo_root=REPO, show_progress=False)
    prepare(spec, raw, root / "data" / "prepared", root / "params.yaml")
    return root


@pytest.fixture(scope="module")
def checkpoint(project: Path) -> Path:
    spec = RunSpec(
        dataset=DATASET, model="resnet1d", hparams=dict(SMALL), train={"max_epochs": 3, "num_threads": 1}
    )
    result = run(spec, project / "data" / "prepared")
    return save_checkpoint(project / "ckpt", result.model, checkpoint_info(spec, result))


@pytest.fixture(scope="module")
def raw_experiment(project: Path) -> tuple[np.ndarray, np.ndarray]:
    """acc (g) and gyro (rad/s) [T, 3] of experiment 1, parsed from the fetched raw files."""
    return uci_hapt.read_experiment(uci_hapt.raw_dir(project / "data" / "raw" / DATASET), EXP, USER)


@pytest.fixture(scope="module")
def recording(project: Path, raw_experiment: tuple[np.ndarray, np.ndarray]) -> Path:
    """The raw experiment as a user's recording: time (s) + acc_x..gyro_z, full float precision."""
    acc, gyro = raw_experiment
    table = pd.DataFrame(np.hstack([acc, gyro]), columns=RAW_UCI_HAPT)
    table.insert(0, "time", np.arange(len(table)) / 50.0)
    path = project / "walk.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def prepared_windows(project: Path) -> tuple[np.ndarray, np.ndarray]:
    """Start samples and prepared X of experiment 1, as ``har data prepare`` cut them."""
    folder = uci_hapt.raw_dir(project / "data" / "raw" / DATASET)
    labels = uci_hapt.read_labels(folder)
    n_samples = len(uci_hapt.read_experiment(folder, EXP, USER)[0])
    per_sample = np.full(n_samples, UNLABELLED, dtype=np.int64)
    for _, _, activity, start, end in labels[labels[:, 0] == EXP]:
        if activity <= 6:
            per_sample[start - 1 : end] = activity - 1
    starts, y = window_starts(per_sample, resolve(DATASET, project / "params.yaml").window)
    data = load_prepared(project / "data" / "prepared" / DATASET, mmap=False)
    n = len(starts)  # experiment 1 is the first recording: its windows come first
    np.testing.assert_array_equal(data.y[:n], y)
    assert (data.subject[:n] == USER).all() and n == 175
    return starts, data.X[:n]


@pytest.fixture(scope="module")
def step4(project: Path, checkpoint: Path, recording: Path):
    """predict_file with step 4 on the raw recording (CSV output)."""
    out = project / "walk.step4.csv"
    return predict_file(str(checkpoint), recording, out, step=4, params_path=project / "params.yaml"), out


@pytest.fixture(scope="module")
def cli_default(project: Path, checkpoint: Path, recording: Path):
    """``har predict --model ckpt --input walk.csv`` (in this process): the default output and step."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        result = invoke(project, monkeypatch, "predict", "--model", "ckpt", "--input", "walk.csv")
    assert result.exit_code == 0, result.output
    return result, pd.read_csv(project / "walk.predictions.csv")


# ---------------------------------------------------------------- raw input reproduces prepare


def test_raw_preprocessing_reproduces_the_prepared_windows(
    project: Path, checkpoint: Path, recording: Path, prepared_windows: tuple[np.ndarray, np.ndarray]
) -> None:
    info = json.loads((checkpoint / "checkpoint.json").read_text())
    signals = recording_signals(read_table(recording), info, recording, params_path=project / "params.yaml")
    assert signals.form == "raw uci_hapt" and signals.values.shape == (20598, 9)
    assert "from column 'time'" in signals.rate_check
    starts, X = prepared_windows
    ours = np.stack([signals.values[s : s + 128] for s in starts]).astype(np.float32)
    np.testing.assert_array_equal(ours, X)  # bit for bit: same parse, same filters, same float32 cast


def test_raw_recording_predictions_match_the_prepared_windows(
    checkpoint: Path, step4, prepared_windows: tuple[np.ndarray, np.ndarray]
) -> None:
    result, out = step4
    pred = result.predictions
    assert result.signals.form == "raw uci_hapt"
    assert len(pred.starts) == (20598 - 128) // 4 + 1
    np.testing.assert_allclose(pred.probabilities.sum(axis=1), 1.0, atol=1e-9)

    # the model on the prepared windows of the same experiment, normalised as at training time
    from har.train.checkpoint import load_checkpoint

    model, info = load_checkpoint(checkpoint)
    starts, X = prepared_windows
    mean = np.asarray(info["normalization"]["mean"], dtype=np.float32)
    std = np.asarray(info["normalization"]["std"], dtype=np.float32)
    logits = predict_logits(model, ((X - mean) / std).astype(np.float32))
    aligned = starts % 4 == 0
    assert aligned.sum() >= 30, "too few prepared windows start on the step-4 grid"
    ours = np.searchsorted(pred.starts, starts[aligned])
    np.testing.assert_array_equal(pred.starts[ours], starts[aligned])
    np.testing.assert_array_equal(pred.labels[ours], logits[aligned].argmax(axis=1))
    np.testing.assert_allclose(pred.probabilities[ours], softmax(logits[aligned]), atol=1e-6)
    assert len(set(pred.labels.tolist())) >= 3, "the model should not predict one class only"

    # the file: one row per window, the CSV columns in order, probabilities per class summing to 1
    table = pd.read_csv(out)
    classes = info["classes"]
    assert list(table.columns) == ["window", "start", "end", "start_s", "label", *[f"p_{c}" for c in classes]]
    assert len(table) == len(pred.starts)
    np.testing.assert_array_equal(table["start"], pred.starts)
    np.testing.assert_array_equal(table["end"] - table["start"], 128)
    np.testing.assert_allclose(table["start_s"], pred.starts / 50.0)
    np.testing.assert_allclose(table[[f"p_{c}" for c in classes]].sum(axis=1), 1.0, atol=1e-5)
    assert table["label"].tolist() == [classes[k] for k in pred.labels]


def test_cli_predicts_every_window_of_a_raw_recording(checkpoint: Path, cli_default, step4) -> None:
    result, table = cli_default  # written to the default output, walk.predictions.csv
    n = (20598 - 128) // 64 + 1
    assert len(table) == n and table["window"].tolist() == list(range(n))
    assert table["start"].tolist() == list(range(0, 64 * n, 64))
    classes = json.loads((checkpoint / "checkpoint.json").read_text())["classes"]
    assert set(table["label"]) <= set(classes)
    np.testing.assert_allclose(table[[f"p_{c}" for c in classes]].sum(axis=1), 1.0, atol=1e-5)
    assert f"{n} windows" in result.stdout and "predictions: walk.predictions.csv" in result.stdout
    for label, count in table["label"].value_counts().items():
        assert any(label in line and str(count) in line for line in result.stdout.splitlines())
    # the same windows as the step-4 run, which includes every 16th of its windows
    fine = pd.read_csv(step4[1]).set_index("start")
    assert table["label"].tolist() == fine.loc[table["start"], "label"].tolist()


def test_batch_one_on_one_thread_reports_the_per_window_latency(
    project: Path, checkpoint: Path, cli_default
) -> None:
    """Issue 23: the latency of live use, through `har predict` (batch 1, one CPU thread); same labels."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        result = invoke(project, monkeypatch, "predict", "--model", "ckpt", "--input", "walk.csv", "--output",
                        "walk.b1.csv", "--batch-size", "1", "--threads", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    match = re.search(
        r"inference: ([\d.]+) ms per window \((\d+) windows, batch 1, 1 thread\(s\), cpu\)", result.stdout
    )
    assert match and 0 < float(match.group(1)) < 1000 and int(match.group(2)) == len(cli_default[1])
    assert pd.read_csv(project / "walk.b1.csv")["label"].tolist() == cli_default[1]["label"].tolist()
    assert "batch 4096" in cli_default[0].stdout
    with pytest.MonkeyPatch.context() as monkeypatch:
        bad = invoke(
            project, monkeypatch, "predict", "--model", "ckpt", "--input", "walk.csv", "--batch-size", "0"
        )
    assert isinstance(bad.exception, BadInput) and "--batch-size 0: must be at least 1" in str(bad.exception)


# ---------------------------------------------------------------- the model's own channels, JSON, stdout


def test_derived_channels_parquet_json_and_rate_option(
    project: Path,
    checkpoint: Path,
    raw_experiment: tuple[np.ndarray, np.ndarray],
    cli_default,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = reader_options(resolve(DATASET, project / "params.yaml"))
    acc, gyro = raw_experiment
    derived = uci_hapt.preprocess(acc, gyro, 50.0, options)
    table = pd.DataFrame(derived, columns=UCI_CHANNELS)
    table["label"] = "unknown"  # other columns are ignored
    table.to_parquet(project / "derived.parquet")
    result = invoke(
        project,
        monkeypatch,
        "predict",
        "-m",
        "ckpt",
        "-i",
        "derived.parquet",
        "-o",
        "derived.json",
        "--rate",
        "50",
    )
    assert result.exit_code == 0, result.output
    assert "the model's channels" in result.stdout and "50 Hz from --rate" in result.stdout
    doc = json.loads((project / "derived.json").read_text())
    info = json.loads((checkpoint / "checkpoint.json").read_text())
    assert doc["model"] == "resnet1d" and doc["checkpoint"] == "ckpt" and doc["classes"] == info["classes"]
    assert doc["input_form"] == "channels" and doc["channels"] == UCI_CHANNELS and doc["window"] == 128
    assert doc["step"] == 64 and doc["rate_hz"] == 50 and doc["dataset"] == DATASET
    assert doc["reference"] == "ckpt" and doc["input"] == "derived.parquet" and doc["samples"] == 20598
    rows = doc["windows"]
    assert len(rows) == (20598 - 128) // 64 + 1
    first = rows[1]
    assert set(first) == {"window", "start", "end", "start_s", "label", *[f"p_{c}" for c in info["classes"]]}
    assert (first["window"], first["start"], first["end"], first["start_s"]) == (1, 64, 192, 1.28)
    for row in rows:
        assert sum(row[f"p_{c}"] for c in info["classes"]) == pytest.approx(1.0, abs=1e-5)
    # the same labels and probabilities as the raw recording (derived here with the same filters)
    from_raw = cli_default[1]
    assert [r["label"] for r in rows] == from_raw["label"].tolist()
    probs = np.array([[r[f"p_{c}"] for c in info["classes"]] for r in rows])
    np.testing.assert_allclose(probs, from_raw[[f"p_{c}" for c in info["classes"]]], atol=2e-6)


def test_adapt_predicts_with_the_recordings_own_batchnorm_statistics(
    project: Path, checkpoint: Path, step4, monkeypatch: pytest.MonkeyPatch
) -> None:
    from har.train.adapt import adapt_batchnorm
    from har.train.checkpoint import load_checkpoint

    result = invoke(project, monkeypatch, "predict", "-m", "ckpt", "-i", "walk.csv", "-o", "walk.adapted.json",
                    "--adapt")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "BatchNorm statistics adapted to this recording" in " ".join(result.stdout.split())
    doc = json.loads((project / "walk.adapted.json").read_text())
    assert doc["adapted"] is True and doc["step"] == 64
    # expected: the model adapted on every window of the recording (as the CLI derived them), then applied
    model, info = load_checkpoint(checkpoint)
    values = step4[0].signals.values.astype(np.float32)
    starts = np.array([row["start"] for row in doc["windows"]])
    mean = np.asarray(info["normalization"]["mean"], dtype=np.float32)
    std = np.asarray(info["normalization"]["std"], dtype=np.float32)
    X = ((np.stack([values[s : s + 128] for s in starts]) - mean) / std).astype(np.float32)
    expected = softmax(predict_logits(adapt_batchnorm(model, X), X))
    got = np.array([[row[f"p_{c}"] for c in info["classes"]] for row in doc["windows"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, softmax(predict_logits(model, X)), atol=1e-3)  # adaptation changed them


def test_stdout_output(
    project: Path, checkpoint: Path, recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(
        project, monkeypatch, "predict", "-m", "ckpt", "-i", "walk.csv", "-o", "-", "--step", "2000"
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("window,start,end,start_s,label,p_WALKING,")
    assert len(lines) == 1 + (20598 - 128) // 2000 + 1
    assert "predictions: stdout" in result.stderr and "11 windows" in result.stderr


def test_gyro_only_model_needs_only_the_gyro_columns(project: Path, recording: Path) -> None:
    info = {"dataset": DATASET, "channels": UCI_CHANNELS[6:], "window": 128, "rate_hz": 50}
    table = read_table(recording).drop(columns=["acc_x", "acc_y", "acc_z", "time"])
    signals = recording_signals(table, info, recording, params_path=project / "params.yaml")
    assert signals.form == "raw uci_hapt" and signals.time is None
    assert signals.rate_check.startswith("not checked: 50 Hz assumed")
    full = read_table(recording)
    options = reader_options(resolve(DATASET, project / "params.yaml"))
    everything = derive_uci_hapt({c: full[c].to_numpy() for c in RAW_UCI_HAPT}, UCI_CHANNELS, 50.0, options)
    np.testing.assert_array_equal(signals.values, everything[:, 6:])


# ---------------------------------------------------------------- errors: exit 2, one line, no output


def _variant(project: Path, recording: Path, name: str, change) -> Path:
    path = project / name
    change(pd.read_csv(recording)).to_csv(path, index=False)
    return path


def _set(column: str, row: int, value: object):
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table[column] = table[column].astype(object)
        table.loc[row, column] = value
        return table

    return change


def _clock(rate_hz: float):
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table["time"] = np.arange(len(table)) / rate_hz
        return table

    return change


CLI_CASES = {  # through the CLI's entry point (in this process): exit code 2 and one line on stderr
    "missing-channel": (
        lambda t: t.drop(columns=["gyro_z"]),
        ["channel 'gyro_z' is missing", "acc_x, acc_y"],
    ),
    "rate-from-time": (_clock(25.0), ["sampled at 25 Hz", "column 'time'", "expects 50 Hz", "resample"]),
    "too-short": (lambda t: t.head(100), ["100 samples", "shorter than one window of 128 samples"]),
    "nan": (_set("acc_y", 49, np.nan), ["column 'acc_y'", "missing value (NaN) in row 50"]),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_recordings_exit_2_with_one_line_and_no_output(
    project: Path, checkpoint: Path, recording: Path, case: str
) -> None:
    change, expected = CLI_CASES[case]
    path = _variant(project, recording, f"bad-{case}.csv", change)
    proc = har_in_process("predict", "-m", "ckpt", "-i", path.name, cwd=project)
    assert proc.returncode == 2, proc.stderr
    message = one_line_error(proc)
    assert message.startswith(f"error: {path.name}: ")
    for part in expected:
        assert part in message, message
    assert not (project / f"bad-{case}.predictions.csv").exists()
    assert not list(project.glob(f".bad-{case}*"))  # no temporary file left behind


def test_unknown_model_exits_2_and_keeps_an_earlier_output(project: Path, recording: Path) -> None:
    (project / "kept.csv").write_text("old\n")
    # the installed console script end to end (the other CLI cases run har.cli.main in this process)
    proc = har("predict", "-m", "runs/train/missing-model", "-i", "walk.csv", "-o", "kept.csv", cwd=project)
    assert proc.returncode == 2
    assert "--model runs/train/missing-model: no such checkpoint folder" in one_line_error(proc)
    assert (project / "kept.csv").read_text() == "old\n"


@pytest.fixture(scope="module")
def short(recording: Path) -> Path:
    """The first 1000 samples of the recording (15 windows, fast), for the in-process cases."""
    path = recording.with_name("walk.head.csv")
    pd.read_csv(recording).head(1000).to_csv(path, index=False)
    return path


API_CASES = {  # the same checks in this process: BadInput with a one-line message
    "rate-option": (
        lambda t: t.drop(columns=["time"]),
        {"rate": 100.0},
        "--rate 100 Hz, but the model expects 50 Hz",
    ),
    "rate-jitter-ok": (_clock(50.9), {}, None),  # within 2%
    "rate-over-2%": (_clock(51.2), {}, "sampled at 51.2 Hz"),
    "not-numeric": (
        _set("gyro_x", 9, "fast"),
        {},
        "column 'gyro_x' has the non-numeric value 'fast' in row 10",
    ),
    "infinite": (_set("acc_z", 0, np.inf), {}, "column 'acc_z' has the value inf in row 1"),
    "time-backwards": (lambda t: t.iloc[::-1], {}, "column 'time' does not increase at row 2"),
    "step-0": (lambda t: t, {"step": 0}, "--step 0: must be at least 1 sample"),
    "derived-partly": (
        lambda t: t.drop(columns=RAW_UCI_HAPT).assign(body_acc_x=0.0),
        {},
        "channel 'total_acc_x' is missing; the model needs the columns total_acc_x",
    ),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_bad_recordings_are_bad_input(project: Path, checkpoint: Path, short: Path, case: str) -> None:
    change, kwargs, expected = API_CASES[case]
    path = _variant(project, short, f"api-{case}.csv", change)
    target = project / f"api-{case}.json"
    if expected is None:
        predict_file(str(checkpoint), path, target, params_path=project / "params.yaml", **kwargs)
        assert target.is_file()
        return
    with pytest.raises(BadInput) as exc:
        predict_file(str(checkpoint), path, target, params_path=project / "params.yaml", **kwargs)
    assert expected in str(exc.value) and "\n" not in str(exc.value)
    assert not target.exists()


def test_bad_model_and_options_are_bad_input(project: Path, checkpoint: Path, recording: Path) -> None:
    (project / "kept.csv").write_text("old\n")
    walk = recording.read_bytes()
    ckpt = str(checkpoint)
    for ref, input_path, output, expected in (
        (str(recording), recording, "kept.csv", "a file, not a checkpoint folder"),
        (str(project / "data"), recording, "kept.csv", "data: not a har-lab checkpoint"),
        (ckpt, project / "nowhere.csv", "kept.csv", "nowhere.csv: no such file"),
        (ckpt, checkpoint / "checkpoint.json", "kept.csv", "unknown file type"),
        (ckpt, recording, "kept.txt", "kept.txt: unknown suffix '.txt'"),
        (ckpt, recording, str(recording), "is the input file"),
    ):
        with pytest.raises(BadInput) as exc:
            predict_file(ref, input_path, project / output, params_path=project / "params.yaml")
        assert expected in str(exc.value) and "\n" not in str(exc.value)
        assert (project / "kept.csv").read_text() == "old\n"  # an earlier output is untouched
    assert recording.read_bytes() == walk and not (project / "kept.txt").exists()


def test_failed_write_leaves_no_file(
    project: Path, checkpoint: Path, short: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self, handle, **kwargs):
        handle.write("window,start\n0,")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    target = project / "atomic" / "out.csv"
    with pytest.raises(OSError, match="disk full"):
        predict_file(str(checkpoint), short, target, params_path=project / "params.yaml")
    assert list(target.parent.iterdir()) == []


# ---------------------------------------------------------------- model references


def test_a_path_is_never_looked_up_in_the_registry(checkpoint: Path) -> None:
    """Registry references resolve for real in tests/test_tune.py (after a study registers a model)."""
    assert resolve_model(str(checkpoint), "unused") == checkpoint  # a folder needs no registry
    with pytest.raises(BadInput, match="no such checkpoint folder"):
        resolve_model("./runs/train/x", None)  # a path is never looked up in the registry


# ---------------------------------------------------------------- ensembles


def test_an_ensemble_averages_its_members_probabilities(
    project: Path, checkpoint: Path, recording: Path, step4, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RunSpec(dataset=DATASET, model="resnet1d", hparams=dict(SMALL),
                   train={"max_epochs": 2, "num_threads": 1, "seed": 1})  # fmt: skip
    result = run(spec, project / "data" / "prepared")
    other = save_checkpoint(project / "ckpt_seed1", result.model, checkpoint_info(spec, result))
    alone = predict_file(
        str(other), recording, project / "walk.seed1.csv", step=4, params_path=project / "params.yaml"
    )
    result = invoke(project, monkeypatch, "predict", "-m", "ckpt", "-m", "ckpt_seed1", "-i", "walk.csv",
                    "--step", "4", "-o", "walk.ensemble.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ensemble of resnet1d, resnet1d" in result.stdout
    doc = json.loads((project / "walk.ensemble.json").read_text())
    assert doc["members"] == ["ckpt", "ckpt_seed1"]
    classes = doc["classes"]
    probs = np.array([[w[f"p_{c}"] for c in classes] for w in doc["windows"]])
    first, second = step4[0].predictions.probabilities, alone.predictions.probabilities
    np.testing.assert_allclose(probs, (first + second) / 2, atol=2e-6)  # JSON keeps 6 decimals
    assert [w["label"] for w in doc["windows"]] == [classes[k] for k in ((first + second) / 2).argmax(axis=1)]
    assert (first.argmax(axis=1) != second.argmax(axis=1)).any()  # the members disagree somewhere


def test_an_ensemble_of_models_that_read_other_data_is_bad_input(
    project: Path, checkpoint: Path, recording: Path
) -> None:
    swapped = project / "ckpt_classes_swapped"
    shutil.copytree(checkpoint, swapped, dirs_exist_ok=True)
    info = json.loads((swapped / "checkpoint.json").read_text())
    (swapped / "checkpoint.json").write_text(json.dumps({**info, "classes": info["classes"][::-1]}))
    out = project / "never.csv"
    with pytest.raises(BadInput, match=r"does not match .*ckpt's classes"):
        predict_file(str(checkpoint), recording, out, checkpoint=checkpoint, members=[checkpoint, swapped],
                     params_path=project / "params.yaml")  # fmt: skip
    assert not out.exists()
