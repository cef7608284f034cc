"""The model zoo: every architecture and preset on every dataset's window shape, overfitting a tiny real
batch, parameter counts and the BadInput messages of ``build`` / ``preset``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from har.data.fetch import fetch
from har.data.prepare import prepare
from har.data.registry import BUILTIN
from har.errors import BadInput
from har.models import build, count_parameters, defaults, entry, model_names, preset
from har.train.data import load_train_data
from tests.cli_helpers import REPO

# (window, channels, classes) of every dataset's default windows
SHAPES = {
    "uci_har": (128, 9, 6),
    "opportunity": (24, 113, 18),
    "myogym_emg": (50, 8, 31),
    "myogym_acc": (50, 3, 31),
    "myogym_imu": (50, 6, 31),
    "myogym_all": (50, 14, 31),
    "watch": (100, 6, 7),
}
MODELS = [m for m in model_names() if entry(m).inputs == "windows"]  # sensor windows [B, T, C]
IMAGE_MODELS = [m for m in model_names() if entry(m).inputs == "images"]  # tests/test_images.py
CASES = [
    pytest.param(name, p, shape, id=f"{name}:{p or 'defaults'}-{shape}")
    for name in MODELS
    for p in [None, *entry(name).presets]
    for shape in SHAPES
]


def test_every_architecture_is_registered() -> None:
    assert set(MODELS) == {
        "lstm", "res_bilstm", "lstm_dense", "cnn_lstm", "convlstm", "cnn_resbigru", "deepconvlstm", "resnet1d",
        "inception", "feature_mlp",
    }  # fmt: skip
    assert set(IMAGE_MODELS) == {"resnet50", "resnet18", "mobilenet_v3_small"}
    for name in MODELS:
        assert entry(name).presets, f"{name} has no published preset"
        for p in entry(name).presets.values():
            assert p.model == name and preset(f"{name}:{p.name}") is p
            assert set(p.hparams) <= set(defaults(name)), f"{name}:{p.name} sets unknown hyper-parameters"


def test_importing_one_architecture_module_first_keeps_the_whole_zoo() -> None:
    """Regression: importing har.models.vision before the zoo once left the registry with only the
    image models, so a study's driver failed on 'unknown model lstm'."""
    import subprocess
    import sys

    code = ("from har.models.vision import scratch_note; from har.models import model_names; "
            "assert scratch_note('lstm', {}) is None and 'lstm' in model_names() and 'resnet50' in model_names()")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_backbones_forward_and_backward_on_images(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, 3, 22, 64)
    logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 22)
    logits.sum().backward()
    with pytest.raises(BadInput, match="image crops of at least 32 x 32"):
        build(name, 3, 22, 16)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(("name", "preset_name", "shape"), CASES)
def test_forward_backward_on_every_dataset_shape(name: str, preset_name: str | None, shape: str) -> None:
    window, channels, classes = SHAPES[shape]
    hparams = preset(f"{name}:{preset_name}").hparams if preset_name else {}
    torch.manual_seed(0)
    if hparams.get("triplets") and channels % 3:  # a preset for x/y/z sensors on other channels
        with pytest.raises(BadInput, match=f"there are {channels} channels .* triplets=false"):
            build(name, channels, classes, window, **hparams)
        return
    model = build(name, channels, classes, window, **hparams)
    model.train()
    x = torch.randn(3, window, channels)
    y = torch.tensor([0, 1, classes - 1])
    logits = model(x)
    assert logits.shape == (3, classes)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, y).backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert params
    for pname, p in params:
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for _, p in params)
    model.eval()
    with torch.no_grad():
        assert model(x[:1]).shape == (1, classes)  # eval mode, batch of one (BatchNorm running stats)


# ---------------------------------------------------------------- overfitting a tiny real batch


