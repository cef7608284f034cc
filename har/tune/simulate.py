"""Simulated training, for benchmarks and tests of the tuning machinery only (``har tune --simulate``).

A simulated trial trains nothing: it holds its Ray slot for as long as real epochs take (each epoch a
duration drawn from measured epoch times) and reports a plausible learning curve (rising to a plateau drawn from a
hash of the sampled configuration, with noise), so ASHA prunes as it would. The plateaus have no structure
for Optuna to learn: the simulation measures the machinery, not the search.
Everything else is the real path: Tune, the Optuna searchers, ASHA, the MLflow trial logging. Winners
of a simulated study are never tested or registered. The worker imports neither torch nor the data.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune

from har.errors import BadInput


def load_epoch_seconds(path: Path) -> list[float]:
    """The epoch durations to draw from: a JSON file ``{"epoch_seconds": [...]}`` (or a bare list)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"--simulate {path}: not a readable JSON file ({exc})") from exc
    values = raw.get("epoch_seconds") if isinstance(raw, dict) else raw
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, int | float) and v > 0 for v in values)
    ):
        raise BadInput(f"--simulate {path}: needs 'epoch_seconds', a non-empty list of positive seconds")
    return [float(v) for v in values]


def simulated_trial(config: dict[str, Any], payload: dict[str, Any]) -> None:
    """Sleep through ``max_epochs`` simulated epochs, reporting each like ``har.tune.trial.run_trial``."""
    started = time.time()
    key = json.dumps(config, sort_keys=True, default=str) + str(payload["seed"])
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    plateau = rng.uniform(0.35, 0.95)  # what this configuration would reach
    pace = rng.uniform(1.0, 6.0)  # epochs to get about two thirds of the way there
    latency = rng.uniform(0.5, 5.0)
    objective, metric = payload["objective_key"], payload["metric"]
    node = ray.get_runtime_context().get_node_id()
    best, best_epoch, best_row = None, 0, {}
    max_epochs, patience = payload["max_epochs"], payload["patience"]
    for epoch in range(1, max_epochs + 1):
        epoch_seconds = rng.choice(payload["epoch_seconds"])  # each epoch its own draw
        time.sleep(epoch_seconds)
        f1 = max(0.0, min(1.0, plateau * (1 - math.exp(-epoch / pace)) + rng.gauss(0.0, 0.01)))
        row = {"val/macro_f1": f1, "val/accuracy": min(1.0, f1 + 0.03), "val/loss": 2.0 * (1.0 - f1)}
        value = row[metric]
        better = best is None or (value < best if metric == "val/loss" else value > best)
        if better:
            best, best_epoch, best_row = value, epoch, row
        last = epoch >= max_epochs or epoch - best_epoch >= patience
        tune.report({
            "epoch": epoch, **row, "train/loss": 2.0 * (1.0 - f1) * 0.9, "epoch_seconds": epoch_seconds,
            **{f"best/{k}": v for k, v in best_row.items()}, objective: best,
            "best_epoch": best_epoch, "last": int(last), "latency_ms": latency, "parameters": 0,
            "node_id": node, "simulated": 1, "started_at": started, "reported_at": time.time(),
        })  # fmt: skip
        if last:
            return
