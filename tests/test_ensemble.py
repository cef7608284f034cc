"""Ensembles of checkpoints (``har.train.ensemble``, ``har evaluate A B ...``) on the real prepared
uci_hapt_sample: the mean of the members' probabilities, each member normalising with its own statistics,
and members that read other data refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from har.errors import BadInput
from har.train.checkpoint import load_checkpoint, save_checkpoint
from har.train.data import load_train_data
from har.train.ensemble import load_members, mean_probs
from har.train.run import RunSpec, checkpoint_info, run
from tests.cli_helpers import har, har_in_process, one_line_error, sample_project

DATASET = "uci_hapt_sample"
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project with three checkpoints: two architectures on every channel, one on acc only."""
    root = sample_project(tmp_path_factory.mktemp("ensemble"))
    prepared = root / "data" / "prepared"
    for name, model, hparams, sensors in (
        ("lstm", "lstm", {"hidden": 8, "layers": 1}, "all"),
        ("mlp", "feature_mlp", {"hidden": [16]}, "all"),
        ("acc", "lstm", {"hidden": 8, "layers": 1}, "acc"),
    ):
        spec = RunSpec(dataset=DATASET, sensors=sensors, model=model, hparams=hparams,
                       train={"max_epochs": 2, "num_threads": 1, "seed": 1})  # fmt: skip
        result = run(spec, prepared, test=False)
        save_checkpoint(root / name, result.model, checkpoint_info(spec, result))
    return root


def _row(stdout: str) -> list[float]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if len(cells) == 3 and all(c.replace(".", "").isdigit() for c in cells):
            return [float(c) for c in cells]
    raise AssertionError(f"no metrics row in:\n{stdout}")


def test_cli_ensemble_is_the_mean_of_the_members_probabilities(project: Path) -> None:
    proc = har("evaluate", "lstm", "mlp", "--split", "test", cwd=project, extra_env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    assert "ensemble of 2 checkpoints" in proc.stdout
    accuracy, macro_f1, _ = _row(proc.stdout)
    # independently: each checkpoint's own normalisation of the raw test windows, torch's softmax
    data = load_train_data(project / "data" / "prepared", DATASET)
    raw, y = data.splits["test"][0] * data.std + data.mean, data.splits["test"][1]
    probs = []
    for name in ("lstm", "mlp"):
        model, info = load_checkpoint(project / name)
        mean, std = (np.asarray(info["normalization"][k], dtype=np.float32) for k in ("mean", "std"))
        with torch.no_grad():
            probs.append(torch.softmax(model(torch.from_numpy((raw - mean) / std).float()), dim=1).numpy())
    predicted = np.mean(probs, axis=0).argmax(axis=1)
    assert accuracy == pytest.approx((predicted == y).mean(), abs=5e-5)
    assert macro_f1 == pytest.approx(f1_score(y, predicted, average="macro", labels=range(6)), abs=5e-5)
    # the two members do not agree on every window, so this is not one member's figure in disguise
    assert (probs[0].argmax(axis=1) != probs[1].argmax(axis=1)).any()


def test_an_ensemble_of_one_model_twice_is_that_model(project: Path) -> None:
    members = load_members([project / "lstm", project / "lstm"])
    data = load_train_data(project / "data" / "prepared", DATASET)
    raw = data.splits["val"][0] * data.std + data.mean
    assert np.allclose(mean_probs(members, raw), mean_probs(members[:1], raw))


def test_members_that_read_other_data_are_refused(project: Path) -> None:
    with pytest.raises(BadInput, match=r"acc: does not match .*lstm's channels"):
        load_members([project / "lstm", project / "acc"])
    with pytest.raises(BadInput, match="at least one checkpoint"):
        load_members([])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("lstm", "acc"), "does not match"),
        (("lstm", "mlp", "--repeats", "2"), "drop --repeats and --adapt"),
        (("lstm", "mlp", "--adapt", "subject"), "drop --repeats and --adapt"),
    ],
    ids=["channels", "repeats", "adapt"],
)
def test_cli_ensemble_bad_input_exits_2(project: Path, args: tuple[str, ...], expected: str) -> None:
    proc = har_in_process("evaluate", *args, cwd=project, extra_env=ONE_THREAD)
    assert proc.returncode == 2
    assert expected in one_line_error(proc)
