"""Training-time augmentation (har.train.augment), label smoothing and the cosine schedule (har.train.schedule):
shapes, seeded determinism of ``fit`` with them switched on, and validation of the settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from har.errors import BadInput
from har.models import build
from har.train import augment
from har.train.loop import TrainConfig, fit
from har.train.run import RunSpec, resolve
from har.train.schedule import cosine_lr

ALL = ["scale", "jitter", "shift", "timewarp"]


def batch(seed: int = 0, shape: tuple[int, int, int] = (16, 64, 9)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("spec", [*ALL, "scale=0.3", "shift=2", "timewarp=0.2"])
def test_each_augmentation_changes_the_batch_but_keeps_shape_and_dtype(spec: str) -> None:
    x = batch()
    before = x.clone()
    out = augment.apply(x, [spec], torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()
    assert not torch.equal(out, x)
    assert torch.equal(x, before)  # the input batch is not modified in place


def test_no_augmentation_returns_the_batch_and_draws_nothing() -> None:
    x, gen = batch(), torch.Generator().manual_seed(5)
    state = gen.get_state()
    assert augment.apply(x, [], gen) is x
    assert torch.equal(gen.get_state(), state)  # shuffling of a run without augmentation is unchanged
    assert torch.equal(augment.apply(x, ["scale=0", "shift=0"], gen), x)


def test_same_generator_seed_same_augmentation() -> None:
    x = batch()
    a = augment.apply(x, ALL, torch.Generator().manual_seed(7))
    b = augment.apply(x, ALL, torch.Generator().manual_seed(7))
    c = augment.apply(x, ALL, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_shift_and_timewarp_move_samples_in_time_and_repeat_edges() -> None:
    ramp = torch.arange(32, dtype=torch.float32).reshape(1, 32, 1).expand(4, 32, 2)
    shifted = augment.apply(ramp, ["shift=3"], torch.Generator().manual_seed(0))
    steps = shifted[:, 10, 0] - 10  # a ramp shifted by s reads t - s
    assert torch.all(steps.abs() <= 3) and torch.equal(steps, steps.round())
    assert torch.all(shifted.diff(dim=1) >= 0) and shifted.min() >= 0 and shifted.max() <= 31
    warped = augment.apply(ramp, ["timewarp=0.2"], torch.Generator().manual_seed(0))
    assert torch.all(warped.diff(dim=1) >= 0)  # still monotone: no reversal, edges repeated
    assert torch.allclose(warped[:, 15:17].mean(dim=1), ramp[:, 15:17].mean(dim=1), atol=0.2)  # centre kept


def test_scale_multiplies_each_channel_and_jitter_adds_noise() -> None:
    x = torch.ones(64, 16, 3)
    scaled = augment.apply(x, ["scale=0.1"], torch.Generator().manual_seed(0))
    assert torch.allclose(scaled, scaled[:, :1].expand_as(scaled))  # one factor per window and channel
    assert 0.05 < float(scaled[:, 0].std()) < 0.15
    noisy = augment.apply(x, ["jitter=0.05"], torch.Generator().manual_seed(0))
    assert 0.03 < float((noisy - x).std()) < 0.07


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["rotate"], "unknown augmentation 'rotate'"), (["scale=big"], "not a number"),
     (["timewarp=1.5"], "timewarp: below 1"), (["jitter=-1"], "must be >= 0")],
)  # fmt: skip
def test_bad_augmentation_settings_are_bad_input(value: list[str], expected: str) -> None:
    with pytest.raises(BadInput, match=expected):
        resolve(RunSpec(dataset="x", model="lstm", train={"augment": value}))
    with pytest.raises(BadInput, match="label_smoothing"):
        resolve(RunSpec(dataset="x", model="lstm", train={"label_smoothing": 1.0}))


def test_cosine_schedule_warms_up_then_anneals_to_min_lr() -> None:
    lrs = [cosine_lr(1e-3, 1e-5, step, 100, warmup=10) for step in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[10] == pytest.approx(1e-3) and lrs[100] == pytest.approx(1e-5)
    assert lrs[55] == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[10:] == sorted(lrs[10:], reverse=True)


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.arange(32)
    X = np.sin(t[None, :, None] * (y[:, None, None] + 1) * 0.3) + 0.3 * rng.standard_normal((n, 32, 4))
    return X.astype(np.float32), y.astype(np.int64)


def fit_once(**train) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    cfg = TrainConfig(max_epochs=3, batch_size=16, num_threads=1, device="cpu", seed=4, **train)
    torch.manual_seed(cfg.seed)
    model = build("resnet1d", 4, 3, 32, widths=(8, 8), kernels=(3,), pools=(2,), dropout=0.2)
    result = fit(model, synthetic(96, 0), synthetic(48, 1), ["a", "b", "c"], cfg)
    history = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in result.history]
    return history, result.state_dict


def test_fit_with_augmentation_smoothing_and_cosine_is_deterministic() -> None:
    settings = {"augment": ALL, "label_smoothing": 0.1, "schedule": "cosine", "warmup_epochs": 1}
    first, weights = fit_once(**settings)
    again, weights_again = fit_once(**settings)
    assert first == again
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    plain, _ = fit_once()
    assert [r["train/loss"] for r in plain] != [r["train/loss"] for r in first]  # the settings act
    lrs = [r["lr"] for r in first]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] < 1e-4  # warmed up, then annealed towards min_lr
    assert lrs == sorted(lrs, reverse=True)


def test_label_smoothing_mixes_the_uniform_target_into_the_training_loss() -> None:
    """With a frozen model (lr 1e-30) the epoch loss is (1 - e) * CE + e * mean(-log p): linear in e."""
    loss = {e: fit_once(lr=1e-30, label_smoothing=e)[0][0]["train/loss"] for e in (0.0, 0.2, 0.4)}
    assert loss[0.2] != pytest.approx(loss[0.0], abs=1e-4)
    assert loss[0.4] - loss[0.0] == pytest.approx(2 * (loss[0.2] - loss[0.0]), rel=1e-3)
