"""The dataset readers on small synthetic files written in each published layout.

Every file is made by the test itself (tmp_path), in the exact layout the publisher ships, with signals
that carry the class (a per-class sine frequency) and a per-channel identity (an offset or a constant),
so that window counts, labels, subjects, channel order and split flags can be checked exactly.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import yaml

from har.data.formats import reader
from har.data.prepare import prepare, reader_options
from har.data.prepared import load_prepared
from har.data.registry import BUILTIN, OPP_GESTURES, OPP_LOCOMOTION, resolve
from har.data.spec import DatasetSpec, SplitSpec
from har.data.splits import assign_split, fold_masks
from har.errors import BadInput

SHARED = Path(__file__).resolve().parents[2] / "shared"
OPP_META = SHARED / "datasets" / "opportunity" / "dataset"
WATCH = SHARED / "datasets" / "watch"
needs_opp_meta = pytest.mark.skipif(
    not (OPP_META / "column_names.txt").is_file(),
    reason=f"the real Opportunity column_names.txt / label_legend.txt are not at {OPP_META}",
)


# ----------------------------------------------------------------------------------------------------------
# helpers


def n_windows(length: int, size: int, step: int) -> int:
    return 0 if length < size else (length - size) // step + 1


def read(spec: DatasetSpec, root: Path, **options: object):
    """Run the reader of ``spec`` with its default options (from the spec) updated by ``options``."""
    opts = reader_options(spec).model_copy(update=options)
    return reader(spec.format).read(root, spec, opts)


def with_split(spec: DatasetSpec, test_subjects: list[int], **extra: object) -> DatasetSpec:
    return spec.model_copy(
        update={"split": SplitSpec(rule="test split", test_subjects=test_subjects, **extra)}
    )


def assert_prepare_fails(spec: DatasetSpec, raw: Path, out: Path, *fragments: str) -> str:
    """prepare raises BadInput naming every fragment and leaves neither output nor temp folder behind."""
    with pytest.raises(BadInput) as info:
        prepare(spec, raw, out)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert not (out / spec.name).exists()
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())
    return message


def write_params(path: Path, datasets: dict) -> Path:
    path.write_text(yaml.safe_dump({"datasets": datasets}))
    return path


# ----------------------------------------------------------------------------------------------------------
# UCI HAR v1.0: pre-cut windows in {train,test}/Inertial Signals

UCI_SIGNALS = [f"{sig}_{axis}" for sig in ("total_acc", "body_acc", "body_gyro") for axis in "xyz"]
UCI_NAMES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
UCI_TEST_SUBJECTS = [2, 4, 9, 10, 12, 13, 18, 20, 24]  # the official test volunteers (all must be present)
UCI_ROWS = {  # (subject, activity 1-6) per window
    "train": [(1, 1), (1, 1), (1, 4), (3, 2), (3, 6), (3, 6), (5, 3), (5, 5), (5, 5), (5, 1)],
    "test": [(s, i % 6 + 1) for i, s in enumerate(UCI_TEST_SUBJECTS)] + [(2, 6)],
}


def uci_number(value: float) -> str:
    """A value as the original files write it: ' 1.0118000e+000' / '-2.5000000e-001'."""
    mantissa, exponent = f"{value: .7e}".split("e")
    return f"{mantissa}e{exponent[0]}{int(exponent[1:]):03d}"


def uci_window(index: int, activity: int, amplitude: float) -> np.ndarray:
    """[128, 9]: channel c has offset c + 1 and a sine of activity-dependent frequency (2a + 1 periods)."""
    t = np.arange(128)
    wave = amplitude * np.sin(2 * np.pi * (2 * activity + 1) * t / 128 + 0.3 * index)
    return np.arange(1, 10)[None, :] + wave[:, None] * np.linspace(0.2, 1.0, 9)[None, :]


def make_uci_har(root: Path, rows: dict[str, list[tuple[int, int]]] = UCI_ROWS) -> dict[str, tuple]:
    """Write ``UCI HAR Dataset/``; return per split (X float64 as written [N,128,9], y 1-6, subject)."""
    folder = root / "UCI HAR Dataset"
    folder.mkdir(parents=True)
    (folder / "activity_labels.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(UCI_NAMES, 1)))
    written = {}
    offset = 0
    for split, pairs in rows.items():
        part = folder / split
        (part / "Inertial Signals").mkdir(parents=True)
        amplitude = 0.5 if split == "train" else 0.9  # test windows differ: normalisation must ignore them
        X = np.stack([uci_window(offset + i, a, amplitude) for i, (_, a) in enumerate(pairs)])
        offset += len(pairs)
        text = {}
        for c, name in enumerate(UCI_SIGNALS):
            lines = ["".join(" " + uci_number(v) for v in row) for row in X[:, :, c]]
            text[name] = lines
            (part / "Inertial Signals" / f"{name}_{split}.txt").write_text("\n".join(lines) + "\n")
        parsed = np.stack(
            [np.array([[float(v) for v in line.split()] for line in text[n]]) for n in UCI_SIGNALS], axis=-1
        )
        y = np.array([a for _, a in pairs])
        subject = np.array([s for s, _ in pairs])
        (part / f"y_{split}.txt").write_text("".join(f"{v}\n" for v in y))
        (part / f"subject_{split}.txt").write_text("".join(f"{v}\n" for v in subject))
        written[split] = (parsed, y, subject)
    return written


def test_uci_number_format_matches_the_original() -> None:
    assert uci_number(1.0118) == " 1.0118000e+000"
    assert uci_number(-0.25) == "-2.5000000e-001"
    assert uci_number(0.001234) == " 1.2340000e-003"


def test_uci_har_read(tmp_path: Path) -> None:
    written = make_uci_har(tmp_path)
    line = (tmp_path / "UCI HAR Dataset/train/Inertial Signals/total_acc_x_train.txt").read_text()
    assert line.startswith("  ") and "e+000 " in line  # leading spaces, 3-digit exponents like the original

    result = read(BUILTIN["uci_har"], tmp_path)
    w = result.windows
    n_train, n_test = len(UCI_ROWS["train"]), len(UCI_ROWS["test"])
    assert result.classes == UCI_NAMES
    assert w.X.shape == (n_train + n_test, 128, 9) and w.X.dtype == np.float32
    X_written = np.concatenate([written["train"][0], written["test"][0]])
    np.testing.assert_array_equal(w.X, X_written.astype(np.float32))
    # channel order total_acc, body_acc, body_gyro (x, y, z): channel c was written with offset c + 1
    np.testing.assert_allclose(w.X.mean(axis=(0, 1)), np.arange(1, 10), atol=1e-5)
    np.testing.assert_array_equal(w.y, [a - 1 for _, a in UCI_ROWS["train"] + UCI_ROWS["test"]])
    np.testing.assert_array_equal(w.subject, [s for s, _ in UCI_ROWS["train"] + UCI_ROWS["test"]])
    np.testing.assert_array_equal(w.test, [False] * n_train + [True] * n_test)
    assert result.notes == {"windows_train": n_train, "windows_test": n_test}
    # the class is in the signal: the dominant frequency of every window is 2a + 1 periods
    spectrum = np.abs(np.fft.rfft(w.X[:, :, 8] - w.X[:, :, 8].mean(axis=1, keepdims=True), axis=1))
    np.testing.assert_array_equal(spectrum.argmax(axis=1), 2 * (w.y + 1) + 1)


def test_uci_har_prepare(tmp_path: Path) -> None:
    make_uci_har(tmp_path / "raw")
    out = tmp_path / "prepared"
    target = prepare(BUILTIN["uci_har"], tmp_path / "raw", out)
    assert target == out / "uci_har"
    assert sorted(p.name for p in out.iterdir()) == ["uci_har"]  # no temp folder left
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["X.npy", "y.npy", "subject.npy", "split.npy", "meta.json"]
    )
    data = load_prepared(target, mmap=False)
    direct = read(BUILTIN["uci_har"], tmp_path / "raw").windows
    np.testing.assert_array_equal(data.X, direct.X)
    np.testing.assert_array_equal(data.y, direct.y)
    np.testing.assert_array_equal(data.subject, direct.subject)
    np.testing.assert_array_equal(data.test, direct.test)
    assert np.load(target / "y.npy").dtype == np.int64
    assert np.load(target / "subject.npy").dtype == np.int32
    assert np.load(target / "split.npy").dtype == np.uint8

    meta = data.meta
    train_y = np.array([a - 1 for _, a in UCI_ROWS["train"]])
    test_y = np.array([a - 1 for _, a in UCI_ROWS["test"]])
    assert meta["dataset"] == "uci_har" and meta["format"] == "uci_har"
    assert meta["classes"] == UCI_NAMES
    assert meta["channels"] == UCI_SIGNALS
    assert meta["shape"] == [len(train_y) + len(test_y), 128, 9]
    assert meta["split"]["by"] == "recording"
    assert meta["split"]["windows"] == {"train": len(train_y), "test": len(test_y)}
    assert meta["split"]["train_subjects"] == [1, 3, 5]
    assert meta["split"]["test_subjects"] == UCI_TEST_SUBJECTS
    assert meta["class_counts"] == {
        "train": np.bincount(train_y, minlength=6).tolist(),
        "test": np.bincount(test_y, minlength=6).tolist(),
    }
    train = data.X[~data.test].reshape(-1, 9).astype(np.float64)
    assert meta["normalization"]["fitted_on"] == "train"
    np.testing.assert_allclose(meta["normalization"]["mean"], train.mean(axis=0), rtol=0, atol=1e-8)
    np.testing.assert_allclose(meta["normalization"]["std"], train.std(axis=0), rtol=0, atol=1e-8)
    everything = data.X.reshape(-1, 9).astype(np.float64)
    assert not np.allclose(everything.std(axis=0), train.std(axis=0), atol=1e-6)  # test windows not used


def test_uci_har_label_outside_class_list(tmp_path: Path) -> None:
    rows = {"train": [*UCI_ROWS["train"][:-1], (5, 7)], "test": UCI_ROWS["test"]}
    make_uci_har(tmp_path / "raw", rows)
    assert_prepare_fails(BUILTIN["uci_har"], tmp_path / "raw", tmp_path / "out", "y_train.txt", "label 7")


def test_uci_har_window_count_mismatch(tmp_path: Path) -> None:
    make_uci_har(tmp_path / "raw")
    path = tmp_path / "raw/UCI HAR Dataset/test/Inertial Signals/body_gyro_y_test.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    assert_prepare_fails(BUILTIN["uci_har"], tmp_path / "raw", tmp_path / "out", "body_gyro_y_test.txt")


def test_uci_har_short_row_is_bad_input(tmp_path: Path) -> None:
    """A row with 127 values (a truncated line) must not become a window with a NaN in it."""
    make_uci_har(tmp_path / "raw")
    path = tmp_path / "raw/UCI HAR Dataset/train/Inertial Signals/body_acc_z_train.txt"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    assert_prepare_fails(
        BUILTIN["uci_har"], tmp_path / "raw", tmp_path / "out", "body_acc_z_train.txt", "row 4"
    )


def test_uci_har_refuses_denser_training_windows(tmp_path: Path) -> None:
    """Its windows are published already cut: window.train_step cannot add any."""
    make_uci_har(tmp_path / "raw")
    window = BUILTIN["uci_har"].window.model_copy(update={"train_step": 32})
    spec = BUILTIN["uci_har"].model_copy(update={"window": window})
    assert_prepare_fails(
        spec, tmp_path / "raw", tmp_path / "out", "datasets.uci_har.window.train_step", "already cut"
    )


# ----------------------------------------------------------------------------------------------------------
# UCI HAPT RawData (the raw source of UCI HAR)

HAPT_EXPERIMENTS = {(1, 1): 700, (2, 2): 700}  # (experiment, user) -> samples
HAPT_LABELS = [  # experiment, user, activity 1-12, start, end (1-based, inclusive)
    (1, 1, 5, 1, 260),
    (1, 1, 7, 261, 299),  # a transition: not a basic activity
    (1, 1, 1, 300, 600),
    (2, 2, 4, 1, 300),
    (2, 2, 2, 351, 650),
]


def hapt_bin(activity: int) -> int:
    """Periods per 128-sample window of the sine that marks ``activity`` (1-12)."""
    return 4 + 3 * ((activity - 1) % 6)


def make_uci_hapt(root: Path, labels=HAPT_LABELS, acc_columns: int = 3) -> Path:
    folder = root / "RawData"
    folder.mkdir(parents=True)
    for (exp, user), n in HAPT_EXPERIMENTS.items():
        freq = np.full(n, 0.5)
        for e, _, activity, start, end in labels:
            if e == exp:
                freq[start - 1 : end] = hapt_bin(activity) * 50 / 128
        phase = 2 * np.pi * np.cumsum(freq) / 50
        acc = np.stack([1 + 0.3 * np.sin(phase), 0.1 + 0.2 * np.sin(phase), -0.2 + 0.1 * np.cos(phase)], 1)
        gyro = np.stack([0.5 * np.sin(phase), 0.3 * np.cos(phase), 0.1 * np.sin(2 * phase)], 1)
        if acc_columns != 3:
            acc = np.concatenate([acc, np.zeros((n, acc_columns - 3))], axis=1)[:, :acc_columns]
        for name, values in (("acc", acc), ("gyro", gyro)):
            text = "".join(" ".join(f"{v:.9e}" for v in row) + "\n" for row in values)
            (folder / f"{name}_exp{exp:02d}_user{user:02d}.txt").write_text(text)
    (folder / "labels.txt").write_text("".join(" ".join(map(str, row)) + "\n" for row in labels))
    return root


def test_uci_hapt_read(tmp_path: Path) -> None:
    make_uci_hapt(tmp_path)
    result = read(BUILTIN["uci_hapt"], tmp_path)
    w = result.windows
    basic = [r for r in HAPT_LABELS if r[2] <= 6]
    assert len(w) == sum(n_windows(end - start + 1, 128, 64) for *_, start, end in basic) == 12
    assert w.X.shape == (12, 128, 9) and w.X.dtype == np.float32
    assert w.test is None  # split by subject
    expected_y = np.concatenate([np.full(n_windows(e - s + 1, 128, 64), a - 1) for _, _, a, s, e in basic])
    expected_subject = np.concatenate([np.full(n_windows(e - s + 1, 128, 64), u) for _, u, _, s, e in basic])
    np.testing.assert_array_equal(w.y, expected_y)
    np.testing.assert_array_equal(w.subject, expected_subject)
    assert result.classes == UCI_NAMES
    # total_acc x carries gravity 1 g, body_acc none; the class is the dominant frequency of body_acc x
    np.testing.assert_allclose(w.X[:, :, 0].mean(), 1.0, atol=0.05)
    assert abs(w.X[:, :, 3].mean()) < 0.05
    spectrum = np.abs(np.fft.rfft(w.X[:, :, 3], axis=1))
    np.testing.assert_array_equal(spectrum[:, 1:].argmax(axis=1) + 1, [hapt_bin(a + 1) for a in w.y])

    # all 12 activities: the 39-sample transition is too short for a 128-sample window
    full = read(BUILTIN["uci_hapt"], tmp_path, activities="all")
    assert len(full.classes) == 12
    np.testing.assert_array_equal(full.windows.y, w.y)


def test_uci_hapt_acc_file_with_four_columns(tmp_path: Path) -> None:
    make_uci_hapt(tmp_path / "raw", acc_columns=4)
    assert_prepare_fails(
        BUILTIN["uci_hapt"], tmp_path / "raw", tmp_path / "out", "acc_exp01_user01.txt", "expected 3 columns"
    )


def test_uci_hapt_short_row_is_bad_input(tmp_path: Path) -> None:
    make_uci_hapt(tmp_path / "raw")
    path = tmp_path / "raw/RawData/gyro_exp02_user02.txt"
    lines = path.read_text().splitlines()
    lines[99] = lines[99].rsplit(" ", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    assert_prepare_fails(
        BUILTIN["uci_hapt"], tmp_path / "raw", tmp_path / "out", "gyro_exp02_user02.txt", "row 100"
    )


def test_uci_hapt_activity_outside_class_list(tmp_path: Path) -> None:
    make_uci_hapt(tmp_path / "raw", labels=[*HAPT_LABELS, (2, 2, 13, 660, 690)])
    assert_prepare_fails(BUILTIN["uci_hapt"], tmp_path / "raw", tmp_path / "out", "labels.txt", "activity 13")


def test_params_override_with_unknown_key(tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml", {"uci_hapt": {"windw": {"size": 64, "step": 32}}})
    with pytest.raises(BadInput, match=r"datasets\.uci_hapt\.windw"):
        resolve("uci_hapt", params)
    params = write_params(tmp_path / "params.yaml", {"uci_hapt": {"window": {"size": 64, "stepp": 32}}})
    with pytest.raises(BadInput, match=r"datasets\.uci_hapt\.window\.stepp"):
        resolve("uci_hapt", params)
    params = write_params(tmp_path / "params.yaml", {"uci_hapt": {"options": {"median_kernal": 5}}})
    spec = resolve("uci_hapt", params)
    with pytest.raises(BadInput, match=r"datasets\.uci_hapt\.options\.median_kernal"):
        reader_options(spec, params)
    params = write_params(tmp_path / "params.yaml", {"uci_hapt": {"window": {"size": 64, "step": 32}}})
    assert resolve("uci_hapt", params).window.size == 64


# ----------------------------------------------------------------------------------------------------------
# MyoGym.mat (MATLAB v5 and v7.3)

MYO_SIGNALS_1BASED = [*range(2, 10), 11, 12, 13, 15, 16, 17]  # EMG 2-9, acc 11-13, gyro 15-17
MYO_SEGMENTS = [  # (person, exercise or 99, samples)
    (1, 99, 60), (1, 1, 120), (1, 2, 49), (1, 99, 80), (1, 1, 75),
    (2, 99, 70), (2, 3, 100), (2, 30, 51),
    (9, 99, 40), (9, 5, 110),
    (10, 5, 60), (10, 99, 130),  # same exercise across the person change: must not be joined
]  # fmt: skip


def myogym_arrays(segments=MYO_SEGMENTS) -> tuple[np.ndarray, np.ndarray]:
    person = np.concatenate([np.full(n, p) for p, _, n in segments])
    exercise = np.concatenate([np.full(n, e) for _, e, n in segments])
    t = np.arange(len(person))
    freq = np.where(exercise == 99, 0.5, 1 + exercise % 10)
    wave = np.sin(2 * np.pi * np.cumsum(freq) / 50)
    data = 1000.0 * np.arange(1, 18)[None, :] + wave[:, None] * np.linspace(0.1, 0.9, 17)[None, :]
    for col in (1, 10, 14):  # timestamps in ms
        data[:, col - 1] = 20.0 * t
    return data, np.stack([exercise, person], axis=1).astype(np.float64)


def expected_myogym(data: np.ndarray, segments=MYO_SEGMENTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols = [c - 1 for c in MYO_SIGNALS_1BASED]
    xs, ys, subjects, start = [], [], [], 0
    for person, exercise, n in segments:
        for s in range(start, start + n - 50 + 1, 25):
            xs.append(data[s : s + 50, cols])
            ys.append(0 if exercise == 99 else exercise)
            subjects.append(person)
        start += n
    return np.stack(xs).astype(np.float32), np.array(ys), np.array(subjects)


def save_v5(path: Path, data: np.ndarray, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"raw_data": data, "raw_data_labels": labels})
    return path


def save_v73(path: Path, data: np.ndarray, labels: np.ndarray) -> Path:
    """A v7.3 MAT-file as MATLAB writes it: HDF5 after a 512-byte user block, matrices stored transposed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in (("raw_data", data), ("raw_data_labels", labels)):
            dataset = f.create_dataset(name, data=np.ascontiguousarray(value.T))
            dataset.attrs["MATLAB_class"] = np.bytes_(b"double")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with path.open("r+b") as handle:
        handle.write(header.ljust(512, b"\x00"))
    return path


