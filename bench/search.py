"""Search efficiency on the real UCI HAR task: the `uci_har` study's space, the same budget for every
searcher, several repeats (seeds) each, run through the product (`har.tune.driver.run_study`).

    python bench/search.py                                   # 5 searchers x 5 seeds, short runs
    python bench/search.py --searchers tpe+asha,random+asha --repeats 2 --trials 4 --epochs 2
    python bench/search.py --report-only                     # re-render docs/results.md from the JSON

A searcher is ``<sampler>+<scheduler>`` (study file ``search.sampler`` / ``search.scheduler``):
tpe+asha (the default), random+asha, tpe+none (no early stopping), tpe+hyperband (asynchronous
Hyperband: ASHA over 3 brackets), gp+asha (Optuna's Gaussian-process sampler), tpe+median.
Per repeat: best validation macro F1, the champion's test accuracy and macro F1 (its one test), wall
time, time until any trial's validation macro F1 first reaches --val-target, time until the champion
(the trial later tested) finished if its test accuracy reaches --test-target (a test target can only be
timed on the one model tested), trials stopped early, epochs trained, and the best-so-far curve.
Per searcher: mean and std; against tpe+asha: paired differences per seed (Wilcoxon signed-rank).
Results: bench/results/search.json; figure: docs/img/search-best-so-far.png.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line
from report_sections import render_docs, save_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "search.json"
FIGURE = ROOT / "docs" / "img" / "search-best-so-far.png"
DEFAULT = "tpe+asha"
SEARCHERS = ("tpe+asha", "random+asha", "tpe+none", "tpe+hyperband", "gp+asha", "tpe+median")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def study_spec(searcher: str, seed: int, args: argparse.Namespace):
    """pipelines/uci_har.yaml (its models, space and training options), one permutation, the bench budget."""
    from har.tune.study import StudySpec

    body = yaml.safe_load((ROOT / "pipelines" / "uci_har.yaml").read_text())
    sampler, scheduler = searcher.split("+")
    body.update(
        name=f"bench-search-{searcher.replace('+', '-')}-s{seed}",
        permutations=["all"],
        budget={"trials": args.trials, "max_epochs": args.epochs, "grace_period": 1, "reduction_factor": 2,
                "retries": 1},
        resources={"cpu": 1},
        concurrency=args.concurrency,
        seed=seed,
        search={"sampler": sampler, "scheduler": scheduler, "startup_trials": max(2, args.trials // 3)},
    )  # fmt: skip
    return StudySpec.model_validate(body)


def run_one(searcher: str, seed: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import ray

    from har.tune.driver import TuneOptions, run_study

    spec = study_spec(searcher, seed, args)
    tracking = f"sqlite:///{tmp}/{spec.name}.db"
    options = TuneOptions(storage_path=str(tmp / "tune"), tracking_uri=tracking, prepared_dir=ROOT / "data" / "prepared",
                          params_path=ROOT / "params.yaml", num_cpus=args.concurrency, register=False,
                          metrics_out=tmp / f"{spec.name}.json", live=False)  # fmt: skip
    start = time.time()
    outcome = run_study(spec, options)[0]
    wall = time.time() - start
    ray.shutdown()
    trials = histories(tracking, spec.name)
    points = sorted((t - start, v) for trial in trials for t, v in trial["val"])
    curve, best = [], float("-inf")
    for t, v in points:
        if v > best:
            best = v
            curve.append([round(t, 1), round(v, 4)])
    reached = next((t for t, v in curve if v >= args.val_target), None)
    champion = next((tr for tr in trials if tr["winner"]), None)
    test_acc = outcome.test.get("test/accuracy")
    return {
        "seed": seed,
        "best_val_macro_f1": max(tr["best"] for tr in trials if tr["best"] is not None),
        "test_accuracy": test_acc,
        "test_macro_f1": outcome.test.get("test/macro_f1"),
        "champion": champion["label"] if champion else None,
        "wall_s": round(wall, 1),
        "time_to_val_target_s": reached,
        "time_to_test_target_s": round(champion["end"] - start, 1)
        if champion and test_acc is not None and test_acc >= args.test_target
        else None,
        "stopped_early": sum(tr["outcome"].startswith("pruned") for tr in trials),
        "epochs_trained": sum(len(tr["val"]) for tr in trials),
        "trials": len(trials),
        "best_so_far": curve,
    }


def histories(tracking: str, study: str) -> list[dict[str, Any]]:
    """Each trial run's validation macro F1 per epoch (wall-clock timestamps), outcome and best value."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(study)
    out = []
    for r in client.search_runs([exp.experiment_id], "tags.`har.role` = 'trial'", max_results=10_000):
        history = client.get_metric_history(r.info.run_id, "val/macro_f1")
        out.append({
            "label": r.info.run_name, "outcome": r.data.tags.get("har.outcome", ""),
            "winner": r.data.tags.get("har.winner") == "true", "best": r.data.metrics.get("best/val/macro_f1"),
            "val": [(m.timestamp / 1000, m.value) for m in sorted(history, key=lambda m: m.step)],
            "end": (r.info.end_time or r.info.start_time) / 1000,
        })  # fmt: skip
    return out


