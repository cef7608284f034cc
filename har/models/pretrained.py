"""Pretrained weights for image backbones: a local file, or a URL pinned by sha256 (downloaded once into
a cache by pooch). Nothing is ever fetched from a model hub behind the user's back: without weights a
backbone trains from scratch, and says so.

Accepted files: a ``state_dict`` saved by ``torch.save`` (torchvision's ``resnet50-*.pth`` files are
such), or a dict holding one under ``state_dict`` or ``model``; loaded with ``weights_only=True``.
The classifier layer is replaced (another number of classes), everything else must match.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pooch
import torch
from torch import nn

from har.errors import BadInput, HarError

CACHE_ENV = "HAR_WEIGHTS_CACHE"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "har-lab" / "weights")


def resolve_weights(weights: str, sha256: str | None = None) -> Path:
    """The local file of ``weights`` (a path, or an http(s) URL that needs ``sha256``), checked."""
    if sha256 is not None and not SHA256.match(sha256.lower()):
        raise BadInput(f"weights_sha256 {sha256!r}: expected 64 hexadecimal digits")
    if weights.startswith(("http://", "https://")):
        if sha256 is None:
            raise BadInput(f"weights {weights}: a URL needs weights_sha256 (64 hex digits) so the download "
                           "can be verified")  # fmt: skip

        try:
            path = pooch.retrieve(weights, known_hash=f"sha256:{sha256.lower()}", path=cache_dir(),
                                  progressbar=False)  # fmt: skip
        except ValueError as exc:  # pooch: hash mismatch (the bad file is removed)
            raise BadInput(f"weights {weights}: {str(exc).splitlines()[0]}") from exc
        except Exception as exc:  # network trouble: requests raises many types
            raise HarError(f"weights {weights}: download failed ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:160]}); put the file on disk and give its path") from exc  # fmt: skip
        return Path(path)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BadInput(f"weights {weights}: no such file; give the path of a .pth state_dict or an https URL "
                       "with weights_sha256")  # fmt: skip
    if sha256 is not None:
        actual = pooch.file_hash(str(path), alg="sha256")
        if actual != sha256.lower():
            raise BadInput(f"weights {path}: sha256 mismatch: expected {sha256.lower()}, got {actual}; "
                           "use the right file or fix weights_sha256")  # fmt: skip
    return path


def load_pretrained(model: nn.Module, path: Path, head: str) -> list[str]:
    """Load the backbone weights of ``path`` into ``model``, skipping the classifier ``head`` (a module
    name prefix) when its shape differs. Returns the names of the parameters left at their initial values."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike
        raise BadInput(f"weights {path}: not a PyTorch state_dict ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0][:160]})") from exc  # fmt: skip
    if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        state = state.get("state_dict") or state.get("model") or state
    if not isinstance(state, dict):
        raise BadInput(f"weights {path}: expected a state_dict (a mapping of parameter names to tensors)")
    own = model.state_dict()
    kept = {
        k: v
        for k, v in state.items()
        if not (k.startswith(head + ".") and k in own and v.shape != own[k].shape)
    }
    try:
        result = model.load_state_dict(kept, strict=False)
    except RuntimeError as exc:  # a layer of another shape: another architecture
        raise BadInput(f"weights {path}: do not fit this backbone ({str(exc).splitlines()[-1].strip()[:160]}); "
                       "give weights of the same architecture") from exc  # fmt: skip
    missing = [k for k in result.missing_keys if not k.startswith(head + ".")]
    if missing or result.unexpected_keys:
        detail = f"missing {missing[0]!r}" if missing else f"unexpected {result.unexpected_keys[0]!r}"
        raise BadInput(f"weights {path}: do not fit this backbone ({detail}, {len(missing)} missing, "
                       f"{len(result.unexpected_keys)} unexpected); give weights of the same architecture")  # fmt: skip
    return list(result.missing_keys)
