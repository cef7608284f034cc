"""window.train_step: denser training-only windows on the bundled sample, scored windows unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from har.data.prepared import EXTRA_FILE, load_prepared
from har.train.data import load_train_data
from tests.cli_helpers import har, har_in_process, one_line_error, sample_project

DATASET = "uci_hapt_sample"


def set_train_step(project: Path, value: object) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"][DATASET]["window"]["train_step"] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_project(tmp_path_factory.mktemp("train_step"))


def test_dense_training_windows_leave_validation_and_test_untouched(project: Path) -> None:
    prepared = project / "data" / "prepared"
    plain = load_train_data(prepared, DATASET)
    plain_meta = load_prepared(prepared / DATASET).meta
    set_train_step(project, 16)  # step 64: three extra windows between two grid windows
    proc = har("data", "prepare", DATASET, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "used for training only" in proc.stdout
    assert (prepared / DATASET / EXTRA_FILE).is_file()
    dense = load_train_data(prepared, DATASET)
    meta = load_prepared(prepared / DATASET).meta
    assert meta["split"]["windows"] == plain_meta["split"]["windows"]  # counts are of scored windows
    assert meta["class_counts"] == plain_meta["class_counts"]
    for split in ("val", "test"):  # the same windows, the same labels (normalisation refitted)
        x_plain, y_plain = plain.splits[split]
        x_dense, y_dense = dense.splits[split]
        assert np.array_equal(y_plain, y_dense)
        np.testing.assert_allclose(
            x_plain * plain.std + plain.mean, x_dense * dense.std + dense.mean, atol=1e-4
        )
    n_plain, n_dense = len(plain.splits["train"][1]), len(dense.splits["train"][1])
    assert 3.5 * n_plain < n_dense < 4 * n_plain  # about 4x (fewer where a segment ends)
    info = har("data", "info", DATASET, cwd=project)
    assert info.returncode == 0 and "window.train_step" in info.stdout
    set_train_step(project, None)  # back to the step grid alone: the extra file goes
    assert har("data", "prepare", DATASET, cwd=project).returncode == 0
    assert not (prepared / DATASET / EXTRA_FILE).exists()


def test_a_train_step_that_does_not_divide_step_is_exit_2(project: Path) -> None:
    set_train_step(project, 48)
    try:
        proc = har_in_process("data", "prepare", DATASET, cwd=project)
    finally:
        set_train_step(project, None)
    assert proc.returncode == 2
    message = one_line_error(proc)
    assert "datasets.uci_hapt_sample" in message and "train_step 48 must divide step 64" in message
