"""Scale-out of `har tune`, measured by simulation: a myogym-shaped study (5 permutations x 30 trials,
0.5 GPU per trial) on real multi-node Ray clusters on 127.0.0.1 whose nodes declare 4 logical GPUs each.

    python bench/scale.py                      # 1, 2 and 4 nodes (JSON, then docs/results.md)
    python bench/scale.py --nodes 1 2 4 8      # 8 too, if memory allows
    python bench/scale.py --report-only        # re-render the docs from the JSON

Everything but the training is the product's own path: `har tune --simulate` (Tune, one Optuna searcher
and one ASHA scheduler per permutation, all permutations at once, MLflow trial logging in SQLite, Optuna
storage). Simulated trials sleep each epoch for a duration drawn from the measured UCI HAR epoch times
(bench/results/throughput.json: 5,881 training windows / windows per second of each model of the zoo),
scaled so that their median is --median-epoch seconds (a GPU-sized epoch), and report learning curves
that ASHA prunes as it would real ones (their plateaus are a hash of the configuration: nothing to learn).

Measured per cluster size, between the first trial start and the last trial end (the trials' own clocks):
- utilisation: busy slot-seconds / available slot-seconds (slots = nodes x 4 GPUs / 0.5 GPU per trial)
- speedup over 1 node (tuning span)
- slot gap: seconds between a trial ending on a worker and the next trial starting on it (median, p95)
- MLflow writes: metric values logged per second over the span
Results: bench/results/scale.json; the slot picture: docs/img/scale-slots.png.
"""

from __future__ import annotations

import argparse
import json
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
import itertools

from report_sections import render_docs, save_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale.json"
PICTURE = ROOT / "docs" / "img" / "scale-slots.png"
UCI_HAR_TRAIN_WINDOWS = 5881  # 7,352 training windows less the validation subjects (val_fraction 0.2)
GPUS_PER_NODE = 4
GPU_PER_TRIAL = 0.5
ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


def epoch_seconds(median: float) -> list[float]:
    """UCI HAR epoch times of the zoo's models on this machine's CPU, scaled to the given median."""
    measured = json.loads((ROOT / "bench" / "results" / "throughput.json").read_text())
    raw = [UCI_HAR_TRAIN_WINDOWS / m["train"]["windows_per_s"] for m in measured["models"] if "train" in m]
    scale = median / statistics.median(raw)
    return [round(s * scale, 3) for s in raw]