@pytest.mark.parametrize("save", [save_v5, save_v73], ids=["v5", "v7.3"])
def test_myogym_read(tmp_path: Path, save) -> None:
    data, labels = myogym_arrays()
    path = save(tmp_path / "MyoGym" / "MyoGym.mat", data, labels)
    assert h5py.is_hdf5(path) == (save is save_v73)
    if save is save_v73:
        assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
        with h5py.File(path, "r") as f:
            assert f["raw_data"].shape == (17, len(data)) and f["raw_data_labels"].shape == (2, len(data))
    result = read(BUILTIN["myogym"], tmp_path)
    w = result.windows
    X, y, subject = expected_myogym(data)
    counts = [n_windows(n, 50, 25) for *_, n in MYO_SEGMENTS]
    assert counts == [1, 3, 0, 2, 2, 1, 3, 1, 0, 3, 1, 4]
    assert len(w) == sum(counts) == 21  # 5 if person 9's and 10's exercise 5 were joined (110 + 60)
    assert w.X.shape == (21, 50, 14) and w.X.dtype == np.float32
    np.testing.assert_array_equal(w.X, X)
    np.testing.assert_array_equal(w.y, y)
    np.testing.assert_array_equal(w.subject, subject)
    assert w.test is None
    # channels: column k (1-based) holds 1000 k plus a small wave
    np.testing.assert_array_equal(np.round(w.X / 1000).astype(int)[0, 0], MYO_SIGNALS_1BASED)
    assert result.classes == BUILTIN["myogym"].classes and result.classes[0] == "NULL"
    assert result.notes == {"rows": len(data)}
    assert np.bincount(w.y, minlength=31)[[0, 1, 2, 3, 5, 30]].tolist() == [8, 5, 0, 3, 4, 1]

    split = assign_split(w, BUILTIN["myogym"].split)
    np.testing.assert_array_equal(split.test, np.isin(w.subject, [9, 10]))
    assert split.keep.all()
    assert split.info["train_subjects"] == [1, 2] and split.info["test_subjects"] == [9, 10]
    assert split.info["windows"] == {"train": 13, "test": 8}


