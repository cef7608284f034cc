"""Model registry: ``@register`` a builder, ``build(name, n_channels, n_classes, window, **hparams)``.

Every architecture takes the same first three arguments (channels, classes, window length) and
keyword hyper-parameters; presets pin the published configurations by name (``res_bilstm:3x3``) with
the optimiser settings the papers used. Nothing here knows about Ray or MLflow.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from har.errors import BadInput

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class Preset:
    """A published configuration: architecture hyper-parameters plus training settings."""

    model: str
    name: str
    hparams: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (optimiser, lr, L2, ...)
    source: str = ""  # where the numbers come from
    published: str = ""  # the published result and its protocol


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    summary: str
    min_window: Callable[[dict[str, Any]], int]
    presets: dict[str, Preset]
    inputs: str = "windows"  # "windows" [B, T, C] or "images" [B, 3, H, W]
    init_only: tuple[str, ...] = ()  # hyper-parameters used only to initialise (pretrained weights)


_MODELS: dict[str, ModelEntry] = {}


def register(
    name: str,
    summary: str,
    min_window: Callable[[dict[str, Any]], int] | None = None,
    presets: tuple[Preset, ...] = (),
    inputs: str = "windows",
    init_only: tuple[str, ...] = (),
) -> Callable[[Builder], Builder]:
    """Register an architecture builder ``f(n_channels, n_classes, window, **hparams) -> nn.Module``.

    ``inputs``: what the model reads, sensor ``windows`` [B, T, C] or ``images`` [B, 3, H, W] (window =
    image size). ``init_only``: hyper-parameters that only initialise the weights (a pretrained file);
    a checkpoint is rebuilt without them, since its own weights replace the initial ones."""

    def decorate(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        by_name = {p.name: p for p in presets}
        _MODELS[name] = ModelEntry(
            name, builder, summary, min_window or (lambda hp: 1), by_name, inputs, tuple(init_only)
        )
        return builder

    return decorate


def model_names() -> list[str]:
    return list(_MODELS)


def entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise BadInput(f"unknown model {name!r} (known: {', '.join(_MODELS)}); see 'har models zoo'")
    return _MODELS[name]


def defaults(name: str) -> dict[str, Any]:
    """The builder's keyword defaults: the architecture's default hyper-parameters."""
    sig = inspect.signature(entry(name).builder)
    return {
        k: p.default
        for k, p in sig.parameters.items()
        if k not in ("n_channels", "n_classes", "window") and p.default is not inspect.Parameter.empty
    }


def preset(spec: str) -> Preset:
    """``"res_bilstm:3x3"`` (or model + separate preset name) -> the Preset."""
    model, _, name = spec.partition(":")
    presets = entry(model).presets
    if name not in presets:
        known = ", ".join(f"{model}:{p}" for p in presets) or "none"
        raise BadInput(f"unknown preset {spec!r} (known: {known})")
    return presets[name]


def build(name: str, n_channels: int, n_classes: int, window: int, **hparams: Any) -> nn.Module:
    """Instantiate a registered architecture; BadInput names an unknown hyper-parameter or short window."""
    item = entry(name)
    allowed = defaults(name)
    unknown = sorted(set(hparams) - set(allowed))
    if unknown:
        raise BadInput(
            f"model {name!r} has no hyper-parameter {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
        )
    merged = {**allowed, **hparams}
    needed = item.min_window(merged)
    if window < needed:
        raise BadInput(
            f"model {name!r} with {_describe(merged)} needs {_unit(item, needed)}, got {window}; "
            f"choose a larger {'crop' if item.inputs == 'images' else 'window'} or other hyper-parameters"
        )
    if n_channels < 1 or n_classes < 2:
        raise BadInput(
            f"model {name!r} needs at least 1 channel and 2 classes (got {n_channels}, {n_classes})"
        )
    return item.builder(n_channels, n_classes, window, **hparams)


def restore_hparams(name: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` for rebuilding a trained model whose weights are loaded next (no pretrained file)."""
    return {k: (None if k in entry(name).init_only else v) for k, v in hparams.items()}


def _unit(item: ModelEntry, needed: int) -> str:
    if item.inputs == "images":
        return f"image crops of at least {needed} x {needed} pixels"
    return f"windows of at least {needed} samples"


def _describe(hparams: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(hparams.items()))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
