"""Record what a finished `har tune --study NAME` found, for docs/results.md: the champion of one
permutation (chosen on validation, tested once), its test scores, its batch-1 latency as the trial measured
it (one CPU thread), the study's wall time and trial count; for a study with a second objective, its Pareto
front and, with --predict-experiment, the registered champion's per-window latency through `har predict`
(batch 1, one CPU thread) on a raw UCI HAPT experiment written as a user's recording.

    har tune --study uci_har --permutations all --trials 16 --concurrency 2 --plain
    python bench/study_record.py --study uci_har --command "har tune --study uci_har ..."
    python bench/study_record.py --study uci_har_fast --predict-experiment 3 --command "har tune --study uci_har_fast"

Reads runs/<study>/metrics.json (what `har tune` wrote) and the winner's MLflow run; writes
bench/results/study_<study>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line
from report_sections import render_docs, save_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", default="uci_har")
    parser.add_argument("--permutation", default="all")
    parser.add_argument(
        "--tracking-uri", default=None, help="default: as har tune ($MLFLOW_TRACKING_URI, mlflow.db)"
    )
    parser.add_argument("--command", required=True, help="the har tune command line that ran the study")
    parser.add_argument("--load-average", type=float, default=None,
                        help="load average during the study (default: the 15-minute one, if recorded right after it)")  # fmt: skip
    parser.add_argument("--predict-experiment", type=int, default=None,
                        help="UCI HAPT experiment number (data/raw/uci_hapt) for the har predict latency")  # fmt: skip
    args = parser.parse_args()
    from mlflow.tracking import MlflowClient

    from har.tracking.store import resolve_uri

    metrics_file = ROOT / "runs" / args.study / "metrics.json"
    if not metrics_file.is_file():
        sys.exit(f"{metrics_file}: missing; run the study first")
    metrics = json.loads(metrics_file.read_text())
    best = metrics["permutations"][args.permutation]
    client = MlflowClient(resolve_uri(args.tracking_uri))
    exp = client.get_experiment_by_name(args.study)
    (winner,) = client.search_runs(
        [exp.experiment_id],
        f"tags.`har.role` = 'trial' and tags.`har.winner` = 'true' and tags.`ray.trial_id` = '{best['best_trial']}'",
    )
    record = {
        "study": args.study,
        "study_run": metrics["study_run"],
        "permutation": args.permutation,
        "wall_s": best["wall_seconds"],
        "trials": best["trials"],
        "failed_trials": best["failed_trials"],
        "champion": winner.info.run_name,
        "val_macro_f1": round(best["val/macro_f1"], 4),
        "test_accuracy": round(best["test/accuracy"], 4),
        "test_macro_f1": round(best["test/macro_f1"], 4),
        "latency_ms": round(winner.data.metrics["latency_ms"], 3),
        "registered": best.get("registered"),
        **({"pareto": best["pareto"]} if best.get("pareto") else {}),
        "command": args.command,
        "machine": machine_line(),
        "load_average": args.load_average if args.load_average is not None else round(os.getloadavg()[2], 2),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if args.predict_experiment is not None:
        record["predict"] = predict_latency(best["registered"], args.predict_experiment)
    out = ROOT / "bench" / "results" / f"study_{args.study}.json"
    save_json(out, record)
    print(json.dumps(record, indent=2))
    print(f"wrote {out}")
    render_docs()


def predict_latency(model: str, experiment: int, repeats: int = 9) -> dict:
    """``har predict --batch-size 1 --threads 1`` of ``model`` on UCI HAPT experiment ``experiment`` (its raw
    accelerometer and gyroscope, as a user's CSV recording), ``repeats`` times: the per-window inference
    time each run prints (the mean over the recording's windows) and their median."""
    import numpy as np
    import pandas as pd

    from har.data.formats import uci_hapt
    from har.predict.recording import RAW_UCI_HAPT

    folder = uci_hapt.raw_dir(ROOT / "data" / "raw" / "uci_hapt")
    found = [uci_hapt.RAW_NAME.match(p.name) for p in sorted(folder.iterdir())]
    users = {int(m[1]): int(m[2]) for m in found if m}
    if experiment not in users:
        sys.exit(f"{folder}: no raw file of experiment {experiment}")
    user = users[experiment]
    acc, gyro = uci_hapt.read_experiment(folder, experiment, user)
    har = str(Path(sys.executable).parent / "har")
    name = f"exp{experiment:02d}_user{user:02d}.csv"
    with tempfile.TemporaryDirectory(prefix="har-study-record-") as tmp:
        table = pd.DataFrame(np.hstack([acc, gyro]), columns=RAW_UCI_HAPT)
        table.insert(0, "time", np.arange(len(table)) / 50.0)
        table.to_csv(Path(tmp) / name, index=False)
        args = ["-m", model, "-i", name, "--batch-size", "1", "--threads", "1"]
        env = {**os.environ, "COLUMNS": "200",
               "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")}  # fmt: skip
        runs = []
        for _ in range(repeats):  # separate processes: each pays its own first calls, as a user's does
            proc = subprocess.run([har, "predict", *args, "--output", str(Path(tmp) / "out.csv")], cwd=tmp,
                                  capture_output=True, text=True, env=env)  # fmt: skip
            line = re.search(r"inference: ([0-9.]+) ms per window \((\d+) windows", proc.stdout)
            if proc.returncode != 0 or line is None:
                sys.exit(
                    f"har predict failed (exit {proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
                )
            print(line[0], flush=True)
            runs.append(float(line[1]))
    return {
        "model": model,
        "recording": f"UCI HAPT experiment {experiment} (user {user}): raw acc + gyro at 50 Hz as a CSV",
        "windows": int(line[2]),
        "runs_ms": runs,
        "latency_ms": statistics.median(runs),
        "load_average": round(os.getloadavg()[0], 2),
        "command": f"har predict {' '.join(args)}",
    }


if __name__ == "__main__":
    main()
