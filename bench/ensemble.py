"""Seed ensemble of one preset on the UCI HAR task (issue 3: aiming at 95% test accuracy).

Each member is the preset trained with another seed exactly as ``bench/accuracy.py`` trains it (epoch
selected on the validation subjects). The ensemble averages the members' class probabilities. It is
chosen only if its validation accuracy beats every member's; then it is evaluated once on the test
subjects. Members run in parallel processes, one CPU thread each; checkpoints go to runs/ensemble/.

    python bench/ensemble.py --model resnet1d:wang2017 --seeds 0,1,2 --jobs 2
    python bench/ensemble.py --report-only

Writes bench/results/ensemble.json and the ensemble section of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from report_sections import save_json, write_section  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ensemble.json"
REPORT = ROOT / "docs" / "results.md"


def member(args: tuple[str, str, int, int | None]) -> dict[str, Any]:
    """Train one seed; return its validation and test probabilities (test: used only by the ensemble)."""
    import torch

    torch.set_num_threads(1)
    from har.checkpoint import save_checkpoint
    from har.experiment import RunSpec, checkpoint_info, run
    from har.predict import softmax
    from har.train import predict_logits

    model, preset, seed, cap = args
    train = {"seed": seed, "num_threads": 1, **({"max_epochs": cap} if cap else {})}
    spec = RunSpec("uci_hapt", "all", model, preset, train=train)
    start = time.time()
    result = run(spec, ROOT / "data" / "prepared", test=False)
    save_checkpoint(
        ROOT / "runs" / "ensemble" / f"{model}-{preset}-s{seed}", result.model, checkpoint_info(spec, result)
    )
    splits = result.data.splits
    return {
        "seed": seed,
        "val_accuracy": result.val["val/accuracy"],
        "val_macro_f1": result.val["val/macro_f1"],
        "best_epoch": result.fit.best_epoch,
        "seconds": round(time.time() - start, 1),
        "val_probs": softmax(predict_logits(result.model, splits["val"][0])).tolist(),
        "test_probs": softmax(predict_logits(result.model, splits["test"][0])).tolist(),
    }


def report(results: dict[str, Any]) -> str:
    lines = ["## Seed ensembles (uci_hapt)", ""]
    for name, r in results.items():
        members = ", ".join(f"seed {m['seed']} {100 * m['val_accuracy']:.2f}" for m in r["members"])
        lines += [
            f"`python bench/ensemble.py --model {name} --seeds {','.join(str(m['seed']) for m in r['members'])}"
            + (f" --max-epochs {r['max_epochs']}" if r.get("max_epochs") else "")
            + "` "
            f"({r['date']}): the mean of {len(r['members'])} members' class probabilities. Validation accuracy: "
            f"members {members}; ensemble **{100 * r['val_accuracy']:.2f}** (macro F1 {100 * r['val_macro_f1']:.2f}). "
            + (
                f"Chosen (beats every member on validation), tested once: test accuracy **{100 * r['test_accuracy']:.2f}%**, "
                f"macro F1 {100 * r['test_macro_f1']:.2f}% (target 95%: {'reached' if r['test_accuracy'] >= 0.95 else 'not reached'})."
                if r.get("test_accuracy") is not None
                else "Not chosen (a member is at least as good on validation): the test split was not used."
            ),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="resnet1d:wang2017")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.report_only:
        write_section(REPORT, "ensemble", report(results))
        return
    from har.metrics import classification_metrics
    from har.train_data import load_train_data

    model, _, preset = args.model.partition(":")
    seeds = [int(s) for s in args.seeds.split(",")]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        members = pool.map(member, [(model, preset, s, args.max_epochs) for s in seeds], chunksize=1)
    data = load_train_data(ROOT / "data" / "prepared", "uci_hapt", "all")
    val_probs = np.mean([m.pop("val_probs") for m in members], axis=0)
    test_probs = np.mean([m.pop("test_probs") for m in members], axis=0)
    val = classification_metrics(data.splits["val"][1], val_probs.argmax(1), data.classes, prefix="val/")
    record: dict[str, Any] = {
        "members": members,
        "val_accuracy": val["val/accuracy"],
        "val_macro_f1": val["val/macro_f1"],
        "max_epochs": args.max_epochs,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_after": os.getloadavg()[0],
    }
    if val["val/accuracy"] > max(m["val_accuracy"] for m in members):  # chosen on validation only
        test = classification_metrics(
            data.splits["test"][1], test_probs.argmax(1), data.classes, prefix="test/"
        )
        record.update(test_accuracy=test["test/accuracy"], test_macro_f1=test["test/macro_f1"])
    results[args.model] = record
    save_json(RESULTS, results)
    write_section(REPORT, "ensemble", report(results))
    print(json.dumps({k: v for k, v in record.items() if k != "members"}, indent=1))


if __name__ == "__main__":
    main()
