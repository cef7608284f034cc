"""Checkpoints: a folder with ``model.pt`` (state_dict only) and ``checkpoint.json`` (everything else).

``checkpoint.json`` holds the model name and hyper-parameters, preset, sensor permutation, channel
list, label map, normalisation statistics, window, data version, training config and metrics, so a
checkpoint can be rebuilt and applied to new raw data without the training code's state. Loading uses
``torch.load(..., weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from har.atomic import atomic_dir
from har.errors import BadInput
from har.models import build, restore_hparams

WEIGHTS = "model.pt"
INFO = "checkpoint.json"
REQUIRED = ("model", "hparams", "channels", "classes", "window", "normalization")


def save_checkpoint(folder: Path, model: nn.Module, info: dict[str, Any]) -> Path:
    missing = [k for k in REQUIRED if k not in info]
    if missing:
        raise ValueError(f"checkpoint info lacks {missing}")
    with atomic_dir(Path(folder)) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / WEIGHTS)
        (tmp / INFO).write_text(json.dumps(info, indent=2, default=_jsonable) + "\n")
    return Path(folder)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_checkpoint(
    folder: Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    folder = Path(folder)
    if not (folder / INFO).is_file() or not (folder / WEIGHTS).is_file():
        raise BadInput(f"{folder}: not a har-lab checkpoint (needs {WEIGHTS} and {INFO})")
    try:
        info = json.loads((folder / INFO).read_text())
    except json.JSONDecodeError as exc:
        raise BadInput(f"{folder / INFO}: not valid JSON ({exc})") from exc
    missing = [k for k in REQUIRED if k not in info]
    if missing:
        raise BadInput(f"{folder / INFO}: key {missing[0]!r} missing; the checkpoint is incomplete")
    hparams = restore_hparams(info["model"], info["hparams"])  # no pretrained file: ours replace them
    model = build(info["model"], len(info["channels"]), len(info["classes"]), info["window"], **hparams)
    state = torch.load(folder / WEIGHTS, map_location=map_location, weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model, info


def check_channels(info: dict[str, Any], channels: list[str], source: str) -> None:
    """Refuse data whose channels differ from the checkpoint's (names and order)."""
    if list(channels) != list(info["channels"]):
        extra = [c for c in channels if c not in info["channels"]]
        missing = [c for c in info["channels"] if c not in channels]
        detail = (
            f"missing {missing[:4]}" if missing else f"unexpected {extra[:4]}" if extra else "different order"
        )
        raise BadInput(
            f"{source}: channels do not match the checkpoint ({detail}); the model was trained on "
            f"{info['dataset']}/{info['sensors']} with {len(info['channels'])} channels"
        )
