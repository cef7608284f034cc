"""Training recipes shared by presets of several architectures (a module of its own, so that using one
imports no architecture: importing one registers it, which would reorder the zoo)."""

from __future__ import annotations

from typing import Any

# resnet1d:pooled_stats' training, chosen on the validation subjects (docs/results.md); later candidates
# change one thing and keep it, so that the comparison is with pooled_stats alone
POOLED_STATS_TRAIN: dict[str, Any] = {
    "lr": 0.001,
    "batch_size": 64,
    "max_epochs": 20,
    "patience": 20,
    "weight_decay": 5e-4,
    "augment": ["jitter", "shift", "timewarp"],
    "schedule": "cosine",
    "warmup_epochs": 1,
    "label_smoothing": 0.1,
}
