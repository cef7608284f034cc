"""Training on the real prepared uci_hapt_sample: data splits and normalisation, determinism, early
stopping, divergence, L2 / RMSProp, checkpoints, and the ``har train`` / ``evaluate`` / ``models zoo``
commands end to end."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from har.data.prepared import load_prepared
from har.data.splits import carve_validation
from har.errors import BadInput, HarError
from har.models import build, model_names
from har.train.averaging import exponential_average
from har.train.checkpoint import INFO, WEIGHTS, check_channels, load_checkpoint, save_checkpoint
from har.train.data import load_train_data
from har.train.dataset import TrainData
from har.train.loop import StopTraining, TrainConfig, _optimizer, evaluate, fit, predict_logits
from har.train.run import RunResult, RunSpec, checkpoint_info, resolve, run
from tests.cli_helpers import har, har_in_process, one_line_error, sample_project

DATASET = "uci_hapt_sample"
SMALL = {"hidden": 8, "layers": 1}  # a fast lstm
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # the CPU is shared: more threads make small LSTMs far slower


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch project with params.yaml, the bundled sample, and uci_hapt_sample fetched + prepared."""
    return sample_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def prepared(project: Path) -> Path:
    return project / "data" / "prepared"


@pytest.fixture(scope="module")
def data(prepared: Path) -> TrainData:
    return load_train_data(prepared, DATASET)


def small_spec(**train) -> RunSpec:
    return RunSpec(
        dataset=DATASET, model="lstm", hparams=dict(SMALL), train={"max_epochs": 2, "num_threads": 1, **train}
    )


@pytest.fixture(scope="module")
def small_run(data: TrainData) -> RunResult:
    return run(small_spec(seed=3), data=data)


# ---------------------------------------------------------------- validation carve (issue 24)


def _old_draw(subjects: list[int], fraction: float, seed: int) -> list[int]:
    count = min(len(subjects) - 1, max(1, round(fraction * len(subjects))))
    return sorted(int(s) for s in np.random.default_rng(seed).choice(subjects, size=count, replace=False))


def test_carve_keeps_the_seeded_draw_when_every_subject_did_every_class() -> None:
    subjects = [1, 3, 5, 6, 7, 8, 11, 14, 15, 16, 17, 19, 21, 22, 23, 25, 26, 27, 28, 29, 30]  # UCI HAR train
    carve = carve_validation({s: {0, 1, 2, 3, 4, 5} for s in subjects}, 0.2, 0)
    assert carve.subjects == _old_draw(subjects, 0.2, 0) == [8, 17, 21, 25] and carve.missing == []


@pytest.mark.parametrize("seed", range(6))
def test_carve_covers_every_class_when_each_subject_did_one(seed: int) -> None:
    classes_of = {s: {s % 4} for s in range(1, 9)}  # 8 subjects, one activity each, two per activity
    carve = carve_validation(classes_of, 0.2, seed)  # 0.2 of 8 would be 2 subjects: too few for 4 classes
    val_classes = set().union(*(classes_of[s] for s in carve.subjects))
    train_classes = set().union(*(classes_of[s] for s in set(classes_of) - set(carve.subjects)))
    assert val_classes == train_classes == {0, 1, 2, 3} and carve.missing == [], carve
    assert carve == carve_validation(classes_of, 0.2, seed)  # seeded, stable


def test_carve_names_classes_only_one_subject_performed() -> None:
    classes_of = {1: {0}, 2: {0}, 3: {1}, 4: {1}, 5: {2}}  # class 2: subject 5 only, it stays in training
    carve = carve_validation(classes_of, 0.2, 0)
    assert 5 not in carve.subjects and carve.missing == [2]
    assert set().union(*(classes_of[s] for s in carve.subjects)) == {0, 1}