def summary(repeats: list[dict[str, Any]], baseline: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Mean and std per figure; against the default searcher, paired differences per seed."""
    out: dict[str, Any] = {}
    for key in ("best_val_macro_f1", "test_accuracy", "test_macro_f1", "wall_s", "time_to_val_target_s",
                "time_to_test_target_s", "stopped_early", "epochs_trained"):  # fmt: skip
        values = [r[key] for r in repeats if r[key] is not None]
        out[key] = {
            "mean": round(statistics.fmean(values), 4) if values else None,
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else None,
            "n": len(values),
        }
    if baseline is not None:
        out["vs_default"] = paired(repeats, baseline)
    return out


def paired(repeats: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any]:
    from scipy.stats import wilcoxon

    base = {r["seed"]: r for r in baseline}
    out = {}
    for key in ("best_val_macro_f1", "test_accuracy"):
        diffs = [r[key] - base[r["seed"]][key] for r in repeats
                 if r["seed"] in base and r[key] is not None and base[r["seed"]][key] is not None]  # fmt: skip
        nonzero = [d for d in diffs if d != 0]
        out[key] = {
            "mean_difference": round(statistics.fmean(diffs), 4) if diffs else None,
            "better_in": sum(d > 0 for d in diffs), "worse_in": sum(d < 0 for d in diffs), "pairs": len(diffs),
            "wilcoxon_p": round(float(wilcoxon(nonzero).pvalue), 4) if len(nonzero) >= 2 else None,
        }  # fmt: skip
    return out


def draw(results: dict[str, Any]) -> None:
    """Best-so-far validation macro F1 against wall time: median over repeats and its min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, entry in results["searchers"].items():
        runs = [r["best_so_far"] for r in entry["repeats"] if r["best_so_far"]]
        if not runs:
            continue
        grid = np.linspace(0, max(r[-1][0] for r in runs) * 1.05 + 1, 200)
        curves = np.array(
            [[max([v for t, v in run if t <= g], default=np.nan) for g in grid] for run in runs]
        )
        with warnings.catch_warnings():  # before a run's first epoch its curve is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            low, median, high = (f(curves, axis=0) for f in (np.nanmin, np.nanmedian, np.nanmax))
        (line,) = ax.plot(grid, median, label=f"{name} (n={len(runs)})")
        ax.fill_between(grid, low, high, alpha=0.15, color=line.get_color())
    ax.set_xlabel("wall time since the study started (s)")
    ax.set_ylabel("best validation macro F1 so far")
    ax.set_ylim(bottom=0.8)
    ax.set_title(f"uci_har space, {results['trials']} trials x {results['max_epochs']} epochs, "
                 f"{results['concurrency']} at a time")  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--searchers", default=",".join(SEARCHERS[:5]))
    parser.add_argument("--repeats", type=int, default=5, help="seeds 0..N-1 for every searcher")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--val-target", type=float, default=0.92)
    parser.add_argument("--test-target", type=float, default=0.90)
    parser.add_argument("--report-only", action="store_true", help="re-render the docs from the JSON")
    args = parser.parse_args()
    if args.report_only:
        render_docs()
        return
    if not (ROOT / "data" / "prepared" / "uci_hapt" / "meta.json").is_file():
        sys.exit("prepare the data first: har data fetch uci_hapt && har data prepare uci_hapt")
    names = args.searchers.split(",")
    unknown = sorted(set(names) - set(SEARCHERS))
    if unknown:
        sys.exit(f"--searchers: unknown {', '.join(unknown)} (known: {', '.join(SEARCHERS)})")
    results: dict[str, Any] = {
        "trials": args.trials, "max_epochs": args.epochs, "concurrency": args.concurrency,
        "val_target": args.val_target, "test_target": args.test_target, "default": DEFAULT,
        "machine": machine_line(), "date": time.strftime("%Y-%m-%d %H:%M"), "searchers": {},
        "command": "python bench/search.py " + " ".join(sys.argv[1:]),
    }  # fmt: skip
    loads = []
    with tempfile.TemporaryDirectory(prefix="har-bench-search-") as tmp:
        for seed in range(args.repeats):  # seeds outermost: every searcher sees the same machine load
            for name in names:
                record = run_one(name, seed, args, Path(tmp))
                loads.append(os.getloadavg()[0])
                results["searchers"].setdefault(name, {"repeats": []})["repeats"].append(record)
                shown = {k: v for k, v in record.items() if k != "best_so_far"}
                print(name, shown, flush=True)
                results["load_average"] = {
                    "mean": round(statistics.fmean(loads), 2),
                    "max": round(max(loads), 2),
                }
                finish(results)
    print(f"wrote {RESULTS} and {FIGURE}")
    render_docs()


def finish(results: dict[str, Any]) -> None:
    """Summaries, the JSON and the figure, after every study (an interrupted run keeps what it has)."""
    baseline = results["searchers"].get(DEFAULT, {}).get("repeats")
    for name, entry in results["searchers"].items():
        entry["summary"] = summary(entry["repeats"], baseline if name != DEFAULT else None)
    save_json(RESULTS, results)
    draw(results)


if __name__ == "__main__":
    main()