def test_myogym_v5_and_v73_identical(tmp_path: Path) -> None:
    data, labels = myogym_arrays()
    save_v5(tmp_path / "v5" / "MyoGym.mat", data, labels)
    save_v73(tmp_path / "v73" / "MyoGym.mat", data, labels)
    a = read(BUILTIN["myogym"], tmp_path / "v5")
    b = read(BUILTIN["myogym"], tmp_path / "v73")
    np.testing.assert_array_equal(a.windows.X, b.windows.X)
    np.testing.assert_array_equal(a.windows.y, b.windows.y)
    np.testing.assert_array_equal(a.windows.subject, b.windows.subject)
    assert a.classes == b.classes and a.notes == b.notes


def test_myogym_prepare(tmp_path: Path) -> None:
    # person 2 also performs exercise 5 (instead of 30): prepare refuses a test class no training subject has
    segments = [(p, 5 if e == 30 else e, n) for p, e, n in MYO_SEGMENTS]
    data, labels = myogym_arrays(segments)
    save_v73(tmp_path / "raw" / "MyoGym.mat", data, labels)
    target = prepare(BUILTIN["myogym"], tmp_path / "raw", tmp_path / "out")
    prepared = load_prepared(target)
    assert prepared.meta["split"]["by"] == "subject"
    assert prepared.meta["split"]["windows"] == {"train": 13, "test": 8}
    assert prepared.meta["split"]["folds"] == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    np.testing.assert_array_equal(prepared.test, np.isin(prepared.subject, [9, 10]))
    train = prepared.X[~prepared.test].reshape(-1, 14).astype(np.float64)
    np.testing.assert_allclose(prepared.meta["normalization"]["mean"], train.mean(axis=0), atol=1e-8)


