"""The readers on the real files of ../shared/datasets (skipped, with the reason, where it is absent)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from har.data.fetch import fetch
from har.data.prepare import prepare
from har.data.prepared import load_prepared
from har.data.registry import BUILTIN, UCI_TEST, UCI_TRAIN
from har.errors import BadInput

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
needs_shared = pytest.mark.skipif(
    not (SHARED / "uci_hapt" / "RawData").is_dir(), reason=f"real datasets not found at {SHARED}"
)

# Official UCI HAPT window counts per class (SOURCE.md of the dataset), classes 1-12.
HAPT_TRAIN = [1226, 1073, 987, 1293, 1423, 1413, 47, 23, 75, 60, 90, 57]
HAPT_TEST = [496, 471, 420, 508, 556, 545, 23, 10, 32, 25, 49, 27]
UCI_HAR_WINDOWS = {"train": 7352, "test": 2947}


@pytest.fixture(scope="module")
def hapt_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    return fetch(BUILTIN["uci_hapt"], raw, mirror=SHARED, show_progress=False)


@needs_shared
@pytest.mark.slow
def test_uci_hapt_reproduces_uci_har_windows(hapt_raw: Path, tmp_path: Path) -> None:
    out = prepare(BUILTIN["uci_hapt"], hapt_raw, tmp_path)
    data = load_prepared(out)
    meta = data.meta
    assert data.X.shape[1:] == (128, 9) and data.X.dtype == np.float32
    assert meta["channels"][:3] == ["total_acc_x", "total_acc_y", "total_acc_z"]
    # same subjects on each side as UCI HAR, and no subject on both sides
    assert sorted(np.unique(data.subject[~data.test])) == UCI_TRAIN
    assert sorted(np.unique(data.subject[data.test])) == UCI_TEST
    # window counts: within 5% of UCI HAR's, and per class exactly the official HAPT windows
    for part, mask in (("train", ~data.test), ("test", data.test)):
        ratio = mask.sum() / UCI_HAR_WINDOWS[part]
        assert 0.95 <= ratio <= 1.05, f"{part}: {mask.sum()} windows vs UCI HAR {UCI_HAR_WINDOWS[part]}"
    assert meta["reference_windows"]["published"] == UCI_HAR_WINDOWS
    assert all(abs(v) <= 5 for v in meta["reference_windows"]["difference_pct"].values())
    assert np.bincount(data.y[~data.test]).tolist() == HAPT_TRAIN[:6]
    assert np.bincount(data.y[data.test]).tolist() == HAPT_TEST[:6]
    # the filters did their job: gravity gone from body_acc, |total_acc| ~ 1 g when lying still
    X = np.asarray(data.X)
    lying = data.y == meta["classes"].index("LAYING")
    assert abs(np.linalg.norm(X[lying][:, :, 0:3], axis=-1).mean() - 1.0) < 0.03
    assert np.abs(X[:, :, 3:6].mean(axis=1)).mean() < 0.02
    # normalisation fitted on the training windows only
    train_flat = X[~data.test].reshape(-1, 9).astype(np.float64)
    np.testing.assert_allclose(meta["normalization"]["mean"], train_flat.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(meta["normalization"]["std"], train_flat.std(0), rtol=1e-5, atol=1e-6)


@needs_shared
@pytest.mark.slow
def test_uci_hapt_all_twelve_activities(hapt_raw: Path, tmp_path: Path) -> None:
    spec = BUILTIN["uci_hapt"].model_copy(deep=True)
    spec.options["activities"] = "all"
    data = load_prepared(prepare(spec, hapt_raw, tmp_path))
    assert len(data.meta["classes"]) == 12
    assert np.bincount(data.y[~data.test], minlength=12).tolist() == HAPT_TRAIN
    assert np.bincount(data.y[data.test], minlength=12).tolist() == HAPT_TEST


@needs_shared
def test_prepare_is_deterministic(tmp_path: Path) -> None:
    raw = fetch(BUILTIN["uci_hapt_sample"], tmp_path / "raw", repo_root=Path(__file__).parents[1])
    a = prepare(BUILTIN["uci_hapt_sample"], raw, tmp_path / "a")
    b = prepare(BUILTIN["uci_hapt_sample"], raw, tmp_path / "b")
    for name in ("X.npy", "y.npy", "subject.npy", "split.npy", "meta.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@needs_shared
def test_watch_real(tmp_path: Path) -> None:
    raw = fetch(BUILTIN["watch"], tmp_path / "raw", mirror=SHARED, show_progress=False)
    data = load_prepared(prepare(BUILTIN["watch"], raw, tmp_path / "prepared"))
    assert data.X.shape[1:] == (100, 6)
    assert data.meta["classes"] == ["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"]
    assert sorted(np.unique(data.subject[data.test])) == [9, 10]
    assert sorted(np.unique(data.subject[~data.test])) == list(range(1, 9))
    assert set(np.unique(data.y)) == set(range(7))
    # accelerometer in g: |acc| averages a little over 1 g (gravity plus the exercise's motion)
    acc = np.asarray(data.X[:, :, :3]).reshape(-1, 3)
    assert 1.0 < np.linalg.norm(acc, axis=1).mean() < 1.3


@needs_shared
def test_watch_refuses_to_unpickle_a_tampered_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "watch"
    raw.mkdir(parents=True)
    content = gzip.decompress((SHARED / "watch" / "watch_dataset.npy.gz").read_bytes())
    (raw / "watch_dataset.npy").write_bytes(content[:-1] + b"\x00")
    with pytest.raises(BadInput, match="refusing to unpickle"):
        prepare(BUILTIN["watch"], raw, tmp_path / "prepared")
    assert not (tmp_path / "prepared" / "watch").exists()


@needs_shared
def test_uci_har_mirror_without_inertial_signals_is_a_clear_error(tmp_path: Path) -> None:
    """The shared UCI HAR copy has labels only: fetch verifies them, prepare names what is missing."""
    raw = fetch(BUILTIN["uci_har"], tmp_path / "raw", mirror=SHARED, show_progress=False)
    with pytest.raises(BadInput, match="Inertial Signals"):
        prepare(BUILTIN["uci_har"], raw, tmp_path / "prepared")
    assert not (tmp_path / "prepared" / "uci_har").exists()
    shutil.rmtree(raw)
