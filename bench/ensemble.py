"""Seed ensemble of one preset on the UCI HAR task (issue 3: aiming at 95% test accuracy).

Each member is the preset trained with another seed exactly as ``bench/accuracy.py`` trains it (epoch
selected on the validation subjects). The ensemble averages the members' class probabilities. It is
chosen only if its validation accuracy beats every member's; then it is evaluated once on the test
subjects. Members run in parallel processes, one CPU thread each; checkpoints go to runs/ensemble/.

    python bench/ensemble.py --model resnet1d:wang2017 --seeds 0,1,2 --jobs 2
    python bench/ensemble.py --report-only

A declared ensemble of different models (``--ensemble mix3``, bench/crossval.py round 10) is judged by
cross-validation over the training subjects instead: it runs only if crossval's round-10 verdict sent it
to the test split (else it stops, the test split untouched). Ensemble s is the members trained with seed
s (each exactly as bench/accuracy.py trains it; a member of the accuracy table must reproduce its
validation figure there), evaluated once on the test subjects; mean +- std over the seeds.

    python bench/ensemble.py --ensemble mix3 --seeds 0,1,2 --jobs 2

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
ACCURACY = ROOT / "bench" / "results" / "accuracy.json"
REPORT = ROOT / "docs" / "results.md"


def member(args: tuple[str, str, int, int | None]) -> dict[str, Any]:
    """Train one seed (or reuse its checkpoint under runs/ensemble/ when that is this very run: same
    seed, epoch cap, one thread, same prepared data); return its validation and test probabilities
    (test: used only by the ensemble)."""
    import torch

    torch.set_num_threads(1)
    from har.predict.sensors import softmax
    from har.train.checkpoint import load_checkpoint, save_checkpoint
    from har.train.data import load_train_data
    from har.train.loop import predict_logits
    from har.train.run import RunSpec, checkpoint_info, run

    model, preset, seed, cap = args
    folder = ROOT / "runs" / "ensemble" / f"{model}-{preset}-s{seed}"
    train = {"seed": seed, "num_threads": 1, **({"max_epochs": cap} if cap else {})}
    spec = RunSpec("uci_hapt", "all", model, preset, train=train)
    data = load_train_data(ROOT / "data" / "prepared", "uci_hapt", "all")
    info = json.loads((folder / "checkpoint.json").read_text()) if (folder / "checkpoint.json").is_file() else {}
    config = info.get("train_config", {})
    if info.get("data_version") == data.data_version and all(config.get(k) == v for k, v in train.items()):
        net, info = load_checkpoint(folder)
        val, best, history = info["metrics"], info["best_epoch"], info["history"]
        seconds = sum(row["epoch_seconds"] for row in history)
    else:
        start = time.time()
        result = run(spec, ROOT / "data" / "prepared", data=data, test=False)
        save_checkpoint(folder, result.model, checkpoint_info(spec, result))
        net, val, best, history = result.model, result.val, result.fit.best_epoch, result.fit.history
        seconds = time.time() - start
    splits = data.splits
    return {
        "seed": seed,
        "val_accuracy": val["val/accuracy"],
        "val_macro_f1": val["val/macro_f1"],
        "best_epoch": best,
        "epochs_run": len(history),
        "seconds": round(seconds, 1),
        "val_probs": softmax(predict_logits(net, splits["val"][0])).tolist(),
        "test_probs": softmax(predict_logits(net, splits["test"][0])).tolist(),
    }


# declared ensembles (bench/crossval.py): the round whose CV verdict gates them, and each ensemble's seeds
DECLARED = {
    "mix3": ("round_ten_verdict", 10, None),
    "mix9": ("round_eleven_verdict", 11, [[0, 1, 2], [3, 4, 5], [6, 7, 8]]),
}


def declared(name: str, seeds: list[int], jobs: int) -> dict[str, Any]:
    """Train a declared ensemble's members for every seed and test each ensemble once (mix3: one per
    seed of ``seeds``; mix9: three disjoint groups of three seeds)."""
    import crossval  # bench/ is on sys.path when run as a script

    from har.train.data import load_train_data

    if name not in DECLARED:
        raise SystemExit(f"--ensemble {name}: the declared ensembles are: {', '.join(DECLARED)} (bench/crossval.py)")
    verdict_name, round_number, fixed = DECLARED[name]
    verdict = getattr(crossval, verdict_name)()
    if verdict is not True:
        why = "not decided yet (run bench/crossval.py --probs)" if verdict is None else "not sent to the test split"
        raise SystemExit(f"--ensemble {name}: round {round_number}'s CV verdict: {why}; the test split stays untouched")
    groups = fixed or [[s] for s in seeds]
    cap = 20  # the members' epoch cap in the accuracy table and in the CV rounds
    tasks = [(*m.split(":"), s, cap) for group in groups for s in group for m in crossval.MIX3]
    with mp.get_context("spawn").Pool(jobs) as pool:
        members = pool.map(member, tasks, chunksize=1)
    for m, (model, preset, *_) in zip(members, tasks, strict=True):
        m["model"] = f"{model}:{preset}"
    data = load_train_data(ROOT / "data" / "prepared", "uci_hapt", "all")
    per_group = []
    for group in groups:
        mine = [m for m in members if m["seed"] in group]
        test = ensemble_metrics([m.pop("test_probs") for m in mine], data, "test")
        val = ensemble_metrics([m.pop("val_probs") for m in mine], data, "val")
        per_group.append({"seed": group[0] if len(group) == 1 else ",".join(map(str, group)),
                          "val_accuracy": val["val/accuracy"], "test_accuracy": test["test/accuracy"],
                          "test_macro_f1": test["test/macro_f1"]})  # fmt: skip
    acc = np.array([r["test_accuracy"] for r in per_group])
    f1 = np.array([r["test_macro_f1"] for r in per_group])
    cv = crossval.mix3_seeds()[0][0] if name == "mix3" else crossval.mix9_folds()[0][0]
    first = [t for t in tasks if t[2] in groups[0]]
    return {
        "members": members, "seeds": per_group, "cv_accuracy": cv, "round": round_number,
        **cost(first, members, data, len(groups)),
        "test_accuracy_mean": float(acc.mean()), "test_accuracy_std": float(acc.std()),
        "test_macro_f1_mean": float(f1.mean()), "test_macro_f1_std": float(f1.std()),
        "max_epochs": cap, "date": time.strftime("%Y-%m-%d %H:%M"), "load_average_after": os.getloadavg()[0],
    }  # fmt: skip


def ensemble_metrics(probs: list[Any], data: Any, split: str) -> dict[str, Any]:
    """Metrics (keys ``<split>/...``) of the mean of the members' class probabilities on ``split``."""
    from har.metrics import classification_metrics

    predicted = np.mean(probs, axis=0).argmax(axis=1)
    return classification_metrics(data.splits[split][1], predicted, data.classes, prefix=f"{split}/")


