"""What a study costs beyond training: the same N trial configurations trained by a bare in-process loop
(no Ray, no MLflow: ``har.train.loop.fit``, the trainer the trials use, N at a time over a process pool)
and by ``run_study`` (Ray Tune, MLflow, checkpoints, the winner tested, logged and registered), on the
real UCI HAR task, same concurrency, tracking on SQLite and on an MLflow tracking server.

    python bench/overhead.py                      # 8 configurations x 8 epochs, 2 at a time
    python bench/overhead.py --trials 4 --epochs 2

overhead = (study wall - bare wall) / bare wall (target < 10%). Fixed cost per study: the study's wall
before its first trial started (Ray, data) plus after its last trial ended (winner test, MLflow, registry);
per trial: what is left, divided by the number of trials per slot. Results: bench/results/overhead.json.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line
from report_sections import render_docs, save_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "overhead.json"
MODEL = {"resnet1d": {"preset": "wang2017", "space": {"widths": [32, 64, 64], "dropout": 0.1}}}
TRAIN = {"lr": 0.001, "batch_size": 64, "patience": 1000, "schedule": "plateau"}  # every epoch runs
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


def study_spec(args: argparse.Namespace, name: str):
    """One fixed configuration (constants only), N trials of it: every trial trains the same thing."""
    from har.tune.study import StudySpec

    return StudySpec.model_validate({
        "name": name, "dataset": "uci_hapt", "permutations": ["all"], "models": MODEL, "train": TRAIN,
        "budget": {"trials": args.trials, "max_epochs": args.epochs, "grace_period": args.epochs, "retries": 0},
        "resources": {"cpu": 1}, "concurrency": args.concurrency, "seed": 0,
        "search": {"sampler": "random", "scheduler": "none"},
    })  # fmt: skip


def bare_one(epochs: int) -> float:
    """One configuration through the trainer alone, as a trial does it (one thread); its seconds."""
    import torch

    from har.models import build
    from har.train.data import load_train_data
    from har.train.loop import fit, seed_everything
    from har.train.run import RunSpec, resolve

    start = time.perf_counter()
    data = load_train_data(ROOT / "data" / "prepared", "uci_hapt")
    ((model_name, choice),) = MODEL.items()
    spec = RunSpec("uci_hapt", "all", model_name, choice["preset"], choice["space"],
                   {**TRAIN, "max_epochs": epochs, "seed": 0, "num_threads": 1})  # fmt: skip
    hparams, cfg = resolve(spec)
    torch.set_num_threads(1)
    seed_everything(cfg.seed)
    model = build(model_name, len(data.channels), len(data.classes), data.window, **hparams)
    fit(model, data.splits["train"], data.splits["val"], data.classes, cfg)
    return time.perf_counter() - start


def bare(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.concurrency) as pool:
        seconds = list(pool.map(bare_one, [args.epochs] * args.trials))
    return {
        "bare_wall_s": round(time.perf_counter() - start, 1),
        "bare_trial_s": round(sum(seconds) / len(seconds), 1),
    }


def study(args: argparse.Namespace, tracking: str, tmp: Path, name: str) -> dict[str, Any]:
    import ray
    from mlflow.tracking import MlflowClient

    from har.tune.driver import TuneOptions, run_study

    options = TuneOptions(storage_path=str(tmp / "tune"), tracking_uri=tracking, prepared_dir=ROOT / "data" / "prepared",
                          params_path=ROOT / "params.yaml", num_cpus=args.concurrency, live=False,
                          optuna_storage=f"sqlite:///{tmp}/{name}-optuna.db", metrics_out=tmp / f"{name}.json")  # fmt: skip
    start = time.time()
    run_study(study_spec(args, name), options)
    wall = time.time() - start
    ray.shutdown()
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], "tags.`har.role` = 'trial'", max_results=1000)
    # a trial run opens when its trial starts; its last validation score is its last epoch's end (the run
    # itself is closed later, with the winner's logging)
    ends = {r.info.run_id: max(m.timestamp for m in client.get_metric_history(r.info.run_id, "val/macro_f1")) / 1000
            for r in runs}  # fmt: skip
    first, last = min(r.info.start_time for r in runs) / 1000, max(ends.values())
    trial_s = sum(ends[r.info.run_id] - r.info.start_time / 1000 for r in runs) / len(runs)
    fixed = (first - start) + (start + wall - last)
    rounds = args.trials / args.concurrency
    return {"study_wall_s": round(wall, 1), "trials": len(runs), "study_trial_s": round(trial_s, 1),
            "fixed_per_study_s": round(fixed, 1), "before_first_trial_s": round(first - start, 1),
            "after_last_trial_s": round(start + wall - last, 1),
            "per_trial_s": round((wall - fixed) / rounds, 1)}  # fmt: skip


def tracking_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow = str(Path(sys.executable).parent / "mlflow")
    proc = subprocess.Popen([mlflow, "server", "--backend-store-uri", f"sqlite:///{tmp}/server.db",
                             "--artifacts-destination", str(tmp / "server-artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(1)
    proc.kill()
    raise SystemExit(f"the MLflow server on {url} did not answer within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="re-render the docs from the JSON")
    args = parser.parse_args()
    if args.report_only:
        render_docs()
        return
    if not (ROOT / "data" / "prepared" / "uci_hapt" / "meta.json").is_file():
        sys.exit("prepare the data first: har data fetch uci_hapt && har data prepare uci_hapt")
    record: dict[str, Any] = {
        "trials": args.trials, "max_epochs": args.epochs, "concurrency": args.concurrency,
        "machine": machine_line(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": "python bench/overhead.py " + " ".join(sys.argv[1:]),
    }  # fmt: skip
    record.update(bare(args))
    print("bare loop", record, flush=True)
    with tempfile.TemporaryDirectory(prefix="har-bench-overhead-") as tmp:
        folder = Path(tmp)
        record["sqlite"] = study(args, f"sqlite:///{folder}/mlflow.db", folder, "overhead-sqlite")
        print("study, SQLite", record["sqlite"], flush=True)
        server, url = tracking_server(folder)
        try:
            record["server"] = study(args, url, folder, "overhead-server")
        finally:
            server.terminate()
            server.wait(timeout=30)
        print("study, tracking server", record["server"], flush=True)
    for store in ("sqlite", "server"):
        part = record[store]
        part["overhead"] = round((part["study_wall_s"] - record["bare_wall_s"]) / record["bare_wall_s"], 3)
    record.update(overhead=record["sqlite"]["overhead"], study_wall_s=record["sqlite"]["study_wall_s"],
                  load_average_after=round(os.getloadavg()[0], 2))  # fmt: skip
    save_json(RESULTS, record)
    print(f"overhead {100 * record['overhead']:.1f}% (SQLite), {100 * record['server']['overhead']:.1f}% "
          f"(tracking server); wrote {RESULTS}")  # fmt: skip
    render_docs()


if __name__ == "__main__":
    main()