def test_myogym_nan_gap_interpolated(tmp_path: Path) -> None:
    data, labels = myogym_arrays()
    truth = data.copy()
    data[100:104, 11] = np.nan  # acc x (column 12), inside person 1's exercise 1
    save_v5(tmp_path / "MyoGym.mat", data, labels)
    w = read(BUILTIN["myogym"], tmp_path).windows
    filled = truth.copy()
    filled[100:104, 11] = np.interp(np.arange(100, 104), [99, 104], truth[[99, 104], 11])
    np.testing.assert_allclose(w.X, expected_myogym(filled)[0], rtol=1e-7)
    assert not np.isnan(w.X).any()


def test_myogym_nan_only_emg_column(tmp_path: Path) -> None:
    data, labels = myogym_arrays()
    data[:, 4] = np.nan  # column 5 = EMG channel 4
    save_v73(tmp_path / "raw" / "MyoGym.mat", data, labels)
    assert_prepare_fails(BUILTIN["myogym"], tmp_path / "raw", tmp_path / "out", "MyoGym.mat", "'emg_4'")


def test_myogym_exercise_outside_class_list(tmp_path: Path) -> None:
    data, labels = myogym_arrays()
    labels[130, 0] = 31
    save_v5(tmp_path / "raw" / "MyoGym.mat", data, labels)
    assert_prepare_fails(
        BUILTIN["myogym"], tmp_path / "raw", tmp_path / "out", "MyoGym.mat", "row 131", "exercise 31"
    )


def test_myogym_missing_variable(tmp_path: Path) -> None:
    data, _ = myogym_arrays()
    (tmp_path / "raw").mkdir()
    scipy.io.savemat(tmp_path / "raw" / "MyoGym.mat", {"raw_data": data})
    assert_prepare_fails(BUILTIN["myogym"], tmp_path / "raw", tmp_path / "out", "raw_data_labels")