def cost(first: list[tuple], members: list[dict[str, Any]], data: Any, groups: int) -> dict[str, Any]:
    """One ensemble's parameters and latency (batch 1, one thread, the members and their normalisation
    behind one forward: har.train.ensemble.Ensemble), and the members' summed training seconds per epoch."""
    from har.train.ensemble import Ensemble, load_members
    from har.train.latency import latency_ms

    ensemble = Ensemble(load_members([ROOT / "runs" / "ensemble" / f"{m}-{p}-s{s}" for m, p, s, _ in first]))
    per_epoch = [m["seconds"] / m["epochs_run"] for m in members]
    return {
        "parameters": sum(p.numel() for p in ensemble.members.parameters()),
        "latency_ms": latency_ms(ensemble, data.window, len(data.channels)),
        "seconds_per_epoch": float(np.sum(per_epoch) / groups),
    }


def reproduced(r: dict[str, Any]) -> str:
    """Which members are their accuracy-table run again (same validation accuracy, macro F1 and chosen
    epoch: the same model), per member model; the table's runs of that model and seed, where it has them."""
    table = {(t["model"], t["seed"]): t for t in json.loads(ACCURACY.read_text())["runs"]
             if t["dataset"] == "uci_hapt" and t["max_epochs"] == r["max_epochs"]}  # fmt: skip
    found: dict[str, list[bool]] = {}
    for m in r["members"]:
        if (t := table.get((m["model"], m["seed"]))) is not None:
            same = (t["val/accuracy"], t["val/macro_f1"], t["best_epoch"]) == (
                m["val_accuracy"], m["val_macro_f1"], m["best_epoch"])  # fmt: skip
            found.setdefault(m["model"], []).append(same)
    return ", ".join(f"{model} {sum(v)} of {len(v)}" for model, v in found.items())


