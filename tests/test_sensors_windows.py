"""Sensor permutations, window labelling rules and leave-subjects-out folds on small exact cases."""

from __future__ import annotations

import numpy as np
import pytest

from har.data.spec import WindowSpec
from har.data.splits import fold_masks
from har.data.windows import UNLABELLED, Recording, cut_windows, training_window_starts, window_starts
from har.errors import BadInput
from har.sensors import canonical, channels_of, parse_permutation, permutations

GROUPS = {"emg": ["e1", "e2"], "acc": ["ax", "ay", "az"], "gyro": ["gx"]}
CHANNELS = ["e1", "e2", "ax", "ay", "az", "gx"]


def test_permutation_order_is_the_datasets_not_the_users() -> None:
    assert parse_permutation("gyro+emg", GROUPS) == ["emg", "gyro"]
    assert canonical("gyro+emg", GROUPS) == "emg+gyro"
    assert canonical("all", GROUPS) == "all"
    assert channels_of("acc+emg", GROUPS, CHANNELS) == [0, 1, 2, 3, 4]
    assert channels_of("all", GROUPS, CHANNELS) == list(range(6))


def test_all_permutations_listed() -> None:
    perms = permutations(GROUPS)
    assert perms[:3] == ["emg", "acc", "gyro"] and perms[-1] == "all"
    assert len(perms) == 2**3 - 1 + 1
    assert "emg+acc+gyro" in perms


@pytest.mark.parametrize("expr", ["emg+mag", "acc+acc", "", "emg+"])
def test_bad_permutations(expr: str) -> None:
    with pytest.raises(BadInput, match="sensor"):
        parse_permutation(expr, GROUPS, "toy")


def test_segment_windows_stay_inside_labelled_segments() -> None:
    labels = np.array([0] * 10 + [UNLABELLED] * 3 + [1] * 7 + [2] * 4)
    starts, y = window_starts(labels, WindowSpec(size=4, step=2, label="segment"))
    assert starts.tolist() == [0, 2, 4, 6, 13, 15, 20]
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 2]


def test_last_and_majority_labels() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1, UNLABELLED, UNLABELLED, UNLABELLED])
    starts, y = window_starts(labels, WindowSpec(size=4, step=3, label="last"))
    assert starts.tolist() == [0, 3] and y.tolist() == [1, 1]  # window 6-9 ends unlabelled: dropped
    starts, y = window_starts(labels, WindowSpec(size=4, step=3, label="majority"))
    assert starts.tolist() == [0, 3] and y.tolist() == [0, 1]


def test_windows_never_cross_recordings() -> None:
    recs = [
        Recording("a", 1, np.arange(10, dtype=float)[:, None], np.zeros(10, dtype=np.int64)),
        Recording("b", 2, 100 + np.arange(6, dtype=float)[:, None], np.zeros(6, dtype=np.int64)),
    ]
    w = cut_windows(recs, WindowSpec(size=4, step=2))
    assert w.X[:, :, 0].tolist() == [
        [0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9], [100, 101, 102, 103], [102, 103, 104, 105]
    ]  # fmt: skip
    assert w.subject.tolist() == [1, 1, 1, 1, 2, 2] and w.test is None


def test_train_step_adds_training_windows_between_the_grid_windows() -> None:
    labels = np.array([0] * 10 + [UNLABELLED] * 3 + [1] * 7 + [2] * 4)
    spec = WindowSpec(size=4, step=4, train_step=2, label="segment")
    grid, grid_y = window_starts(labels, spec)
    starts, y, extra = training_window_starts(labels, spec)
    assert grid.tolist() == [0, 4, 13, 20]
    assert starts.tolist() == [0, 2, 4, 6, 13, 15, 20]  # every 2 samples, still inside each segment
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert starts[~extra].tolist() == grid.tolist() and y[~extra].tolist() == grid_y.tolist()
    for rule in ("last", "majority"):  # the same holds for the whole-recording rules
        spec = WindowSpec(size=4, step=6, train_step=3, label=rule)
        starts, _, extra = training_window_starts(labels, spec)
        assert starts[~extra].tolist() == window_starts(labels, spec)[0].tolist()
        assert (starts[extra] % 6 == 3).all()


def test_cut_windows_flags_the_extra_windows_only_with_train_step() -> None:
    rec = Recording("a", 1, np.arange(12, dtype=float)[:, None], np.zeros(12, dtype=np.int64))
    assert cut_windows([rec], WindowSpec(size=4, step=4)).extra is None
    w = cut_windows([rec], WindowSpec(size=4, step=4, train_step=2))
    assert w.X[:, 0, 0].tolist() == [0, 2, 4, 6, 8]
    assert w.extra.tolist() == [False, True, False, True, False]


@pytest.mark.parametrize("train_step", [3, 8, 0])
def test_train_step_must_divide_step(train_step: int) -> None:
    with pytest.raises(ValueError, match="train_step"):
        WindowSpec(size=8, step=4, train_step=train_step)


def test_window_longer_than_every_segment_is_a_clear_error() -> None:
    rec = Recording("a", 1, np.zeros((10, 1)), np.zeros(10, dtype=np.int64))
    with pytest.raises(BadInput, match=r"window\.size"):
        cut_windows([rec], WindowSpec(size=20, step=10))


def test_leave_subjects_out_folds_hold_out_whole_subjects() -> None:
    subject = np.array([1, 1, 2, 3, 3, 4])
    folds = fold_masks(subject, [[1, 2], [3, 4]])
    for train, held in folds:
        assert not set(subject[train]) & set(subject[held])
    assert folds[0][1].tolist() == [True, True, True, False, False, False]