def test_split_naming_test_subject_not_in_data(tmp_path: Path) -> None:
    data, labels = myogym_arrays()
    save_v5(tmp_path / "raw" / "MyoGym.mat", data, labels)
    params = write_params(tmp_path / "params.yaml", {"myogym": {"split": {"test_subjects": [9, 11]}}})
    spec = resolve("myogym", params)
    assert spec.split.test_subjects == [9, 11] and spec.split.rule == BUILTIN["myogym"].split.rule
    assert_prepare_fails(spec, tmp_path / "raw", tmp_path / "out", "split.test_subjects", "[11]")


# ----------------------------------------------------------------------------------------------------------
# OPPORTUNITY dataset/S{1-4}-ADL{1-5}.dat, S{1-4}-Drill.dat

OPP_RUNS = {  # run -> rows
    "S1-ADL1": 100, "S1-ADL4": 80, "S1-Drill": 90, "S2-ADL1": 70, "S2-ADL4": 85,
    "S3-ADL2": 60, "S3-ADL5": 75, "S4-ADL1": 50,
}  # fmt: skip
OPP_TEST_RUNS = {"S2-ADL4", "S3-ADL5"}  # ADL4-5 of subjects 2 and 3
# 1-based columns of the 113 body-worn channels: 2-134 without each IMU's 4 quaternions (38-102, 13 per IMU)
OPP_COLUMNS_1BASED = [c for c in range(2, 135) if not (38 <= c <= 102 and (c - 38) % 13 >= 9)]
GESTURE_CYCLE = [0, 406516, 404516, 0, 405506, 407521, 406520, 408512]
LOCOMOTION_CYCLE = [1, 2, 0, 4, 5]
GAP_RUN, GAP_COLUMN = "S1-ADL1", 2  # 1-based column with NaN gaps (Accelerometer RKN^ accX)
EMPTY_RUN, EMPTY_COLUMN = "S2-ADL1", 51  # 1-based column that is NaN for a whole run (IMU RUA accX)


