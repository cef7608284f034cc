"""Tuning benchmark on the real UCI HAR task (prepared from raw UCI HAPT): scaling from one Ray node to
two. Search efficiency is bench/search.py, overhead against a bare loop bench/overhead.py.

    python bench/tune.py                              # the scaling part, default budget
    python bench/tune.py --report-only                # re-render docs/results.md from the JSON

- scaling: trials per hour of the same study on one local node with N CPUs against two local nodes
  (`ray start --head` + `ray start --address`) with N CPUs each, trials pinned to one CPU.

Results: bench/results/tune.json (with the machine and the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_sections import render_docs, save_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tune.json"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def study_spec(trials: int, epochs: int, concurrency: int, sampler: str, asha: bool, name: str):
    """The bench space: the lstm family (fast on CPU, the published 91.65% reference) and cnn_lstm."""
    from har.tune.study import StudySpec

    body: dict[str, Any] = {
        "name": name,
        "dataset": "uci_hapt",
        "permutations": ["all"],
        "models": {
            "lstm": {"space": {"hidden": {"int": [32, 96]}, "layers": {"choice": [1, 2]}}},
            "cnn_lstm": {"preset": "tutorial", "space": {"filters": {"choice": [32, 64]}}},
        },
        "train": {"lr": {"loguniform": [3.0e-4, 5.0e-3]}, "batch_size": {"choice": [64, 128]}, "patience": 6},
        "budget": {"trials": trials, "max_epochs": epochs, "grace_period": 2 if asha else epochs,
                   "reduction_factor": 3, "retries": 0},
        "resources": {"cpu": 1},
        "concurrency": concurrency,
        "seed": 0,
        "search": {"sampler": sampler, "startup_trials": max(2, trials // 4)},
    }  # fmt: skip
    return StudySpec.model_validate(body)


def run(spec, tracking: str, storage: str, address: str | None = None, num_cpus: int | None = None):
    import ray

    from har.tune.driver import TuneOptions, run_study

    if ray.is_initialized():
        ray.shutdown()
    options = TuneOptions(address=address, storage_path=storage, tracking_uri=tracking,
                          prepared_dir=ROOT / "data" / "prepared", params_path=ROOT / "params.yaml",
                          num_cpus=num_cpus, register=False)  # fmt: skip
    start = time.time()
    outcome = run_study(spec, options)[0]
    wall = time.time() - start
    ray.shutdown()
    return outcome, start, wall


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scaling_part(args, tmp: Path) -> dict[str, Any]:
    ray_bin = str(Path(sys.executable).parent / "ray")
    record: dict[str, Any] = {}
    for nodes in (1, 2):
        port = _free_port()
        node = [
            "--num-cpus",
            str(args.cpus_per_node),
            "--memory",
            str(4 * 1024**3),
            "--object-store-memory",
            str(512 * 1024**2),
            "--disable-usage-stats",
            "--node-ip-address",
            "127.0.0.1",
        ]
        try:
            subprocess.run(
                [ray_bin, "start", "--head", "--port", str(port), "--include-dashboard", "false", *node],
                check=True,
                capture_output=True,
            )
            if nodes == 2:
                subprocess.run(
                    [ray_bin, "start", "--address", f"127.0.0.1:{port}", *node],
                    check=True,
                    capture_output=True,
                )
            concurrency = args.cpus_per_node * nodes
            spec = study_spec(
                args.trials, args.epochs, concurrency, "random", False, f"bench-scaling-{nodes}"
            )
            outcome, _, wall = run(
                spec, f"sqlite:///{tmp}/scaling-{nodes}.db", str(tmp / "tune"), address=f"127.0.0.1:{port}"
            )
        finally:
            subprocess.run([ray_bin, "stop", "--force"], capture_output=True)
        record[f"{nodes}_node"] = {
            "cpus": concurrency, "trials": outcome.trials, "wall_seconds": round(wall, 1),
            "trials_per_hour": round(3600 * outcome.trials / wall, 1),
        }  # fmt: skip
        print(f"{nodes} node(s)", json.dumps(record[f"{nodes}_node"]), flush=True)
    record["speedup"] = round(record["2_node"]["trials_per_hour"] / record["1_node"]["trials_per_hour"], 2)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="scaling")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument(
        "--report-only", action="store_true", help="re-render the docs from the JSON (docs/render.py)"
    )
    args = parser.parse_args()
    if args.report_only:
        render_docs()
        return
    if not (ROOT / "data" / "prepared" / "uci_hapt" / "meta.json").is_file():
        sys.exit("prepare the data first: har data fetch uci_hapt && har data prepare uci_hapt")
    parts = {"scaling": scaling_part}
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="har-bench-tune-") as tmp:
        for name in args.parts.split(","):
            record = parts[name](args, Path(tmp))
            results[name] = {
                **record,
                "trials": args.trials,
                "max_epochs": args.epochs,
                "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
                "load_average_after": os.getloadavg()[0],
                "date": time.strftime("%Y-%m-%d %H:%M"),
            }
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            save_json(RESULTS, results)
    print(f"wrote {RESULTS}")
    render_docs()


if __name__ == "__main__":
    main()
