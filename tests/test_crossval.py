"""Leave-subjects-out cross-validation: fold construction, the training-subject pool that never loads
test subjects, the declared folds of the real watch set, and ``har cv`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from har.data.prepared import load_prepared
from har.errors import BadInput
from har.train.crossval import subject_folds
from har.train.data import load_train_data
from tests.cli_helpers import REPO, har, har_in_process, one_line_error, sample_project

SHARED = REPO.parent / "shared" / "datasets"
TINY = ("-m", "lstm", "-H", "hidden=8", "-H", "layers=1", "--epochs", "1")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch project with params.yaml, the bundled sample, and uci_hapt_sample fetched + prepared."""
    return sample_project(tmp_path_factory.mktemp("cv"))


def test_subject_folds_partition_the_subjects_evenly_and_reproducibly() -> None:
    subjects = [1, 3, 5, 6, 7, 8, 11, 14, 15, 16, 17]
    folds = subject_folds(subjects, 3, seed=0)
    assert sorted(s for f in folds for s in f) == subjects
    assert sorted(len(f) for f in folds) == [3, 4, 4]
    assert folds == subject_folds(subjects, 3, seed=0)
    assert folds != subject_folds(subjects, 3, seed=1)
    for k in (1, 12):
        with pytest.raises(BadInput, match=f"--folds {k}"):
            subject_folds(subjects, k)


def test_a_training_pool_fold_never_loads_the_test_subjects(project: Path) -> None:
    prepared = project / "data" / "prepared"
    raw = load_prepared(prepared / "uci_hapt_sample")
    train_windows = int((~raw.test).sum())
    data = load_train_data(prepared, "uci_hapt_sample", held_out=[3], pool="train")
    counts = {name: len(y) for name, (_, y) in data.splits.items()}
    assert sum(counts.values()) == train_windows  # the official test subjects 2 and 4 are not there
    assert counts["test"] == int((raw.subject == 3).sum())
    assert 3 not in data.val_subjects and set(data.val_subjects) <= {1, 5}
    # normalisation is fitted on the fold's training windows only
    fold_train = raw.X[~raw.test & ~np.isin(raw.subject, [3, *data.val_subjects])]
    assert np.allclose(data.mean, fold_train.reshape(-1, fold_train.shape[-1]).mean(axis=0), atol=1e-4)
    with pytest.raises(BadInput, match=r"held-out subjects \[2\] must be a non-empty subset"):
        load_train_data(prepared, "uci_hapt_sample", held_out=[2], pool="train")
    everyone = load_train_data(prepared, "uci_hapt_sample", held_out=[2], pool="all")
    assert sum(len(y) for _, y in everyone.splits.values()) == len(raw.y)


def test_har_cv_over_training_subjects(project: Path) -> None:
    proc = har("cv", "-d", "uci_hapt_sample", *TINY, "--folds", "3", "-o", "cv/out.json", "--probs-out",
               "cv/out.npz", cwd=project, extra_env=ONE_THREAD)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads((project / "cv" / "out.json").read_text())
    held_out = [s for fold in record["folds"] for s in fold["held_out"]]
    assert sorted(held_out) == [1, 3, 5] and record["pool"] == "train"  # never the test subjects 2, 4
    for fold in record["folds"]:
        assert not set(fold["val_subjects"]) & set(fold["held_out"])
    accuracies = [fold["accuracy"] for fold in record["folds"]]
    assert record["summary"]["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    raw = load_prepared(project / "data" / "prepared" / "uci_hapt_sample")
    assert sum(fold["windows"] for fold in record["folds"]) == int((~raw.test).sum())
    assert f"{np.mean(accuracies):.4f} +- {np.std(accuracies):.4f}" in proc.stdout
    # --probs-out: every held-out window's probabilities, from the very models the record scored
    kept = np.load(project / "cv" / "out.npz")
    assert len(kept["probs"]) == sum(fold["windows"] for fold in record["folds"])
    assert np.allclose(kept["probs"].sum(axis=1), 1, atol=1e-5)
    for i, fold in enumerate(record["folds"]):
        mine = kept["fold"] == i
        assert sorted(np.unique(kept["subjects"][mine]).tolist()) == fold["held_out"]
        hits = kept["probs"][mine].argmax(axis=1) == kept["labels"][mine]
        assert hits.mean() == pytest.approx(fold["accuracy"], abs=1e-9)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--folds", "3", "--declared-folds"), "give either --folds K"),
        ((), "give either --folds K"),
        (("--folds", "1"), "--folds 1: choose between 2 and"),
        (("--declared-folds",), "uci_hapt_sample: declares no folds"),
        (("--folds", "3", "--probs-out", "cv/probs.json"), "give a file name ending in .npz"),
    ],
)
def test_har_cv_bad_input_exits_2(project: Path, args: tuple[str, ...], expected: str) -> None:
    proc = har_in_process("cv", "-d", "uci_hapt_sample", *TINY, *args, "-o", "cv/bad.json", cwd=project)
    assert proc.returncode == 2
    assert expected in one_line_error(proc)
    assert not (project / "cv" / "bad.json").exists()


@pytest.mark.skipif(not (SHARED / "watch").is_dir(), reason=f"real datasets not found at {SHARED}")
def test_har_cv_declared_folds_of_the_real_watch_set(project: Path) -> None:
    assert har("data", "fetch", "watch", "--mirror", str(SHARED), cwd=project).returncode == 0
    assert har("data", "prepare", "watch", cwd=project).returncode == 0
    proc = har("cv", "-d", "watch", *TINY, "--declared-folds", "-o", "cv/watch.json", cwd=project,
               extra_env=ONE_THREAD)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads((project / "cv" / "watch.json").read_text())
    assert [fold["held_out"] for fold in record["folds"]] == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    assert record["pool"] == "all"
    raw = load_prepared(project / "data" / "prepared" / "watch")
    assert sum(fold["windows"] for fold in record["folds"]) == len(raw.y)  # every window held out once