def test_one_activity_per_subject_trains_and_warns_of_what_validation_lacks(tmp_path: Path) -> None:
    from tests.test_formats import custom_params, make_custom

    files = {  # training: walk by 1 and 5, sit by 4 and 6, run by 7 only; test subject 3 did all three
        f"s{s:02d}.csv": [(s, label, 60)]
        for s, label in ((1, "walk"), (4, "sit"), (5, "walk"), (6, "sit"), (7, "run"))
    }
    files["s03.csv"] = [(3, "walk", 40), (3, "sit", 40), (3, "run", 40)]
    make_custom(tmp_path / "toy", files=files)
    params = custom_params(tmp_path, tmp_path / "toy")
    for step in ("fetch", "prepare"):
        proc = har("data", step, "toy", "--params", str(params), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    data = load_train_data(tmp_path / "data" / "prepared", "toy")
    assert data.val_missing == ["run"] and 7 not in data.val_subjects
    assert {data.classes[c] for c in np.unique(data.splits["val"][1])} == {"walk", "sit"}
    proc = har("train", "-d", "toy", "-m", "lstm", "--epochs", "1", "--params", str(params),
               "--out", str(tmp_path / "ckpt"), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"warning: validation subjects \[[\d, ]+\] performed no run", proc.stderr), proc.stderr
    assert json.loads((tmp_path / "ckpt" / INFO).read_text())["val_missing"] == ["run"]


def without_timing(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in history]


# ---------------------------------------------------------------- load_train_data


def test_validation_subjects_come_from_training_subjects(prepared: Path, data: TrainData) -> None:
    meta = json.loads((prepared / DATASET / "meta.json").read_text())
    train_subjects, test_subjects = meta["split"]["train_subjects"], meta["split"]["test_subjects"]
    assert (train_subjects, test_subjects) == ([1, 3, 5], [2, 4])
    assert data.val_subjects and set(data.val_subjects) < set(train_subjects)
    assert not set(data.val_subjects) & set(test_subjects)
    assert load_train_data(prepared, DATASET).val_subjects == data.val_subjects  # seeded, stable
    wide = load_train_data(prepared, DATASET, val_fraction=0.9)
    assert len(wide.val_subjects) == 2  # at least one training subject always stays
    assert data.channels == meta["channels"] and data.classes == meta["classes"]
    assert data.window == 128 and data.sensors == "all"
    assert data.data_version.startswith(("sha256:", "dvc-md5:"))


def test_every_window_is_in_exactly_one_split(prepared: Path, data: TrainData) -> None:
    raw = load_prepared(prepared / DATASET, mmap=False)
    is_val = ~raw.test & np.isin(raw.subject, data.val_subjects)
    masks = {"train": ~raw.test & ~is_val, "val": is_val, "test": raw.test}
    assert sum(m.astype(int) for m in masks.values()).tolist() == [1] * len(raw.y)
    assert sum(len(data.splits[name][1]) for name in masks) == len(raw.y) == 1610
    for name, mask in masks.items():
        X, y = data.splits[name]
        assert X.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(y, raw.y[mask])
        # the splits hold exactly the prepared windows of their subjects: raw = X * std + mean
        np.testing.assert_allclose(X * data.std + data.mean, raw.X[mask], rtol=1e-4, atol=1e-4)
        subjects = set(np.unique(raw.subject[mask]).tolist())
        others = set(np.unique(raw.subject[~mask]).tolist())
        assert not subjects & others, f"a subject of {name} has windows in another split"
    assert set(np.unique(raw.subject[masks["val"]]).tolist()) == set(data.val_subjects)


def test_normalisation_is_fitted_on_the_training_split_only(prepared: Path, data: TrainData) -> None:
    raw = load_prepared(prepared / DATASET, mmap=False)
    is_val = ~raw.test & np.isin(raw.subject, data.val_subjects)
    train = raw.X[~raw.test & ~is_val].reshape(-1, 9).astype(np.float64)
    np.testing.assert_allclose(data.mean, train.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.std, train.std(axis=0), rtol=1e-5, atol=1e-6)
    with_val = raw.X[~raw.test].reshape(-1, 9).astype(np.float64)
    assert not np.allclose(data.mean, with_val.mean(axis=0), rtol=1e-4, atol=1e-5)  # val is not used
    X_train = data.splits["train"][0].reshape(-1, 9)
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(X_train.std(axis=0), 1, atol=1e-3)
    first = raw.X[~raw.test & ~is_val][:5]
    np.testing.assert_array_equal(data.normalise(first), data.splits["train"][0][:5])


def test_sensor_permutation_selects_channels(prepared: Path, data: TrainData) -> None:
    gyro = load_train_data(prepared, DATASET, sensors="gyro")
    assert gyro.channels == ["body_gyro_x", "body_gyro_y", "body_gyro_z"]
    assert gyro.sensors == "gyro" and gyro.mean.shape == (3,)
    for name in ("train", "val", "test"):
        assert gyro.splits[name][0].shape == (*data.splits[name][0].shape[:2], 3)
    np.testing.assert_allclose(gyro.mean, data.mean[6:], rtol=1e-6)
    with pytest.raises(BadInput, match="unknown sensor group 'magnetometer'"):
        load_train_data(prepared, DATASET, sensors="magnetometer")


def test_nan_in_prepared_windows_is_bad_input(prepared: Path, tmp_path: Path) -> None:
    folder = tmp_path / DATASET
    shutil.copytree(prepared / DATASET, folder)
    X = np.load(folder / "X.npy")
    X[3, 10, 2] = np.nan
    np.save(folder / "X.npy", X)
    with pytest.raises(BadInput, match="NaN"):
        load_train_data(tmp_path, DATASET)
    with pytest.raises(BadInput, match="har data prepare watch"):
        load_train_data(tmp_path, "watch")


# ---------------------------------------------------------------- the training loop


def test_amp_is_ignored_on_the_cpu(data: TrainData, small_run: RunResult) -> None:
    """`amp` (mixed precision) acts on CUDA only: on the CPU the run is the plain one, number for number."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device: tests/test_gpu.py covers amp there")
    amp = run(small_spec(seed=3, amp=True), data=data)
    assert without_timing(amp.fit.history) == without_timing(small_run.fit.history)


def test_same_seed_same_results(data: TrainData, small_run: RunResult) -> None:
    torch.rand(100)  # whatever ran before (other runs, other tests) must not matter
    again = run(small_spec(seed=3), data=data)
    assert len(small_run.fit.history) == 2
    assert without_timing(again.fit.history) == without_timing(small_run.fit.history)
    assert again.val == small_run.val and again.test == small_run.test
    assert again.fit.best_epoch == small_run.fit.best_epoch
    other = run(small_spec(seed=4), data=data)
    assert without_timing(other.fit.history) != without_timing(small_run.fit.history)
    assert other.fit.history[0]["train/loss"] != small_run.fit.history[0]["train/loss"]


def test_best_epoch_weights_are_kept(data: TrainData, small_run: RunResult) -> None:
    history = small_run.fit.history
    f1 = [row["val/macro_f1"] for row in history]
    assert small_run.fit.best_epoch == int(np.argmax(f1)) + 1
    assert small_run.fit.best == history[small_run.fit.best_epoch - 1]
    assert small_run.val["val/macro_f1"] == pytest.approx(small_run.fit.best["val/macro_f1"])
    for key, value in small_run.model.state_dict().items():
        assert torch.equal(value, small_run.fit.state_dict[key])
    assert small_run.test is not None and "test/accuracy" in small_run.test
    assert small_run.parameters == sum(p.numel() for p in small_run.model.parameters())


def test_report_can_stop_training(data: TrainData) -> None:
    epochs = []

    def report(epoch: int, row: dict[str, float]) -> None:
        epochs.append(epoch)
        assert {"train/loss", "val/loss", "val/accuracy", "val/macro_f1", "lr"} <= set(row)
        if epoch == 2:
            raise StopTraining

    result = run(small_spec(max_epochs=6), data=data, test=False, report=report)
    assert epochs == [1, 2] and len(result.fit.history) == 2
    assert result.fit.stopped_early and result.test is None


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_fit_resumes_from_a_saved_state_exactly(data: TrainData, tmp_path: Path, ema_decay: float) -> None:
    """A tuner checkpoints fit's state after an epoch; resuming it gives the uninterrupted run
    (with a weight average too: the average is part of the state)."""
    spec = small_spec(max_epochs=4, seed=5, ema_decay=ema_decay)
    spec.hparams = {"hidden": 8, "layers": 2, "dropout": 0.5}  # dropout: the global RNG must resume too
    hparams, cfg = resolve(spec)
    saved: dict[int, Path] = {}

    def on_epoch(epoch: int, row: dict[str, float], state) -> None:
        saved[epoch] = tmp_path / f"state-{epoch}.pt"
        torch.save(state(), saved[epoch])

    def new_model() -> torch.nn.Module:
        torch.manual_seed(123)  # other initial weights: the resumed state must overwrite them
        return build("lstm", len(data.channels), len(data.classes), data.window, **hparams)

    train, val = data.splits["train"], data.splits["val"]
    whole = fit(new_model(), train, val, data.classes, cfg, on_epoch=on_epoch)
    assert sorted(saved) == [1, 2, 3, 4]
    state = torch.load(saved[2], weights_only=True)  # what a tuner checkpoint holds
    resumed_epochs = []
    model = new_model()
    rest = fit(
        model, train, val, data.classes, cfg, resume=state, report=lambda e, row: resumed_epochs.append(e)
    )
    assert resumed_epochs == [3, 4]
    assert without_timing(rest.history) == without_timing(whole.history)
    assert rest.best_epoch == whole.best_epoch
    for key, value in whole.state_dict.items():
        assert torch.equal(value, rest.state_dict[key])


def test_weight_average_is_validated_selected_and_kept(data: TrainData) -> None:
    spec = small_spec(max_epochs=3, seed=2, ema_decay=0.9)
    hparams, cfg = resolve(spec)
    states: dict[int, dict] = {}
    model = build("lstm", len(data.channels), len(data.classes), data.window, **hparams)
    result = fit(
        model, data.splits["train"], data.splits["val"], data.classes, cfg,
        on_epoch=lambda epoch, row, state: states.setdefault(epoch, state()),
    )  # fmt: skip
    best = states[result.best_epoch]
    averaged = {k.removeprefix("module."): v for k, v in best["averaged"].items() if k != "n_averaged"}
    assert int(best["averaged"]["n_averaged"]) == result.best_epoch * math.ceil(
        len(data.splits["train"][1]) / 64
    )
    for key, value in result.state_dict.items():  # the kept weights are the average, not the raw weights
        assert torch.equal(value, averaged[key])
    assert any(not torch.equal(best["model"][k], averaged[k]) for k in averaged)
    # the validation metrics are the average's: the kept model reproduces the best epoch's row
    val = evaluate(model, *data.splits["val"], data.classes, "val/")
    assert val["val/macro_f1"] == pytest.approx(result.best["val/macro_f1"])


def test_exponential_average_warms_up_and_averages_batchnorm_statistics() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)
    averaged = exponential_average(net, decay=0.99)
    averaged.update_parameters(net)  # the first update copies
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(3.0)
    net.train()(torch.randn(8, 2))  # moves BatchNorm's running statistics and its batch counter
    averaged.update_parameters(net)
    rate = 1 - min(0.99, 2 / 11)  # warm-up: the second update follows the model closely
    weight = averaged.module[0].weight
    assert torch.allclose(weight, torch.full_like(weight, 1 + rate * 2))
    bn, bn_avg = net[1], averaged.module[1]
    assert torch.allclose(bn_avg.running_mean, rate * bn.running_mean)  # lerp from the copied zeros
    assert int(bn_avg.num_batches_tracked) == int(bn.num_batches_tracked) == 1


def test_patience_stops_when_nothing_improves(data: TrainData) -> None:
    # lr 1e-30 leaves every float32 weight unchanged: the monitored value never improves
    result = run(small_spec(max_epochs=6, lr=1e-30, patience=1), data=data, test=False)
    assert len(result.fit.history) == 2 and result.fit.stopped_early and result.fit.best_epoch == 1
    assert result.fit.history[0]["val/macro_f1"] == result.fit.history[1]["val/macro_f1"]
    full = run(small_spec(max_epochs=2, lr=1e-30, patience=1), data=data, test=False)
    assert len(full.fit.history) == 2 and not full.fit.stopped_early  # ran to max_epochs


def test_bad_training_settings_are_bad_input() -> None:
    with pytest.raises(BadInput, match="lr"):
        resolve(small_spec(lr=0))
    with pytest.raises(BadInput, match="patiense"):
        resolve(small_spec(patiense=3))
    hparams, cfg = resolve(RunSpec(DATASET, model="res_bilstm", preset="3x3", hparams={"hidden": 8}))
    assert hparams == {"n_stacked": 3, "n_residual": 3, "hidden": 8, "bidirectional": True, "cell": "split",
                       "residual": "parallel", "norm": "time", "input_dropout": 0.15, "dropout": 0.15,
                       "relu_logits": True, "init": "reference"}  # fmt: skip
    assert cfg.lr == 0.001 and cfg.l2 == 0.005 and cfg.clip_grad_norm == 15.0 and cfg.l2_skip_biases
    with pytest.raises(BadInput, match="unknown preset"):
        resolve(RunSpec(DATASET, model="res_bilstm", preset="4x4"))


def _subset(
    data: TrainData, n: int = 120
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    X, y = data.splits["train"]
    Xv, yv = data.splits["val"]
    return (X[:n].copy(), y[:n].copy()), (Xv[:n], yv[:n])


def test_non_finite_loss_is_a_runtime_error(data: TrainData) -> None:
    train, val = _subset(data)
    train[0][5, 7, 1] = np.nan
    cfg = TrainConfig(max_epochs=2, batch_size=256, num_threads=1)
    with pytest.raises(HarError, match="diverged") as exc:
        fit(build("lstm", 9, 6, 128, **SMALL), train, val, data.classes, cfg)
    assert not isinstance(exc.value, BadInput) and exc.value.exit_code == 1
    train, val = _subset(data)
    cfg = TrainConfig(max_epochs=3, lr=1e30, l2=1e-3, batch_size=32, num_threads=1)
    with pytest.raises(HarError, match=r"diverged.*lower the learning rate"):
        fit(build("lstm", 9, 6, 128, **SMALL), train, val, data.classes, cfg)


def test_explicit_l2_adds_to_the_training_loss(data: TrainData) -> None:
    train, val = _subset(data)
    losses = {}
    for l2 in (0.0, 0.01):
        torch.manual_seed(0)
        model = build("lstm", 9, 6, 128, **SMALL)
        cfg = TrainConfig(max_epochs=1, l2=l2, seed=5, batch_size=64, num_threads=1)
        losses[l2] = fit(model, train, val, data.classes, cfg).history[0]["train/loss"]
    assert losses[0.01] > losses[0.0]
    assert np.isfinite(list(losses.values())).all()


def test_l2_can_leave_biases_out(data: TrainData) -> None:
    """The penalty difference is exactly l2/2 * the squared 1-D parameters (weights barely move at lr 1e-12)."""
    train, val = _subset(data)
    losses = {}
    for skip in (False, True):
        torch.manual_seed(0)
        model = build("lstm", 9, 6, 128, **SMALL)
        biases = sum(float((p.detach() ** 2).sum()) for p in model.parameters() if p.ndim < 2)
        cfg = TrainConfig(
            max_epochs=1, lr=1e-12, l2=0.1, l2_skip_biases=skip, seed=5, batch_size=64, num_threads=1
        )
        losses[skip] = fit(model, train, val, data.classes, cfg).history[0]["train/loss"]
    assert biases > 0
    assert losses[False] - losses[True] == pytest.approx(0.1 * biases / 2, rel=1e-3)


def test_keep_last_trains_every_epoch_and_keeps_the_final_weights(data: TrainData) -> None:
    train, val = _subset(data)
    finals = []
    for keep in ("best", "last"):
        torch.manual_seed(0)
        model = build("lstm", 9, 6, 128, **SMALL)
        cfg = TrainConfig(max_epochs=4, patience=1, lr=0.05, keep=keep, seed=3, batch_size=32, num_threads=1)
        seen: dict[str, dict] = {}

        def last_state(epoch: int, row: dict, state, model=model, seen=seen) -> None:
            seen["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

        result = fit(model, train, val, data.classes, cfg, on_epoch=last_state)
        finals.append((result, seen["state"], model.state_dict()))
    (best, _, _), (last, final_state, kept) = finals
    assert len(last.history) == 4 and last.best_epoch == 4 and not last.stopped_early  # patience ignored
    assert all(torch.equal(final_state[k], kept[k]) for k in kept)
    assert best.best_epoch == max(
        range(1, len(best.history) + 1), key=lambda e: best.history[e - 1]["val/macro_f1"]
    )


def test_rmsprop_runs(data: TrainData) -> None:
    train, val = _subset(data)
    cfg = TrainConfig(optimizer="rmsprop", lr=1e-3, rho=0.8, max_epochs=2, batch_size=64, num_threads=1)
    model = build("lstm", 9, 6, 128, **SMALL)
    optimizer = _optimizer(model, cfg)
    assert isinstance(optimizer, torch.optim.RMSprop) and optimizer.defaults["alpha"] == 0.8
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit(model, train, val, data.classes, cfg)
    assert len(result.history) == 2 and all(np.isfinite(r["train/loss"]) for r in result.history)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_class_weighting_and_clipping_run(data: TrainData) -> None:
    train, val = _subset(data)
    cfg = TrainConfig(max_epochs=1, class_weighting="balanced", clip_grad_norm=1.0, num_threads=1)
    result = fit(build("lstm", 9, 6, 128, **SMALL), train, val, data.classes, cfg)
    assert np.isfinite(result.history[0]["train/loss"])


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path: Path, data: TrainData, small_run: RunResult) -> None:
    spec = small_spec(seed=3)
    folder = save_checkpoint(tmp_path / "ckpt", small_run.model, checkpoint_info(spec, small_run))
    info = json.loads((folder / INFO).read_text())
    for key in ("model", "hparams", "channels", "classes", "normalization", "window", "data_version"):
        assert key in info, key
    assert info["model"] == "lstm" and info["hparams"] == SMALL and info["window"] == 128
    assert info["channels"] == data.channels and info["classes"] == data.classes
    assert info["data_version"] == data.data_version and info["val_subjects"] == data.val_subjects
    np.testing.assert_allclose(info["normalization"]["mean"], data.mean, rtol=1e-6)
    np.testing.assert_allclose(info["normalization"]["std"], data.std, rtol=1e-6)
    assert info["parameters"] == small_run.parameters and len(info["history"]) == 2

    state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)  # no pickled code
    assert set(state) == set(small_run.model.state_dict())

    loaded, loaded_info = load_checkpoint(folder)
    assert loaded_info == info and not loaded.training
    X = data.splits["test"][0][:16]
    np.testing.assert_array_equal(predict_logits(loaded, X), predict_logits(small_run.model, X))
    with torch.no_grad():
        small_run.model.eval()
        assert torch.equal(loaded(torch.from_numpy(X)), small_run.model(torch.from_numpy(X)))


def test_check_channels_refuses_other_channels(data: TrainData) -> None:
    info = {"channels": data.channels, "dataset": DATASET, "sensors": "all"}
    check_channels(info, list(data.channels), "here")
    with pytest.raises(BadInput, match="missing"):
        check_channels(info, data.channels[6:], "here")
    with pytest.raises(BadInput, match="different order"):
        check_channels(info, data.channels[::-1], "here")
    with pytest.raises(BadInput, match="unexpected"):
        check_channels(info, [*data.channels, "emg_1"], "here")


def test_broken_checkpoints_are_bad_input(tmp_path: Path, small_run: RunResult) -> None:
    with pytest.raises(BadInput, match="not a har-lab checkpoint"):
        load_checkpoint(tmp_path)
    folder = save_checkpoint(tmp_path / "ckpt", small_run.model, checkpoint_info(small_spec(), small_run))
    info = json.loads((folder / INFO).read_text())
    del info["normalization"]
    (folder / INFO).write_text(json.dumps(info))
    with pytest.raises(BadInput, match="'normalization' missing"):
        load_checkpoint(folder)
    (folder / INFO).write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        load_checkpoint(folder)
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(tmp_path / "other", small_run.model, {"model": "lstm"})


# ---------------------------------------------------------------- the CLI


def _row(stdout: str, label: str) -> list[float]:
    """Numbers of the table row starting with ``label`` (or of the only data row when label is '')."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and (cells[0] == label or (not label and re.fullmatch(r"[\d.]+", cells[0]))):
            return [float(c) for c in cells[1 if label else 0 :]]
    raise AssertionError(f"no row {label!r} in:\n{stdout}")


@pytest.fixture(scope="module")
def trained(project: Path) -> tuple[Path, str]:
    proc = har(
        "train", "-d", DATASET, "-m", "lstm", "--epochs", "2", "-H", "hidden=8", "--val-fraction", "0.5",
        "--out", "ckpt", cwd=project, extra_env=ONE_THREAD,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return project / "ckpt", proc.stdout


def test_cli_train_writes_a_checkpoint(trained: tuple[Path, str], prepared: Path) -> None:
    ckpt, stdout = trained
    val, test = _row(stdout, "val"), _row(stdout, "test")
    assert len(val) == len(test) == 4 and all(0 <= v <= 1 for v in val[:3] + test[:3])
    assert "best epoch" in stdout and "checkpoint ckpt" in stdout
    assert (ckpt / WEIGHTS).is_file() and (ckpt / INFO).is_file()
    info = json.loads((ckpt / INFO).read_text())
    assert (
        info["model"] == "lstm"
        and info["hparams"] == {"hidden": 8}
        and info["train_config"]["max_epochs"] == 2
    )
    assert info["val_subjects"] == load_train_data(prepared, DATASET, val_fraction=0.5).val_subjects
    assert len(info["val_subjects"]) == 2
    assert info["metrics"]["test/accuracy"] == pytest.approx(test[0], abs=5e-5)


def test_cli_evaluate_reproduces_the_training_metrics(trained: tuple[Path, str], prepared: Path) -> None:
    ckpt, train_stdout = trained
    project = ckpt.parent
    for split in ("test", "val"):
        proc = har("evaluate", "ckpt", "--split", split, cwd=project, extra_env=ONE_THREAD)
        assert proc.returncode == 0, proc.stderr
        assert "accuracy" in proc.stdout
        # the same windows as at training time (the checkpoint's own validation subjects) ...
        n = len(load_train_data(prepared, DATASET, val_fraction=0.5).splits[split][1])
        assert f"{split} ({n}" in proc.stdout, proc.stdout
        # ... and the same model: the numbers of the training table
        assert _row(proc.stdout, "") == _row(train_stdout, split)[:3]


def test_cli_models_zoo_lists_every_model(project: Path) -> None:
    proc = har("models", "zoo", cwd=project, extra_env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    for name in model_names():
        assert name in proc.stdout
    for spec, count in (
        ("lstm:chevalier", "17,414"),
        ("res_bilstm:1x1", "3,816"),
        ("res_bilstm:3x3", "36,132"),
        ("res_bilstm:3x3_readme", "131,914"),
    ):
        assert spec in proc.stdout and count in proc.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-m", "transformer"), "unknown model 'transformer'"),
        (("-m", "res_bilstm", "-p", "4x4"), "unknown preset 'res_bilstm:4x4'"),
        (("-m", "lstm", "-s", "acc+magnetometer"), "unknown sensor group 'magnetometer'"),
        (("-m", "lstm", "-H", "hiden=8"), "no hyper-parameter 'hiden'"),
    ],
    ids=["model", "preset", "sensors", "hparam"],
)
def test_cli_train_bad_input_exits_2(project: Path, args: tuple[str, ...], expected: str) -> None:
    proc = har_in_process(
        "train", "-d", DATASET, "--epochs", "1", "--out", "never", *args, cwd=project, extra_env=ONE_THREAD
    )
    assert proc.returncode == 2
    assert expected in one_line_error(proc)
    assert not (project / "never").exists()


def test_cli_evaluate_bad_input_exits_2(project: Path, trained: tuple[Path, str]) -> None:
    (project / "not-a-checkpoint").mkdir(exist_ok=True)
    proc = har_in_process("evaluate", "not-a-checkpoint", cwd=project, extra_env=ONE_THREAD)
    assert proc.returncode == 2
    assert "not a har-lab checkpoint" in one_line_error(proc)
    proc = har_in_process("evaluate", "ckpt", "--split", "nope", cwd=project, extra_env=ONE_THREAD)
    assert proc.returncode == 2
    assert "--split 'nope'" in one_line_error(proc)