def opportunity_table(run: str, rows: int) -> np.ndarray:
    """[rows, 250] of one run; sensor column k (1-based) holds 1000 k plus a gesture-dependent wave."""
    seed = sorted(OPP_RUNS).index(run)
    t = np.arange(rows)
    table = np.empty((rows, 250))
    table[:, 0] = 33 * t
    gestures = np.array([GESTURE_CYCLE[(i // 13 + seed) % len(GESTURE_CYCLE)] for i in t])
    locomotion = np.array([LOCOMOTION_CYCLE[(i // 17 + seed) % len(LOCOMOTION_CYCLE)] for i in t])
    freq = 1 + 0.5 * np.array([list(OPP_GESTURES).index(g) for g in gestures])
    wave = np.round(16 * 0.4 * np.sin(2 * np.pi * np.cumsum(freq) / 30)) / 16  # exact in text and binary
    table[:, 1:243] = 1000.0 * np.arange(2, 244)[None, :] + wave[:, None]
    table[:, 243] = locomotion
    table[:, 244] = np.where(t < rows // 2, 101, 0)  # HL_Activity
    table[:, 245:249] = np.where(gestures > 0, 201, 0)[:, None]  # LL tracks
    table[:, 249] = gestures
    for imu in range(5):  # quaternions are not body-worn channels of the challenge: may be all NaN
        table[:, 37 + 13 * imu + 9 : 37 + 13 * imu + 13] = np.nan
    table[::7, 140:200] = np.nan  # ambient sensors: not selected
    if run == GAP_RUN:
        table[:, GAP_COLUMN - 1] = 2000.0 + 0.5 * t
        table[[0, 1, 2, *range(20, 30), 64], GAP_COLUMN - 1] = np.nan
    if run == EMPTY_RUN:
        table[:, EMPTY_COLUMN - 1] = np.nan
    return table


def opp_line(row: np.ndarray) -> str:
    out = []
    for c, v in enumerate(row):
        if np.isnan(v):
            out.append("NaN")
        elif c == 0 or c >= 243:
            out.append(str(int(v)))
        else:
            out.append(f"{v:.4f}".rstrip("0").rstrip("."))
    return " ".join(out)


def make_opportunity(root: Path, runs: dict[str, int] = OPP_RUNS, metadata: bool = True) -> dict:
    folder = root / "OpportunityUCIDataset" / "dataset"
    folder.mkdir(parents=True)
    tables = {}
    for run, rows in runs.items():
        table = opportunity_table(run, rows)
        tables[run] = table
        (folder / f"{run}.dat").write_text("".join(opp_line(row) + "\n" for row in table))
    if metadata and OPP_META.is_dir():
        for name in ("column_names.txt", "label_legend.txt"):
            shutil.copy(OPP_META / name, folder / name)
    return tables


def expected_opportunity(table: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    signals = table[:, [c - 1 for c in OPP_COLUMNS_1BASED]].copy()
    t = np.arange(len(signals))
    for c in range(signals.shape[1]):
        nan = np.isnan(signals[:, c])
        if nan.all():
            signals[:, c] = 0.0
        elif nan.any():
            signals[nan, c] = np.interp(t[nan], t[~nan], signals[~nan, c])
    ids = list(OPP_GESTURES if task == "gestures" else OPP_LOCOMOTION)
    raw = table[:, 249 if task == "gestures" else 243].astype(int)
    starts = range(0, len(table) - 24 + 1, 12)
    X = np.stack([signals[s : s + 24] for s in starts]).astype(np.float32)
    y = np.array([ids.index(raw[s + 23]) for s in starts])
    return X, y


def test_opportunity_column_selection() -> None:
    from har.data.formats.opportunity import body_worn_columns

    assert len(OPP_COLUMNS_1BASED) == 113
    assert [c + 1 for c in body_worn_columns()] == OPP_COLUMNS_1BASED
    spec = BUILTIN["opportunity"]
    assert spec.channels[OPP_COLUMNS_1BASED.index(GAP_COLUMN)] == "Accelerometer RKN^ accX"
    assert spec.channels[OPP_COLUMNS_1BASED.index(EMPTY_COLUMN)] == "InertialMeasurementUnit RUA accX"


@pytest.mark.parametrize("task", ["gestures", "locomotion"])
def test_opportunity_read(tmp_path: Path, task: str) -> None:
    tables = make_opportunity(tmp_path)
    spec = BUILTIN["opportunity"]
    result = read(spec, tmp_path, task=task)
    w = result.windows
    runs = sorted(r for r in OPP_RUNS if not r.startswith("S4"))  # subject 4 is not read by default
    assert sorted(result.notes["runs"]) == runs
    assert result.notes["task"] == task
    labels = OPP_GESTURES if task == "gestures" else OPP_LOCOMOTION
    assert result.classes == list(labels.values())
    counts = {r: n_windows(OPP_RUNS[r], 24, 12) for r in runs}
    assert counts == {
        "S1-ADL1": 7, "S1-ADL4": 5, "S1-Drill": 6, "S2-ADL1": 4, "S2-ADL4": 6, "S3-ADL2": 4, "S3-ADL5": 5,
    }  # fmt: skip
    assert len(w) == 37 and w.X.shape == (37, 24, 113) and w.X.dtype == np.float32

    expected = [expected_opportunity(tables[r], task) for r in result.notes["runs"]]
    np.testing.assert_array_equal(w.X, np.concatenate([x for x, _ in expected]))
    np.testing.assert_array_equal(w.y, np.concatenate([y for _, y in expected]))
    order = result.notes["runs"]
    np.testing.assert_array_equal(
        w.subject, np.repeat([int(r[1]) for r in order], [counts[r] for r in order])
    )
    np.testing.assert_array_equal(
        w.test, np.repeat([r in OPP_TEST_RUNS for r in order], [counts[r] for r in order])
    )

    # channel k holds 1000 x its 1-based column (except the gap and zero-filled ones)
    first = np.round(w.X[0, 0] / 1000).astype(int)
    assert first.tolist() == OPP_COLUMNS_1BASED
    # the gap channel is the linear ramp 2000 + 0.5 t again; the leading NaNs take the first value
    gap = order.index(GAP_RUN)
    start = sum(counts[r] for r in order[:gap])
    ramp = w.X[start : start + counts[GAP_RUN], :, OPP_COLUMNS_1BASED.index(GAP_COLUMN)]
    t = np.arange(24)[None, :] + 12 * np.arange(counts[GAP_RUN])[:, None]
    np.testing.assert_array_equal(ramp, np.maximum(2000 + 0.5 * t, 2001.5).astype(np.float32))
    # the channel missing for the whole of S2-ADL1 is zero there, and reported
    empty = order.index(EMPTY_RUN)
    start = sum(counts[r] for r in order[:empty])
    channel = OPP_COLUMNS_1BASED.index(EMPTY_COLUMN)
    assert (w.X[start : start + counts[EMPTY_RUN], :, channel] == 0).all()
    assert (w.X[:start, :, channel] != 0).all()
    assert result.notes["zero_filled_channels"] == {"S2-ADL1.dat": ["InertialMeasurementUnit RUA accX"]}

    # window label = label of the last sample; the class is the sine's frequency (gestures)
    if task == "gestures":
        assert {int(v) for v in np.unique(w.y)} == {list(OPP_GESTURES).index(g) for g in GESTURE_CYCLE}
    else:
        assert {int(v) for v in np.unique(w.y)} == {0, 1, 2, 3, 4}


def test_opportunity_split(tmp_path: Path) -> None:
    make_opportunity(tmp_path / "raw")
    spec = BUILTIN["opportunity"]
    w = read(spec, tmp_path / "raw").windows
    split = assign_split(w, spec.split)
    assert split.keep.all()
    assert split.info["by"] == "recording"
    assert split.info["windows"] == {"train": 26, "test": 11}
    assert split.info["train_subjects"] == [1, 2, 3] and split.info["test_subjects"] == [2, 3]
    assert not split.test[w.subject == 1].any()

    target = prepare(spec, tmp_path / "raw", tmp_path / "out")
    meta = load_prepared(target).meta
    assert meta["split"]["windows"] == {"train": 26, "test": 11}
    assert meta["options"] == {"task": "gestures", "subjects": [1, 2, 3], "nan_only_channels": "zero"}
    assert meta["notes"]["zero_filled_channels"] == {"S2-ADL1.dat": ["InertialMeasurementUnit RUA accX"]}
    assert meta["classes"][0] == "Null" and len(meta["classes"]) == 18

    with_s4 = read(spec, tmp_path / "raw", subjects=[1, 2, 3, 4])
    assert len(with_s4.windows) == 37 + n_windows(OPP_RUNS["S4-ADL1"], 24, 12)
    assert 4 in with_s4.windows.subject


def test_opportunity_nan_only_channel_error(tmp_path: Path) -> None:
    make_opportunity(tmp_path / "raw")
    params = write_params(
        tmp_path / "params.yaml", {"opportunity": {"options": {"nan_only_channels": "error"}}}
    )
    spec = resolve("opportunity", params)
    assert_prepare_fails(
        spec, tmp_path / "raw", tmp_path / "out", "S2-ADL1.dat", "'InertialMeasurementUnit RUA accX'"
    )


def test_opportunity_unknown_label_id(tmp_path: Path) -> None:
    tables = make_opportunity(tmp_path / "raw", metadata=False)
    table = tables["S3-ADL2"].copy()
    table[30, 249] = 406599
    path = tmp_path / "raw/OpportunityUCIDataset/dataset/S3-ADL2.dat"
    path.write_text("".join(opp_line(row) + "\n" for row in table))
    assert_prepare_fails(BUILTIN["opportunity"], tmp_path / "raw", tmp_path / "out", "S3-ADL2.dat", "406599")


def test_opportunity_row_with_249_columns(tmp_path: Path) -> None:
    make_opportunity(tmp_path / "raw", metadata=False)
    path = tmp_path / "raw/OpportunityUCIDataset/dataset/S1-ADL4.dat"
    lines = path.read_text().splitlines()
    lines[40] = lines[40].rsplit(" ", 1)[0]  # a truncated row: 249 values
    assert len(lines[40].split()) == 249
    path.write_text("\n".join(lines) + "\n")
    assert_prepare_fails(BUILTIN["opportunity"], tmp_path / "raw", tmp_path / "out", "S1-ADL4.dat", "row 41")


def test_opportunity_file_with_249_columns(tmp_path: Path) -> None:
    make_opportunity(tmp_path / "raw", metadata=False)
    path = tmp_path / "raw/OpportunityUCIDataset/dataset/S2-Drill.dat"
    path.write_text("".join(opp_line(row[:249]) + "\n" for row in opportunity_table("S1-Drill", 40)))
    assert_prepare_fails(
        BUILTIN["opportunity"], tmp_path / "raw", tmp_path / "out", "S2-Drill.dat", "expected 250 columns"
    )


@needs_opp_meta
def test_opportunity_checks_real_column_names(tmp_path: Path) -> None:
    make_opportunity(tmp_path / "raw")
    folder = tmp_path / "raw/OpportunityUCIDataset/dataset"
    assert (folder / "column_names.txt").is_file() and (folder / "label_legend.txt").is_file()
    legend = (folder / "label_legend.txt").read_text()
    for label_id, name in list(OPP_GESTURES.items())[1:] + list(OPP_LOCOMOTION.items())[1:]:
        assert f"{label_id}   -   " in legend and name in legend
    read(BUILTIN["opportunity"], tmp_path / "raw")  # the real column names match the selection
    names = folder / "column_names.txt"
    names.write_text(names.read_text().replace("Column: 51 InertialMeasurementUnit RUA accX", "Column: 51 X"))
    assert_prepare_fails(BUILTIN["opportunity"], tmp_path / "raw", tmp_path / "out", "column_names.txt", "51")


# ----------------------------------------------------------------------------------------------------------
# custom: dataset.yaml + one CSV / Parquet file per recording

CUSTOM_YAML = {
    "title": "toy recordings",
    "rate_hz": 20,
    "groups": {"acc": ["ax", "ay", "az"], "gyro": ["gz"]},
    "classes": ["sit", "walk", "run"],
    "window": {"size": 20, "step": 10, "label": "majority"},
    "split": {"rule": "subject 3 is test", "test_subjects": [3]},
}
CUSTOM_CHANNELS = ["ax", "ay", "az", "gz"]
CUSTOM_FILES = {  # file -> segments (subject, label or None, samples)
    "s01.csv": [
        (1, "walk", 33),
        (1, "sit", 28),
        (1, None, 12),
        (1, "run", 41),
        (2, "run", 24),
        (2, "sit", 45),
    ],
    "s03.parquet": [(3, "sit", 38), (3, "walk", 44), (3, "run", 23)],
}
FREQ = {"sit": 0.5, "walk": 2.0, "run": 4.0, "jump": 3.0, None: 1.0}


def custom_table(segments, shuffle: bool = True) -> pd.DataFrame:
    subject = np.concatenate([np.full(n, s) for s, _, n in segments])
    label = [lab for _, lab, n in segments for _ in range(n)]
    freq = np.array([FREQ[lab] for lab in label])
    wave = np.sin(2 * np.pi * np.cumsum(freq) / 20)
    columns = {ch: 100.0 * (i + 1) + wave * (i + 1) for i, ch in enumerate(CUSTOM_CHANNELS)}
    frame = pd.DataFrame({**columns, "label": label, "subject": subject, "note": "x"})
    if shuffle:  # columns in any order: the reader selects them by name
        frame = frame[["subject", "gz", "label", "ax", "note", "az", "ay"]]
    return frame


def make_custom(
    folder: Path, files=CUSTOM_FILES, spec_file: dict | None = CUSTOM_YAML
) -> dict[str, pd.DataFrame]:
    folder.mkdir(parents=True, exist_ok=True)
    if spec_file is not None:
        (folder / "dataset.yaml").write_text(yaml.safe_dump(spec_file, sort_keys=False))
    tables = {}
    for name, segments in files.items():
        table = custom_table(segments)
        tables[name] = table
        if name.endswith(".parquet"):
            table.to_parquet(folder / name)
        else:
            table.to_csv(folder / name, index=False)
    return tables


def expected_custom(tables: dict[str, pd.DataFrame], classes: list[str], size: int = 20, step: int = 10):
    xs, ys, subjects = [], [], []
    for name in sorted(tables):
        table = tables[name]
        for sid in pd.unique(table["subject"]):  # one recording per run of a subject
            part = table[table["subject"] == sid]
            signals = part[CUSTOM_CHANNELS].to_numpy()
            labels = [-1 if pd.isna(v) else classes.index(v) for v in part["label"]]
            for s in range(0, len(part) - size + 1, step):
                ranked = Counter(labels[s : s + size]).most_common()
                assert len(ranked) == 1 or ranked[0][1] > ranked[1][1], "test data must avoid ties"
                if ranked[0][0] == -1:
                    continue
                xs.append(signals[s : s + size])
                ys.append(ranked[0][0])
                subjects.append(int(sid))
    return np.stack(xs).astype(np.float32), np.array(ys), np.array(subjects)


def custom_params(tmp_path: Path, folder: Path, **extra: object) -> Path:
    return write_params(
        tmp_path / "params.yaml", {"toy": {"format": "custom", "source": str(folder), **extra}}
    )


def test_custom_read_and_prepare(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    tables = make_custom(folder)
    spec = resolve("toy", custom_params(tmp_path, folder))
    assert spec.format == "custom" and spec.channels == CUSTOM_CHANNELS
    assert spec.classes == ["sit", "walk", "run"]
    result = read(spec, folder)
    w = result.windows
    X, y, subject = expected_custom(tables, spec.classes)
    assert result.classes == ["sit", "walk", "run"]  # the declared order, not sorted
    assert result.notes == {"files": 2}
    np.testing.assert_array_equal(w.X, X)
    np.testing.assert_array_equal(w.y, y)
    np.testing.assert_array_equal(w.subject, subject)
    assert w.X.shape[1:] == (20, 4)
    # s01.csv holds subject 1 (114 samples: 10 windows, one mostly unlabelled, dropped) and subject 2
    # (69 samples: 5 windows); windows never cross the subject change (the 183 samples would give 17)
    assert np.bincount(w.subject).tolist() == [0, 9, 5, 9]
    assert np.bincount(w.y).tolist() == [9, 8, 6]  # sit, walk, run
    assert np.round(w.X[0, 0] / 100).astype(int).tolist() == [1, 2, 3, 4]  # ax, ay, az, gz

    target = prepare(spec, folder, tmp_path / "out")
    meta = load_prepared(target).meta
    assert meta["classes"] == ["sit", "walk", "run"]
    assert meta["split"]["train_subjects"] == [1, 2] and meta["split"]["test_subjects"] == [3]
    assert meta["split"]["windows"] == {"train": 14, "test": 9}
    assert meta["options"] == {
        "label_column": "label",
        "subject_column": "subject",
        "files": spec.options["files"],
    }


def test_custom_classes_default_to_sorted_labels(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    make_custom(folder, spec_file={k: v for k, v in CUSTOM_YAML.items() if k != "classes"})
    spec = resolve("toy", custom_params(tmp_path, folder))
    result = read(spec, folder)
    assert result.classes == ["run", "sit", "walk"]


def test_custom_params_window_override(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    tables = make_custom(folder)
    params = custom_params(tmp_path, folder, window={"size": 10, "step": 5, "label": "majority"})
    spec = resolve("toy", params)
    assert spec.window.size == 10
    X, y, _ = expected_custom(tables, spec.classes, size=10, step=5)
    w = read(spec, folder).windows
    np.testing.assert_array_equal(w.X, X)
    np.testing.assert_array_equal(w.y, y)


def test_custom_missing_channel_column(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    make_custom(folder)
    custom_table([(4, "run", 30)]).drop(columns=["az"]).to_csv(folder / "s04.csv", index=False)
    spec = resolve("toy", custom_params(tmp_path, folder))
    assert_prepare_fails(spec, folder, tmp_path / "out", "s04.csv", "'az'")


def test_custom_label_not_in_classes(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    make_custom(folder, files={**CUSTOM_FILES, "s05.csv": [(5, "walk", 30), (5, "jump", 25)]})
    spec = resolve("toy", custom_params(tmp_path, folder))
    assert_prepare_fails(spec, folder, tmp_path / "out", "s05.csv", "'jump'")


def test_custom_with_one_class_in_training_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    one = {"s01.csv": [(1, "walk", 60), (2, "walk", 60)], "s03.csv": [(3, "walk", 60)]}
    make_custom(folder, files=one)
    spec = resolve("toy", custom_params(tmp_path, folder))
    assert_prepare_fails(
        spec, folder, tmp_path / "out", "dataset toy", "1 class(es) ['walk']", "at least two"
    )


def test_custom_test_class_never_seen_in_training_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    files = {"s01.csv": [(1, "walk", 60), (2, "sit", 60)], "s03.csv": [(3, "walk", 40), (3, "run", 40)]}
    make_custom(folder, files=files)
    spec = resolve("toy", custom_params(tmp_path, folder))
    assert_prepare_fails(spec, folder, tmp_path / "out", "dataset toy", "['run']", "no training subject")


def test_custom_missing_dataset_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    make_custom(folder, spec_file=None)
    with pytest.raises(BadInput, match=r"toy/dataset\.yaml: missing"):
        resolve("toy", custom_params(tmp_path, folder))


def test_custom_unknown_key_in_params_entry(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    make_custom(folder)
    with pytest.raises(BadInput, match=r"datasets\.toy\.windw"):
        resolve("toy", custom_params(tmp_path, folder, windw={"size": 10}))


def test_custom_unknown_key_in_dataset_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    make_custom(folder, spec_file={**CUSTOM_YAML, "rate": 20})
    with pytest.raises(BadInput, match=r"dataset\.yaml.*rate"):
        resolve("toy", custom_params(tmp_path, folder))


# ----------------------------------------------------------------------------------------------------------
# leakage: no subject on both sides of a subject-wise split, for every reader


def _leakage_case(tmp_path: Path, name: str) -> tuple[DatasetSpec, Path]:
    root = tmp_path / name
    if name == "uci_hapt":
        make_uci_hapt(root)
        return with_split(BUILTIN["uci_hapt"], [2]), root
    if name == "uci_har":
        make_uci_har(root)
        return BUILTIN["uci_har"], root
    if name == "myogym":
        save_v73(root / "MyoGym.mat", *myogym_arrays())
        return BUILTIN["myogym"], root
    if name == "opportunity":
        make_opportunity(root, metadata=False)
        return BUILTIN["opportunity"], root
    if name == "custom":
        make_custom(root)
        return resolve("toy", custom_params(tmp_path, root)), root
    if not (WATCH / "watch_dataset.npy.gz").is_file():
        pytest.skip(f"the seglearn watch_dataset.npy.gz is not at {WATCH}")
    return BUILTIN["watch"], WATCH


@pytest.mark.parametrize("name", ["uci_hapt", "uci_har", "myogym", "opportunity", "custom", "watch"])
def test_no_subject_in_both_train_and_test(tmp_path: Path, name: str) -> None:
    spec, root = _leakage_case(tmp_path, name)
    w = read(spec, root).windows
    split = assign_split(w, spec.split)
    train = set(w.subject[split.keep & ~split.test].tolist())
    test = set(w.subject[split.keep & split.test].tolist())
    assert train and test
    if split.info["by"] == "subject":
        assert not train & test
        assert test == set(spec.split.test_subjects)
        for train_mask, held_out in fold_masks(w.subject, spec.split.folds):
            assert not set(w.subject[train_mask].tolist()) & set(w.subject[held_out].tolist())
    elif name == "uci_har":  # split by the publisher's folders, which are subject-wise
        assert not train & test
    else:  # opportunity's challenge protocol splits by run: ADL4-5 of subjects 2, 3 are test
        assert name == "opportunity"
        assert test <= set(spec.split.test_subjects) and 1 not in test
    assert split.info["train_subjects"] == sorted(train)
    assert split.info["test_subjects"] == sorted(test)


def test_custom_numeric_labels_with_blanks_compare_as_integers(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    spec_file = {**CUSTOM_YAML, "classes": ["1", "2"]}
    make_custom(folder, files={}, spec_file=spec_file)
    table = custom_table([(1, "sit", 40), (1, None, 5), (1, "walk", 40), (3, "sit", 40), (3, "walk", 40)])
    table["label"] = table["label"].map({"sit": 1, "walk": 2})  # numeric column with blanks -> floats
    table.to_csv(folder / "numeric.csv", index=False)
    spec = resolve("toy", custom_params(tmp_path, folder))
    result = read(spec, folder)
    assert result.classes == ["1", "2"]
    assert set(np.unique(result.windows.y)) == {0, 1}


def test_custom_source_is_relative_to_params_file(tmp_path: Path) -> None:
    make_custom(tmp_path / "project" / "recordings")
    params = write_params(
        tmp_path / "project" / "params.yaml", {"toy": {"format": "custom", "source": "recordings"}}
    )
    spec = resolve("toy", params)
    assert Path(spec.bundled) == tmp_path / "project" / "recordings"


def test_custom_dataset_yaml_must_be_a_mapping(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    make_custom(folder)
    (folder / "dataset.yaml").write_text("- rate_hz\n- groups\n")
    with pytest.raises(BadInput, match=r"dataset\.yaml: expected a mapping"):
        resolve("toy", custom_params(tmp_path, folder))
