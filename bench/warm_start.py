"""Warm start, measured through `har tune` on UCI HAR (prepared from raw UCI HAPT): time until a search
of one permutation reaches a fixed validation target, with and without `search.warm_start` from a
search of a neighbouring permutation, 3 repeats each (seeds 0, 1, 2).

    har data fetch uci_hapt && har data prepare uci_hapt      # once
    python bench/warm_start.py                                # source search, then 2 x 3 target searches
    python bench/warm_start.py --target 0.85 --repeats 5
    python bench/warm_start.py --report-only                  # re-render docs/results.md from the JSON

The source is one search of permutation `all`; each target search is permutation `acc` with the same
space, budget and seed, cold or warm-started with the source's --top best configurations. Time to target:
from the first trial's start to the first epoch whose validation macro F1 reaches --target (MLflow metric
timestamps); a search that never reaches it counts as its whole wall time and is flagged.
Results: bench/results/warm_start.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_sections import render_docs, save_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "warm_start.json"
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "OMP_NUM_THREADS": "1"}


def study(permutation: str, seed: int, trials: int, epochs: int, warm: dict | None) -> dict[str, Any]:
    return {
        "dataset": "uci_hapt",
        "permutations": [permutation],
        "models": {
            "lstm": {"space": {"hidden": {"int": [16, 96]}, "layers": {"choice": [1, 2]}}},
            "cnn_lstm": {"preset": "tutorial", "space": {"filters": {"choice": [16, 32, 64]}}},
        },
        "train": {
            "lr": {"loguniform": [1.0e-4, 1.0e-2]},
            "batch_size": {"choice": [32, 64, 128]},
            "patience": 4,
        },
        "budget": {
            "trials": trials,
            "max_epochs": epochs,
            "grace_period": 2,
            "reduction_factor": 2,
            "retries": 0,
        },
        "resources": {"cpu": 1},
        "concurrency": 2,
        "seed": seed,
        "search": {"sampler": "tpe", "startup_trials": 3, **({"warm_start": warm} if warm else {})},
    }


def tune(project: Path, name: str, body: dict[str, Any]) -> float:
    (project / "pipelines" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    started = time.time()
    proc = subprocess.run([str(Path(sys.executable).parent / "har"), "tune", "--study", name, "--num-cpus", "2",
                           "--plain", "--no-register"], cwd=project, env={**os.environ, **ENV},
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"har tune --study {name} failed:\n{proc.stderr[-3000:]}")
    return time.time() - started


def time_to_target(project: Path, name: str, target: float, others: list[float]) -> dict[str, Any]:
    """Seconds from the first trial's start to the first validation macro F1 >= target (and >= each of
    ``others``: None when never reached), and the best."""
    with sqlite3.connect(project / "mlflow.db") as db:
        rows = db.execute(
            "select r.start_time, r.end_time from runs r join experiments e on r.experiment_id = e.experiment_id "
            "join tags t on t.run_uuid = r.run_uuid where e.name = ? and t.key = 'har.role' and t.value = 'trial'",
            (name,),
        ).fetchall()
        values = db.execute(
            "select m.timestamp, m.value from metrics m join runs r on m.run_uuid = r.run_uuid join experiments e "
            "on r.experiment_id = e.experiment_id where e.name = ? and m.key = 'val/macro_f1'",
            (name,),
        ).fetchall()
    first, last = min(s for s, _ in rows), max(e for _, e in rows)
    hits = [ts for ts, v in values if v >= target]

    def seconds(level: float) -> float | None:
        reached = [ts for ts, v in values if v >= level]
        return round((min(reached) - first) / 1000, 1) if reached else None

    return {
        "seconds": round(((min(hits) if hits else last) - first) / 1000, 1),
        "reached": bool(hits),
        "other_targets_s": {str(level): seconds(level) for level in others},
        "best_val_macro_f1": round(max(v for _, v in values), 4),
        "trials": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", type=float, default=0.93, help="validation macro F1 to reach")
    parser.add_argument(
        "--also", type=float, nargs="*", default=[0.85, 0.90, 0.95], help="other targets reported"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--top", type=int, default=3, help="configurations the warm start enqueues")
    parser.add_argument("--report-only", action="store_true", help="re-render the docs from the JSON")
    args = parser.parse_args()
    if args.report_only:
        render_docs()
        return
    prepared = ROOT / "data" / "prepared" / "uci_hapt"
    if not (prepared / "meta.json").is_file():
        sys.exit("prepare the data first: har data fetch uci_hapt && har data prepare uci_hapt")
    with tempfile.TemporaryDirectory(prefix="har-bench-warm-") as tmp:
        project = Path(tmp)
        (project / "pipelines").mkdir()
        (project / "params.yaml").write_text((ROOT / "params.yaml").read_text())
        (project / "data").mkdir()
        (project / "data" / "prepared").symlink_to(ROOT / "data" / "prepared")
        source_wall = tune(project, "ws-source", study("all", 100, args.trials, args.epochs, None))
        runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
        for seed in range(args.repeats):
            for kind in ("cold", "warm"):
                name = f"ws-{kind}-{seed}"
                warm = {"from": "ws-source/all", "top": args.top} if kind == "warm" else None
                wall = tune(project, name, study("acc", seed, args.trials, args.epochs, warm))
                run = {
                    "seed": seed,
                    "wall_s": round(wall, 1),
                    **time_to_target(project, name, args.target, args.also),
                }
                runs[kind].append(run)
                print(kind, run, flush=True)
    summary = {
        kind: {"median_s": statistics.median(r["seconds"] for r in rs), "reached": sum(r["reached"] for r in rs),
               "best_val_macro_f1_median": statistics.median(r["best_val_macro_f1"] for r in rs)}
        for kind, rs in runs.items()
    }  # fmt: skip
    record = {
        "benchmark": "time to a validation target on uci_hapt permutation acc, warm-started from a search of all",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "target_val_macro_f1": args.target,
        "trials": args.trials,
        "max_epochs": args.epochs,
        "top": args.top,
        "source_wall_s": round(source_wall, 1),
        "summary": summary,
        "runs": runs,
    }
    save_json(RESULTS, record)
    print(f"wrote {RESULTS}")
    render_docs()


if __name__ == "__main__":
    main()
