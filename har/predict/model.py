"""The model ``har predict`` applies: a checkpoint folder, or a registered model (``NAME@champion``,
``NAME/3``) downloaded from the MLflow registry; its ``checkpoint.json`` checked before loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from har.errors import BadInput
from har.tracking.registry import download_checkpoint
from har.train.checkpoint import load_checkpoint
from har.train.loop import pick_device


def resolve_model(ref: str, tracking_uri: str | None = None) -> Path:
    """A local checkpoint folder for ``ref``: an existing folder, else a registry reference
    (``har-uci_hapt-all@champion``, ``har-uci_hapt-all/3``) downloaded by ``har.tracking.store``."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise BadInput(
            f"--model {ref}: a file, not a checkpoint folder; give the folder written by 'har train'"
        )
    if _looks_like_path(ref):
        raise BadInput(
            f"--model {ref}: no such checkpoint folder; give the folder written by 'har train' "
            "or a registry reference such as har-uci_hapt-all@champion"
        )

    return Path(download_checkpoint(ref, tracking_uri))


def _looks_like_path(ref: str) -> bool:
    """A folder path (not a registry reference such as ``name@alias`` or ``name/3``)."""
    if ref.startswith(("/", "./", "../", "~", ".\\")) or ref.endswith(("/", "\\")) or ref in (".", ".."):
        return True
    body = ref.split(":/", 1)[1] if ref.startswith(("models:/", "runs:/")) else ref
    return body.count("/") > 1 or "\\" in body


def read_info(folder: Path) -> dict[str, Any]:
    """``checkpoint.json`` without loading torch, so that bad input is refused fast; a broken
    checkpoint gets ``load_checkpoint``'s own message."""
    try:
        info = json.loads((Path(folder) / "checkpoint.json").read_text())
        ok = isinstance(info, dict) and (Path(folder) / "model.pt").is_file()
    except (OSError, json.JSONDecodeError):
        ok = False
    if not ok or any(
        k not in info for k in ("model", "hparams", "channels", "classes", "window", "normalization")
    ):
        return load_model(folder)[1]  # raises BadInput naming what is wrong
    _check_info(info, folder)
    return info


def _check_info(info: dict[str, Any], folder: Path) -> None:
    for key in ("rate_hz", "dataset"):
        if key not in info:
            raise BadInput(f"{folder / 'checkpoint.json'}: key {key!r} missing; retrain with this har-lab")


def load_model(folder: Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The checkpoint's model (eval mode, on ``device``) and its ``checkpoint.json``."""

    model, info = load_checkpoint(folder, map_location=pick_device(device))
    _check_info(info, folder)
    return model, info