def make_project(folder: Path, trials: int) -> None:
    """params.yaml and pipelines/myogym.yaml (0.5 GPU and 1 CPU per trial)."""
    (folder / "pipelines").mkdir(parents=True)
    (folder / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    study = yaml.safe_load((ROOT / "pipelines" / "myogym.yaml").read_text())
    study["resources"] = {"cpu": 1, "gpu": GPU_PER_TRIAL}
    study["budget"]["trials"] = trials
    (folder / "pipelines" / "myogym.yaml").write_text(yaml.safe_dump(study))


def run_cluster(nodes: int, trials: int, sim: Path, folder: Path) -> dict[str, Any]:
    """One `har tune --simulate` on a fresh cluster of ``nodes`` nodes (stopped by the Cluster object)."""
    from ray.cluster_utils import Cluster

    os.environ.update(ENV)
    slots = int(nodes * GPUS_PER_NODE / GPU_PER_TRIAL)
    node_args = {"num_cpus": slots // nodes, "num_gpus": GPUS_PER_NODE, "memory": 2 * 1024**3,
                 "object_store_memory": 100 * 1024**2, "include_dashboard": False}  # fmt: skip
    project = folder / f"nodes-{nodes}"
    make_project(project, trials)
    cluster = Cluster(initialize_head=True, head_node_args=node_args)
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        command = [str(Path(sys.executable).parent / "har"), "tune", "--study", "myogym", "--simulate", str(sim),
                   "--address", cluster.address, "--concurrency", str(slots), "--plain",
                   "--storage-path", str(project / "tune")]  # fmt: skip
        started = time.time()
        proc = subprocess.run(command, cwd=project, env={**os.environ, **ENV}, capture_output=True, text=True)
        command_wall = time.time() - started
    finally:
        cluster.shutdown()
    if proc.returncode != 0:
        sys.exit(f"har tune failed on {nodes} node(s):\n{proc.stderr[-3000:]}")
    trials_seen = read_trials(project / "tune")
    return {**measure(trials_seen, slots), "nodes": nodes, "slots": slots, "command_wall_s": round(command_wall, 1),
            "mlflow_values_per_s": mlflow_rate(project / "mlflow.db", trials_seen), "_trials": trials_seen}  # fmt: skip


def read_trials(storage: Path) -> list[dict[str, Any]]:
    """Each trial's span on its worker (trial function start to last report), worker and permutation."""
    out = []
    for path in storage.glob("*/*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            first, last = rows[0], rows[-1]
            out.append({"start": first["started_at"], "end": last["reported_at"], "worker": f"{last['node_id'][:8]}/{last['pid']}",
                        "permutation": last["config"]["permutation"], "epochs": last["epoch"]})  # fmt: skip
    return sorted(out, key=lambda t: t["start"])


def measure(trials: list[dict[str, Any]], slots: int) -> dict[str, Any]:
    first, last = min(t["start"] for t in trials), max(t["end"] for t in trials)
    busy = sum(t["end"] - t["start"] for t in trials)
    gaps = []
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for t in trials:
        by_worker.setdefault(t["worker"], []).append(t)
    for runs in by_worker.values():
        runs.sort(key=lambda t: t["start"])
        gaps += [b["start"] - a["end"] for a, b in itertools.pairwise(runs)]
    gaps.sort()
    ramp = statistics.median(min(t["start"] for t in runs) - first for runs in by_worker.values())
    return {
        "gpus_per_node": GPUS_PER_NODE, "gpu_per_trial": GPU_PER_TRIAL, "trials": len(trials),
        "wall_s": round(last - first, 1), "utilization": round(busy / (slots * (last - first)), 3),
        "slot_gap_s": round(statistics.median(gaps), 3) if gaps else None,
        "slot_gap_p95_s": round(gaps[int(0.95 * (len(gaps) - 1))], 3) if gaps else None,
        "workers": len(by_worker), "epochs": sum(t["epochs"] for t in trials),
        "ramp_s": round(ramp, 1),  # median wait of a worker for its first trial (worker start-up)
        "drain_s": round(last - max(t["start"] for t in trials), 1),  # after the last trial start: slots only empty
    }  # fmt: skip


def mlflow_rate(db: Path, trials: list[dict[str, Any]]) -> float:
    with sqlite3.connect(db) as conn:
        (values,) = conn.execute("select count(*) from metrics").fetchone()
    span = max(t["end"] for t in trials) - min(t["start"] for t in trials)
    return round(values / span, 1)


def picture(trials: list[dict[str, Any]], slots: int, nodes: int, path: Path) -> None:
    """One row per slot (worker), one bar per trial, coloured by permutation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min(t["start"] for t in trials)
    workers = sorted({t["worker"] for t in trials})
    perms = sorted({t["permutation"] for t in trials}, key=lambda p: (len(p), p))
    colours = dict(zip(perms, plt.get_cmap("tab10").colors, strict=False))
    fig, ax = plt.subplots(figsize=(10, 0.22 * len(workers) + 1.6))
    for t in trials:
        ax.barh(workers.index(t["worker"]), t["end"] - t["start"], left=t["start"] - t0, height=0.8,
                color=colours[t["permutation"]], edgecolor="white", linewidth=0.4)  # fmt: skip
    ax.set_yticks([])
    ax.set_ylabel(f"{len(workers)} trial workers ({slots} slots)")
    ax.set_xlabel("seconds since the first trial started")
    ax.set_title(f"har tune --simulate, myogym-shaped study on {nodes} nodes x {GPUS_PER_NODE} GPUs")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[p]) for p in perms]
    ax.legend(handles, perms, ncol=len(perms), loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--trials", type=int, default=30, help="per permutation (5 permutations)")
    parser.add_argument("--median-epoch", type=float, default=1.0, help="median simulated epoch, seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="re-render the docs from the JSON")
    args = parser.parse_args()
    if args.report_only:
        render_docs()
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="har-bench-scale-") as tmp:
        sim = Path(tmp) / "epochs.json"
        durations = epoch_seconds(args.median_epoch)
        sim.write_text(json.dumps({"epoch_seconds": durations}))
        for nodes in args.nodes:
            run = run_cluster(nodes, args.trials, sim, Path(tmp))
            trials = run.pop("_trials")
            if nodes == max(args.nodes):
                picture(trials, run["slots"], nodes, PICTURE)
                t0 = min(t["start"] for t in trials)
                timeline = [
                    {**t, "start": round(t["start"] - t0, 2), "end": round(t["end"] - t0, 2)} for t in trials
                ]
            runs.append(run)
            print(json.dumps(run), flush=True)
    base = next((r for r in runs if r["nodes"] == 1), None)
    for run in runs:
        run["speedup"] = round(base["wall_s"] / run["wall_s"], 2) if base else None
    record = {
        "benchmark": "har tune --simulate: myogym-shaped study (5 permutations, all at once) on N local nodes",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "epoch_seconds": {
            "median": statistics.median(durations),
            "min": min(durations),
            "max": max(durations),
            "source": "bench/results/throughput.json (UCI HAR shape, CPU), scaled",
        },
        "targets": {"utilization": 0.9, "speedup_4_nodes": 3.6, "slot_gap_s": 1.0},
        "picture": str(PICTURE.relative_to(ROOT)),
        "runs": runs,
        "timeline": timeline,  # the largest cluster's trials: the picture's data
    }
    save_json(args.out, record)
    print(f"wrote {args.out}")
    if args.out == RESULTS:
        render_docs()


if __name__ == "__main__":
    main()