def declared_report(name: str, r: dict[str, Any]) -> list[str]:
    grouped = any(isinstance(x["seed"], str) for x in r["seeds"])  # mix9: groups of seeds per ensemble
    seeds = ", ".join(f"seed{'s' if grouped else ''} {x['seed']} {100 * x['test_accuracy']:.2f}" for x in r["seeds"])
    members = sorted({m["model"] for m in r["members"]})
    per = "per group of seeds, the mean of the class probabilities of" if grouped else (
        "per seed, the mean of the class probabilities of")  # fmt: skip
    command = f"--ensemble {name.split(':')[1]}" + (
        "" if grouped else f" --seeds {','.join(str(x['seed']) for x in r['seeds'])}")  # fmt: skip
    networks = len(r["members"]) // len(r["seeds"])
    return [
        f"`python bench/ensemble.py {command}` ({r['date']}): {per} {', '.join(members)} (each trained with "
        f"its seed, {r['max_epochs']} epochs at most, epoch chosen on the validation subjects), sent to the test "
        f"split by round {r.get('round', 10)}'s CV verdict (CV {r['cv_accuracy']:.2f}%). Members that are their "
        f"accuracy-table run again (same validation accuracy, macro F1 and epoch): {reproduced(r)} (those "
        "pooled_stats runs, 2026-11-22, are the unreproduced records of docs/results.md's reproducibility "
        f"finding; the members here use one thread, as in CV). Test accuracy {seeds}: "
        f"**{100 * r['test_accuracy_mean']:.2f} +- {100 * r['test_accuracy_std']:.2f}%**, macro F1 "
        f"{100 * r['test_macro_f1_mean']:.2f} +- {100 * r['test_macro_f1_std']:.2f}% (target 95%: "
        f"{'reached' if r['test_accuracy_mean'] >= 0.95 else 'not reached'}). Its cost: {networks} networks, "
        f"{r['parameters']:,} parameters, {r['latency_ms']:.2f} ms per window (batch 1, one thread), "
        f"{r['seconds_per_epoch']:.1f} s of training per epoch (members summed). Evaluated and deployed as one "
        "model: `har evaluate A B C ...`, `har predict -m A -m B -m C ...`.",
        "",
    ]


def report(results: dict[str, Any]) -> str:
    lines = ["## Ensembles (uci_hapt)", ""]
    for name, r in results.items():
        if name.startswith("ensemble:"):
            lines += declared_report(name, r)
            continue
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
    parser.add_argument(
        "--ensemble", default=None, help="a declared ensemble of different models: mix3 or mix9 (not --model)"
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.report_only:
        write_section(REPORT, "ensemble", report(results))
        return
    if args.ensemble:
        seeds = [int(s) for s in args.seeds.split(",")]
        results[f"ensemble:{args.ensemble}"] = declared(args.ensemble, seeds, args.jobs)
        save_json(RESULTS, results)
        write_section(REPORT, "ensemble", report(results))
        return
    from har.train.data import load_train_data

    model, _, preset = args.model.partition(":")
    seeds = [int(s) for s in args.seeds.split(",")]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        members = pool.map(member, [(model, preset, s, args.max_epochs) for s in seeds], chunksize=1)
    data = load_train_data(ROOT / "data" / "prepared", "uci_hapt", "all")
    val_probs = [m.pop("val_probs") for m in members]
    test_probs = [m.pop("test_probs") for m in members]  # never stored; scored only if chosen
    val = ensemble_metrics(val_probs, data, "val")
    record: dict[str, Any] = {
        "members": members,
        "val_accuracy": val["val/accuracy"],
        "val_macro_f1": val["val/macro_f1"],
        "max_epochs": args.max_epochs,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_after": os.getloadavg()[0],
    }
    if val["val/accuracy"] > max(m["val_accuracy"] for m in members):  # chosen on validation only
        test = ensemble_metrics(test_probs, data, "test")
        record.update(test_accuracy=test["test/accuracy"], test_macro_f1=test["test/macro_f1"])
    results[args.model] = record
    save_json(RESULTS, results)
    write_section(REPORT, "ensemble", report(results))
    print(json.dumps({k: v for k, v in record.items() if k != "members"}, indent=1))


if __name__ == "__main__":
    main()
