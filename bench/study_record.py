"""Record what a finished `har tune --study NAME` found, for docs/results.md: the champion of one
permutation (chosen on validation, tested once), its test scores, its batch-1 latency as the trial measured
it (one CPU thread), the study's wall time and trial count.

    har tune --study uci_har --permutations all --trials 16 --concurrency 2 --plain
    python bench/study_record.py --study uci_har --command "har tune --study uci_har ..."

Reads runs/<study>/metrics.json (what `har tune` wrote) and the winner's MLflow run; writes
bench/results/study_<study>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
    parser.add_argument("--load-average", type=float, default=None, help="load average during the study")
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
        "command": args.command,
        "machine": machine_line(),
        "load_average": args.load_average if args.load_average is not None else round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = ROOT / "bench" / "results" / f"study_{args.study}.json"
    save_json(out, record)
    print(json.dumps(record, indent=2))
    print(f"wrote {out}")
    render_docs()


if __name__ == "__main__":
    main()