@pytest.fixture(scope="module")
def tiny_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.Tensor, torch.Tensor]:
    """24 normalised training windows of the prepared uci_hapt_sample, 4 per class."""
    root = tmp_path_factory.mktemp("zoo-data")
    spec = BUILTIN["uci_hapt_sample"]
    raw = fetch(spec, root / "raw", repo_root=REPO, show_progress=False)
    prepare(spec, raw, root / "prepared")
    data = load_train_data(root / "prepared", "uci_hapt_sample")
    X, y = data.splits["train"]
    assert X.shape[1:] == (128, 9) and len(data.classes) == 6
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == k), 4, replace=False) for k in range(6)])
    return torch.from_numpy(X[idx]), torch.from_numpy(y[idx])


# small but complete versions of each architecture (dropout 0) so that 150 full-batch steps are plenty
FAST = {
    "lstm": {"hidden": 16},
    "res_bilstm": {"n_stacked": 1, "n_residual": 2, "hidden": 16},
    "lstm_dense": {"hidden": 32, "dense": 32, "dropout": 0.0},
    "cnn_lstm": {"filters": 16, "hidden": 32, "dense": 32, "dropout": 0.0},
    "convlstm": {"filters": 16, "dense": 32, "dropout": 0.0},
    "cnn_resbigru": {"filters": 32, "hidden": 16, "blocks": 1, "dropout": 0.0},
    "deepconvlstm": {"filters": 16, "hidden": 32, "dropout": 0.0},
    "resnet1d": {"widths": (16, 32, 32)},
    "inception": {"filters": 8, "bottleneck": 8, "depth": 3},
    "feature_mlp": {"hidden": (64,), "dropout": 0.0, "triplets": True},
}


def test_fast_settings_cover_every_model() -> None:
    assert set(FAST) == set(MODELS)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("name", MODELS)
