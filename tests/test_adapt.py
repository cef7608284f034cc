"""Per-subject BatchNorm adaptation (har.train.adapt): the statistics it estimates, what it leaves alone, the
shift it removes, and ``har evaluate --adapt`` / ``har cv --adapt`` on the bundled sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from har.errors import BadInput
from har.models import build
from har.train.adapt import adapt_batchnorm, check_adaptable, predict_adapted
from har.train.checkpoint import load_checkpoint
from har.train.data import load_train_data
from har.train.loop import predict_logits
from tests.cli_helpers import har, har_in_process, one_line_error, sample_project

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
TINY_CNN = ("-m", "resnet1d", "-H", "widths=[8]", "-H", "kernels=[3]", "--epochs", "1")


class Normed(nn.Module):
    """[B, T, C] -> BatchNorm over channels -> mean over time -> linear: BN is the only statistic."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(channels)
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.norm(x.transpose(1, 2)).mean(dim=-1)))


def _windows(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 16, 3)) * [1.0, 2.0, 0.5] + [0.3, -1.0, 2.0] + shift).astype(np.float32)


@pytest.mark.parametrize("batch_size", [7, 40, 512])
def test_adapted_statistics_are_the_windows_own(batch_size: int) -> None:
    torch.manual_seed(0)
    model = Normed(3, 4).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = _windows(36, 0)  # 36 = 5 x 7 + 1: the lone last window of batch size 7 is skipped
    adapted = adapt_batchnorm(model, X, batch_size=batch_size)
    used = X if batch_size != 7 else X[np.sort(np.random.default_rng(0).permutation(36)[:35])]
    flat = used.reshape(-1, 3)
    assert np.allclose(adapted.norm.running_mean.numpy(), flat.mean(axis=0), atol=1e-5)
    if batch_size >= len(X):  # one batch: exactly the unbiased variance of every value
        assert np.allclose(adapted.norm.running_var.numpy(), flat.var(axis=0, ddof=1), rtol=1e-4)
    assert not adapted.training and not adapted.norm.training
    for key, value in model.state_dict().items():  # the original model is untouched
        assert torch.equal(value, before[key]), key
    for name in ("norm.weight", "norm.bias", "head.weight", "head.bias"):  # no weight is learned
        assert torch.equal(adapted.state_dict()[name], before[name])


def test_adaptation_removes_a_subjects_constant_offset() -> None:
    """Two subjects whose windows differ by a constant per channel (a sensor mounted differently) get
    different plain predictions but identical adapted ones."""
    torch.manual_seed(0)
    model = Normed(3, 4)
    model.norm.running_mean.copy_(torch.tensor([0.3, -1.0, 2.0]))
    model.norm.running_var.copy_(torch.tensor([1.0, 4.0, 0.25]))
    model.eval()
    base = _windows(50, 1)
    X = np.concatenate([base, base + np.float32(1.5)])
    groups = np.repeat([7, 9], 50)
    plain = predict_logits(model, X)
    adapted = predict_adapted(model, X, groups, predict_logits)
    assert not np.allclose(plain[:50], plain[50:], atol=1e-3)
    assert np.allclose(adapted[:50], adapted[50:], atol=1e-4)
    # each group is predicted by the model adapted on that group alone
    alone = predict_logits(adapt_batchnorm(model, X[50:]), X[50:])
    assert np.allclose(adapted[50:], alone, atol=1e-6)
    # calibrate: the statistics come from a subset of each group's windows, applied to all of them
    first = predict_adapted(model, X, groups, predict_logits, calibrate=lambda rows: rows[:10])
    assert np.allclose(first[50:], predict_logits(adapt_batchnorm(model, X[50:60]), X[50:]), atol=1e-6)
    assert not np.allclose(first[50:], alone, atol=1e-4)
    with pytest.raises(ValueError, match="3 group labels for 100 windows"):
        predict_adapted(model, X, groups[:3], predict_logits)


