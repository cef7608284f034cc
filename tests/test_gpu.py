"""The CUDA path (issue 21): mixed precision, pinned host memory, the trial's device from Ray's
assignment, fractional GPUs sharing one device. Skipped without a CUDA device; `bench/gpu_check.sh`
runs these on a GPU machine (`pytest -m gpu`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from har.models import build
from har.train.data import load_train_data
from har.train.dataset import TrainData
from har.train.loop import TrainConfig, fit
from har.train.run import RunSpec, run
from tests.cli_helpers import sample_project

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]
DATASET = "uci_hapt_sample"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> TrainData:
    project = sample_project(tmp_path_factory.mktemp("gpu"))
    return load_train_data(project / "data" / "prepared", DATASET)


def spec(**train) -> RunSpec:
    return RunSpec(dataset=DATASET, model="cnn_resbigru", preset="model3", train={"max_epochs": 2, **train})


def test_amp_trains_on_cuda_and_its_state_resumes(data: TrainData) -> None:
    result = run(spec(device="cuda", amp=True), data=data)
    assert next(result.model.parameters()).device.type == "cuda"
    losses = [row["train/loss"] for row in result.fit.history]
    assert all(torch.isfinite(torch.tensor(losses))) and 0 <= result.test["test/accuracy"] <= 1
    states = []
    model = build("lstm", len(data.channels), len(data.classes), data.window, hidden=16)
    cfg = TrainConfig(max_epochs=2, device="cuda", amp=True)
    fit(model, data.splits["train"], data.splits["val"], data.classes, cfg,
        on_epoch=lambda epoch, row, state: states.append(state()))  # fmt: skip
    assert "scaler" in states[-1] and states[-1]["scaler"]["scale"] > 0  # resumable: the gradient scale


def test_amp_and_full_precision_agree_roughly(data: TrainData) -> None:
    full = run(spec(device="cuda", seed=1), data=data)
    half = run(spec(device="cuda", seed=1, amp=True), data=data)
    assert abs(full.val["val/accuracy"] - half.val["val/accuracy"]) < 0.15


def test_trials_take_the_gpu_ray_assigned_and_fractions_share_it(tmp_path: Path) -> None:
    import ray

    from har.tune.trial import trial_device

    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False, logging_level="ERROR")
    try:

        @ray.remote(num_gpus=0.25)
        def quarter() -> tuple[str, str]:
            return trial_device(), os.environ.get("CUDA_VISIBLE_DEVICES", "")

        @ray.remote(num_gpus=0)
        def none() -> str:
            return trial_device()

        shares = ray.get([quarter.remote() for _ in range(4)])
        assert {device for device, _ in shares} == {"cuda"}
        assert len({visible for _, visible in shares}) == 1  # four quarters of one device
        assert ray.get(none.remote()) == "cpu"
    finally:
        ray.shutdown()
