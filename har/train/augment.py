"""Training-time augmentation of normalised windows ``[batch, time, channels]``.

Off by default (``TrainConfig.augment = []``). Each augmentation is named, optionally with its
magnitude (``"scale"``, ``"scale=0.2"``), and draws its randomness from the trainer's seeded
``torch.Generator`` on the CPU, so a CPU run with augmentation is as deterministic as one without.
No rotations: the total-acceleration channels carry the gravity direction, which separates sitting,
standing and lying, and a random rotation would destroy that cue.

- ``scale[=sigma]``: multiply each channel of each window by ``N(1, sigma)`` (default 0.1).
- ``jitter[=sigma]``: add Gaussian noise ``N(0, sigma)`` (default 0.05, in standard deviations).
- ``shift[=max]``: shift each window in time by up to ``max`` samples (default 8), repeating the edge.
- ``timewarp[=max]``: resample each window at a speed ``U(1 - max, 1 + max)`` around its centre
  (default 0.1), linear interpolation, edges repeated: faster or slower gait, same activity.
"""

from __future__ import annotations

import torch

DEFAULTS: dict[str, float] = {"scale": 0.1, "jitter": 0.05, "shift": 8.0, "timewarp": 0.1}


def parse(spec: str) -> tuple[str, float]:
    """``"scale=0.2"`` -> ``("scale", 0.2)``; ``"shift"`` -> ``("shift", 8.0)``; ValueError otherwise."""
    name, sep, value = spec.partition("=")
    name = name.strip()
    if name not in DEFAULTS:
        raise ValueError(f"unknown augmentation {name!r} (known: {', '.join(DEFAULTS)})")
    if not sep:
        return name, DEFAULTS[name]
    try:
        magnitude = float(value)
    except ValueError:
        raise ValueError(f"augmentation {spec!r}: magnitude {value!r} is not a number") from None
    if not magnitude >= 0 or (name == "timewarp" and magnitude >= 1):
        raise ValueError(f"augmentation {spec!r}: magnitude must be >= 0 (timewarp: below 1)")
    return name, magnitude


def _resample(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of x [B, T, C] at fractional time positions [B, T] (clamped to the window)."""
    T = x.shape[1]
    positions = positions.clamp(0, T - 1)
    lo = positions.floor().long().clamp(max=T - 1)
    hi = (lo + 1).clamp(max=T - 1)
    frac = (positions - lo.to(positions.dtype)).unsqueeze(-1).to(x.dtype)
    index = lambda i: i.unsqueeze(-1).expand(-1, -1, x.shape[2])  # noqa: E731
    return torch.gather(x, 1, index(lo)) * (1 - frac) + torch.gather(x, 1, index(hi)) * frac


def apply(x: torch.Tensor, specs: list[str], generator: torch.Generator) -> torch.Tensor:
    """Augment a batch; returns a new tensor of the same shape, dtype and device (x is not modified)."""
    if not specs:
        return x
    B, T, C = x.shape
    device, dtype = x.device, x.dtype

    def draw(*shape: int) -> torch.Tensor:  # standard normal from the trainer's CPU generator
        return torch.randn(*shape, generator=generator).to(device=device, dtype=dtype)

    def uniform(*shape: int) -> torch.Tensor:  # U(-1, 1)
        return (torch.rand(*shape, generator=generator) * 2 - 1).to(device=device)

    out = x
    for spec in specs:
        name, m = parse(spec)
        if m == 0:
            continue
        if name == "scale":
            out = out * (1 + m * draw(B, 1, C))
        elif name == "jitter":
            out = out + m * draw(B, T, C)
        elif name == "shift":
            steps = torch.round(uniform(B, 1) * m)
            out = _resample(out, torch.arange(T, device=device).unsqueeze(0) - steps)
        elif name == "timewarp":
            speed = 1 + m * uniform(B, 1)
            centre = (T - 1) / 2
            out = _resample(out, centre + (torch.arange(T, device=device).unsqueeze(0) - centre) * speed)
    return out