def test_a_model_without_batchnorm_cannot_be_adapted() -> None:
    lstm = build("lstm", 9, 6, 128)
    with pytest.raises(BadInput, match="model 'lstm': has no BatchNorm layer"):
        check_adaptable(lstm, "lstm")
    check_adaptable(build("resnet1d", 9, 6, 128), "resnet1d")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_project(tmp_path_factory.mktemp("adapt"))


def _accuracy(stdout: str) -> float:
    """The accuracy cell of `har evaluate`'s table."""
    row = next(line for line in stdout.splitlines() if re.search(r"\d\.\d{4}", line))
    return float(re.findall(r"\d\.\d{4}", row)[0])


def test_har_evaluate_adapt_subject(project: Path) -> None:
    proc = har("train", "-d", "uci_hapt_sample", *TINY_CNN, "--val-fraction", "0.5", "--out", "cnn",
               cwd=project, extra_env=ONE_THREAD)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    model, _ = load_checkpoint(project / "cnn")
    data = load_train_data(project / "data" / "prepared", "uci_hapt_sample", val_fraction=0.5)
    X, y = data.splits["test"]
    subjects = data.subjects["test"]
    assert sorted(np.unique(subjects)) == [2, 4]  # the sample's test subjects
    expected = float((predict_adapted(model, X, subjects, predict_logits).argmax(1) == y).mean())
    plain = float((predict_logits(model, X).argmax(1) == y).mean())
    adapted_proc = har("evaluate", "cnn", "--adapt", "subject", cwd=project, extra_env=ONE_THREAD)
    plain_proc = har("evaluate", "cnn", cwd=project, extra_env=ONE_THREAD)
    assert adapted_proc.returncode == plain_proc.returncode == 0, adapted_proc.stderr
    assert "BatchNorm adapted per subject" in " ".join(adapted_proc.stdout.split())  # the title wraps
    assert _accuracy(adapted_proc.stdout) == pytest.approx(expected, abs=5e-5)
    assert _accuracy(plain_proc.stdout) == pytest.approx(plain, abs=5e-5)


def test_har_cv_adapt_records_both_figures_from_the_same_models(project: Path) -> None:
    proc = har("cv", "-d", "uci_hapt_sample", *TINY_CNN, "--folds", "3", "--adapt", "-o", "cv/adapt.json",
               cwd=project, extra_env=ONE_THREAD)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    record = json.loads((project / "cv" / "adapt.json").read_text())
    adapted = [fold["adapted_accuracy"] for fold in record["folds"]]
    assert all(0 <= a <= 1 for a in adapted)
    assert record["summary"]["adapted_accuracy_mean"] == pytest.approx(np.mean(adapted))
    assert "adapted per held-out subject (AdaBN)" in " ".join(proc.stdout.split())
    # the plain figures are those of the same configuration run without --adapt (same seed, same models)
    plain = har("cv", "-d", "uci_hapt_sample", *TINY_CNN, "--folds", "3", "-o", "cv/plain.json",
                cwd=project, extra_env=ONE_THREAD)  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    without = json.loads((project / "cv" / "plain.json").read_text())
    assert [f["accuracy"] for f in without["folds"]] == [f["accuracy"] for f in record["folds"]]
    assert all(f["adapted_accuracy"] is None for f in without["folds"])


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("cv", "-d", "uci_hapt_sample", "-m", "lstm", "--folds", "3", "--adapt"), "has no BatchNorm layer"),
        (("evaluate", "cnn", "--adapt", "recording"), "--adapt 'recording': choose none or subject"),
        (("evaluate", "cnn", "--adapt", "subject", "--repeats", "2"), "drop --repeats"),
    ],
    ids=["cv-lstm", "evaluate-value", "evaluate-repeats"],
)
def test_adapt_bad_input_exits_2(project: Path, command: tuple[str, ...], expected: str) -> None:
    (project / "cnn").mkdir(exist_ok=True)  # checked before the checkpoint is read
    proc = (
        har_in_process(*command, "-o", "cv/never.json", cwd=project)
        if command[0] == "cv"
        else har_in_process(*command, cwd=project)
    )
    assert proc.returncode == 2
    assert expected in one_line_error(proc)
    assert not (project / "cv" / "never.json").exists()