def test_overfits_a_tiny_real_batch(name: str, tiny_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    xb, yb = tiny_batch
    torch.manual_seed(0)
    model = build(name, 9, 6, 128, **FAST[name])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses, accuracy = [], 0.0
    for _ in range(150):
        optimizer.zero_grad()
        logits = model(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        accuracy = (logits.argmax(dim=1) == yb).float().mean().item()
        if accuracy == 1.0:
            break
    assert accuracy >= 0.95, f"{name}: training accuracy {accuracy:.3f} after {len(losses)} steps"
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]


# ---------------------------------------------------------------- parameter counts


def _lstm_params(n_in: int, hidden: int) -> int:
    return 4 * hidden * (n_in + hidden) + 8 * hidden  # weights ih + hh, two bias vectors


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# counts printed by 'har models zoo' for 128 x 9 windows and 6 classes, derived here from the layers
KNOWN_COUNTS = {
    # ReLU projection 9->32, 2 LSTM layers of 32, head 32->6
    "lstm:chevalier": _linear(9, 32) + 2 * _lstm_params(32, 32) + _linear(32, 6),
    # the authors' code: per direction a ReLU projection 9->14 and an LSTM of 14; time-step norm gain +
    # shift; head 28->6
    "res_bilstm:1x1": 2 * (_linear(9, 14) + _lstm_params(14, 14)) + 2 + _linear(28, 6),
    # 3 blocks of 3 such cells (blocks 2-3 project 28->14), three norms, head
    "res_bilstm:3x3": 3 * 2 * (_linear(9, 14) + _lstm_params(14, 14))
    + 6 * 2 * (_linear(28, 14) + _lstm_params(14, 14))
    + 3 * 2
    + _linear(28, 6),
    # the README's reading: projection 9->28, one bidirectional LSTM of 28, reduce 56->28, BatchNorm(28),
    # head 28->6
    "res_bilstm:3x3_readme": _linear(9, 28)
    + 9 * (2 * _lstm_params(28, 28) + _linear(56, 28))
    + 3 * 2 * 28
    + _linear(28, 6),
    # LSTM 9->100, dense 100->100, head 100->6
    "lstm_dense:tutorial": _lstm_params(9, 100) + _linear(100, 100) + _linear(100, 6),
    # 6 modules: a 1x1 bottleneck to 32, convolutions 32->32 of 39, 19 and 9 samples, a max-pool branch's
    # 1x1 conv to 32 (no biases), BatchNorm(128); shortcuts 9->128 and 128->128 + BatchNorm; head 128->6
    "inception:fawaz2020": sum(
        c_in * 32 + 32 * 32 * (39 + 19 + 9) + c_in * 32 + 2 * 128 for c_in in (9, 128, 128, 128, 128, 128)
    )
    + (9 * 128 + 2 * 128)
    + (128 * 128 + 2 * 128)
    + _linear(128, 6),
    # 306 window features (12 series x 24 + 3 triplets x 6), BatchNorm(306), 306->256->256->6
    "feature_mlp:uci": 2 * 306 + _linear(306, 256) + _linear(256, 256) + _linear(256, 6),
}


@pytest.mark.parametrize("spec", list(KNOWN_COUNTS))
def test_count_parameters_matches_the_zoo(spec: str) -> None:
    assert KNOWN_COUNTS == {
        "lstm:chevalier": 17_414,
        "res_bilstm:1x1": 3_816,
        "res_bilstm:3x3": 36_132,
        "res_bilstm:3x3_readme": 131_914,
        "lstm_dense:tutorial": 55_106,
        "inception:fawaz2020": 473_542,
        "feature_mlp:uci": 146_538,
    }
    name = spec.partition(":")[0]
    model = build(name, 9, 6, 128, **preset(spec).hparams)
    assert count_parameters(model) == KNOWN_COUNTS[spec]
    parameters = {n for n, _ in model.named_parameters()}
    from_state = sum(t.numel() for n, t in model.state_dict().items() if n in parameters)
    assert count_parameters(model) == from_state


def test_count_parameters_ignores_frozen_weights_and_buffers() -> None:
    model = build("resnet1d", 9, 6, 128, widths=(8,), kernels=(3,))
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == total
    buffers = sum(b.numel() for b in model.buffers())
    assert buffers > 0 and sum(t.numel() for t in model.state_dict().values()) == total + buffers
    head = model.head[1]
    head.weight.requires_grad_(False)
    assert count_parameters(model) == total - head.weight.numel()


def test_hyper_parameters_change_the_model() -> None:
    small = build("lstm", 9, 6, 128, hidden=8, layers=1)
    assert count_parameters(small) == _linear(9, 8) + _lstm_params(8, 8) + _linear(8, 6)
    assert count_parameters(build("lstm", 9, 6, 128)) == KNOWN_COUNTS["lstm:chevalier"]  # defaults == preset


def test_resnet1d_pools_shorten_the_time_axis_and_keep_the_weights() -> None:
    plain = build("resnet1d", 9, 6, 128, kernels=(7, 5, 3))
    pooled = build("resnet1d", 9, 6, 128, kernels=(7, 5, 3), pools=(2, 2))
    assert count_parameters(pooled) == count_parameters(plain)  # max-pooling has no weights
    x = torch.randn(2, 128, 9)
    assert plain.blocks(x.transpose(1, 2)).shape == (2, 128, 128)
    assert pooled.blocks(x.transpose(1, 2)).shape == (2, 128, 32)
    assert pooled(x).shape == (2, 6)
    odd = build("resnet1d", 9, 6, 25, kernels=(3,), widths=(8, 8, 8), pools=(2, 2, 2))
    assert odd.blocks(torch.randn(1, 9, 25)).shape == (1, 8, 4)  # ceil mode: short windows still fit


def test_resnet1d_input_stats_feed_window_mean_and_std_to_the_classifier() -> None:
    plain = build("resnet1d", 9, 6, 128, widths=(8, 16))
    stats = build("resnet1d", 9, 6, 128, widths=(8, 16), input_stats=True)
    assert count_parameters(stats) - count_parameters(plain) == 2 * 9 * 6  # 18 more inputs to the head
    stats.eval()
    x = torch.randn(2, 128, 9)
    shifted = x.clone()
    shifted[1] += 1.0  # same dynamics, other static level (another posture)
    with torch.no_grad():
        out = stats(shifted)
        assert not torch.allclose(out[1], stats(x)[1])
        assert torch.isfinite(
            build("resnet1d", 9, 6, 1, widths=(4,), kernels=(3,), input_stats=True).eval()(x[:, :1])
        ).all()


def test_window_features_match_numpy_and_scipy() -> None:
    """The in-model features against independent numpy/scipy computations on one random window."""
    from scipy import stats

    from har.models.window_stats import feature_count, window_features

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 128, 6)).astype(np.float64) + np.array([0.5, -1.0, 9.0, 0.0, 0.1, 0.2])
    out = window_features(torch.from_numpy(x), triplets=True).numpy()[0]
    assert out.shape == (feature_count(6, 128, True),) == (8 * 24 + 12,)
    per = out[: 8 * 24].reshape(8, 24)  # 6 channels + 2 magnitudes, 24 features each
    w = x[0]
    series = np.concatenate([w, np.linalg.norm(w.reshape(128, 2, 3), axis=2)], axis=1)
    for c in range(8):
        s = series[:, c]
        q25, q50, q75 = np.percentile(s, [25, 50, 75])
        expected = [s.mean(), s.std(), s.min(), s.max(), q50, np.abs(s - s.mean()).mean(), q75 - q25,
                    (s**2).mean(), stats.skew(s), stats.kurtosis(s, fisher=True) + 3]  # fmt: skip
        np.testing.assert_allclose(per[c, :10], expected, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(per[c, 10:12], [np.abs(np.diff(s)).mean(), np.diff(s).std()], rtol=1e-6)
        smooth = np.convolve(s, np.ones(25) / 25, mode="valid")
        np.testing.assert_allclose(per[c, 12:14], [smooth.min(), smooth.max()], rtol=1e-6)
        power = np.abs(np.fft.rfft(s - s.mean()))[1:] ** 2
        assert per[c, 14] == pytest.approx((power.argmax() + 1) / 64)
        np.testing.assert_allclose(
            per[c, 16:], np.log1p([b.sum() for b in np.array_split(power, 8)]), rtol=1e-5
        )
    triplet = out[8 * 24 :]
    for k in range(2):
        axes = w[:, 3 * k : 3 * k + 3]
        corr = np.corrcoef(axes.T)
        np.testing.assert_allclose(
            triplet[3 * k : 3 * k + 3], [corr[0, 1], corr[0, 2], corr[1, 2]], rtol=1e-5
        )
        mean = axes.mean(axis=0)
        np.testing.assert_allclose(triplet[6 + 3 * k : 9 + 3 * k], mean / np.linalg.norm(mean), rtol=1e-5)


def test_uci_features_leave_pooled_stats_unchanged_and_refuse_short_windows() -> None:
    hp = preset("resnet1d:pooled_stats").hparams
    torch.manual_seed(0)
    plain = build("resnet1d", 9, 6, 128, **hp)
    torch.manual_seed(0)
    featured = build("resnet1d", 9, 6, 128, **preset("resnet1d:pooled_features").hparams)
    extra = set(featured.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("features.") for k in extra)  # the features' BatchNorm only
    for key, value in plain.state_dict().items():  # same initial weights: the option adds, never reshuffles
        if not key.startswith("head."):
            assert torch.equal(value, featured.state_dict()[key]), key
    with pytest.raises(BadInput):
        build("feature_mlp", 9, 6, 3)


# ---------------------------------------------------------------- bad input


def test_inception_refuses_an_empty_network() -> None:
    for bad in ({"depth": 0}, {"filters": 0}, {"kernels": ()}):
        with pytest.raises(BadInput, match="give depth >= 1, filters >= 1 and at least one kernel size"):
            build("inception", 9, 6, 128, **bad)


def test_unknown_model_is_named() -> None:
    with pytest.raises(BadInput, match="unknown model 'transformer'") as exc:
        build("transformer", 9, 6, 128)
    assert "lstm" in str(exc.value) and "har models zoo" in str(exc.value)


def test_unknown_preset() -> None:
    with pytest.raises(BadInput, match=r"unknown preset 'res_bilstm:4x4'.*res_bilstm:3x3"):
        preset("res_bilstm:4x4")
    with pytest.raises(BadInput, match="unknown model"):
        preset("nope:3x3")
    with pytest.raises(BadInput, match="unknown preset"):
        preset("lstm")


def test_unknown_hyper_parameter_is_named() -> None:
    with pytest.raises(BadInput, match=r"'lstm' has no hyper-parameter 'hiden'.*hidden"):
        build("lstm", 9, 6, 128, hiden=8)


def test_window_too_short_for_cnn_lstm_sub_sequences() -> None:
    build("cnn_lstm", 9, 6, 24, n_steps=4)  # 4 sub-sequences of 6: the smallest that fits
    with pytest.raises(BadInput, match="at least 24 samples, got 12") as exc:
        build("cnn_lstm", 9, 6, 12, n_steps=4)
    assert "n_steps=4" in str(exc.value)
    with pytest.raises(BadInput, match="at least"):
        build("cnn_lstm", 9, 6, 128, n_steps=40)


def test_window_too_short_for_deepconvlstm() -> None:
    build("deepconvlstm", 9, 6, 17)
    with pytest.raises(BadInput, match="at least 17 samples, got 10"):
        build("deepconvlstm", 9, 6, 10)
    with pytest.raises(BadInput, match="at least"):
        build("convlstm", 9, 6, 8)


def test_cnn_resbigru_block_residual_adds_only_where_widths_match() -> None:
    """Every point of a search space is a model: where filters != 2 * hidden the first block has no add."""
    assert (
        build("cnn_resbigru", 9, 6, 50, filters=64, hidden=32, blocks=3, block_residual=True).residual
        == [True] * 3
    )
    model = build("cnn_resbigru", 9, 6, 50, filters=48, hidden=32, blocks=3, block_residual=True)
    assert model.residual == [False, True, True]
    assert model(torch.randn(2, 50, 9)).shape == (2, 6)
    assert build("cnn_resbigru", 9, 6, 50, filters=64, hidden=32, blocks=2).residual == [False, False]


def test_too_few_channels_or_classes() -> None:
    with pytest.raises(BadInput, match="at least 1 channel and 2 classes"):
        build("lstm", 9, 1, 128)
    with pytest.raises(BadInput, match="at least 1 channel and 2 classes"):
        build("lstm", 0, 6, 128)


@pytest.mark.parametrize(
    ("key", "value"), [("norm", "group"), ("cell", "gru"), ("residual", "dense"), ("init", "xavier")]
)
def test_res_bilstm_unknown_option(key: str, value: str) -> None:
    with pytest.raises(BadInput, match=f"{key} must be .*{value}"):
        build("res_bilstm", 9, 6, 128, **{key: value})


def test_res_bilstm_code_reading_splits_hidden_between_directions() -> None:
    with pytest.raises(BadInput, match="hidden 27 is odd"):
        build("res_bilstm", 9, 6, 128, cell="split", hidden=27)
    model = build("res_bilstm", 9, 6, 128, **preset("res_bilstm:3x3").hparams)
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    assert len(lstms) == 18 and {m.hidden_size for m in lstms} == {14}  # 3x3 bidirectional, 14 units each
    forget = lstms[0].bias_ih_l0[14:28]
    assert torch.equal(forget, torch.ones(14)) and not lstms[0].bias_hh_l0.any()  # forget bias 1, others 0
    model.eval()
    assert (model(torch.randn(4, 128, 9)) >= 0).all()  # the code's ReLU on the logits


def test_parallel_residual_cells_all_read_the_block_input() -> None:
    """Summed parallel cells: zeroing one cell's output layer changes only its own contribution."""
    torch.manual_seed(0)
    model = build("res_bilstm", 3, 2, 16, n_stacked=1, n_residual=2, hidden=4, cell="split",
                  residual="parallel", norm="none")  # fmt: skip
    model.eval()
    x = torch.randn(2, 16, 3)
    block = model.blocks[0]
    expected = block[0](x) + block[1](x)
    assert torch.allclose(
        model.head.weight @ expected[:, -1].T + model.head.bias[:, None], model(x).T, atol=1e-6
    )
