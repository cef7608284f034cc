"""Accuracy benchmark: every published model with its preset on the real UCI HAR task, several seeds.

Protocol (the same for every model): UCI HAR task prepared from the raw UCI HAPT recordings
(`har data prepare uci_hapt`: 6 classes, 128-sample windows, the official 21 / 9 subject split);
validation subjects carved from the training subjects select the epoch (early stopping on the
preset's monitor); the selected model is evaluated once on the test subjects. Reported: test accuracy
and macro F1 as mean +- std over seeds, parameters, seconds per training epoch, and inference latency
per window (batch 1, one CPU thread).

    python bench/accuracy.py                        # all published presets, 3 seeds, uci_hapt
    python bench/accuracy.py --models resnet1d:wang2017 --seeds 3 --max-epochs 40
    python bench/accuracy.py --dataset watch         # the published models on the watch exercise set
    python bench/accuracy.py --models resnet1d:pooled_stats --threads 1 --adapt
                                                    # rows 'MODEL + AdaBN per subject' (har.train.adapt, transductive)
    python bench/accuracy.py --report-only          # rewrite docs/results.md from the JSON

Results accumulate in bench/results/accuracy.json (one record per model x dataset x seed; a finished
record is not re-run), and docs/results.md is regenerated from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from crossval import CANDIDATES as CV_CANDIDATES  # bench/ is on sys.path when run as a script
from crossval import ROUND_12, mix3_seeds, mix9_folds, seed_mean
from dense_windows import label, prepared
from machine import cpu_name
from report_sections import save_json, write_section

from har.models import preset as get_preset
from har.train.data import load_train_data
from har.train.latency import latency_ms
from har.train.loop import TrainConfig, evaluate
from har.train.run import RunSpec, run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "accuracy.json"
PROBES = RESULTS.with_name("accuracy_probes.json")  # model selection runs; not an accuracy-<part> file
ENSEMBLES = RESULTS.with_name("ensemble.json")  # declared ensembles tested by bench/ensemble.py
LATER_FIELDS = (
    "augment",
    "label_smoothing",
    "schedule",
    "warmup_epochs",
    "step_epochs",
    "step_gamma",
    "image_augment",
    "loader_workers",
    "ema_decay",
    "l2_skip_biases",
    "keep",
)  # TrainConfig fields
REPORT = ROOT / "docs" / "results.md"
ADAPTED = " + AdaBN per subject"  # label suffix of transductive runs (bench/crossval.py round 7)
PUBLISHED = [
    "lstm:chevalier",
    "res_bilstm:3x3",
    "lstm_dense:tutorial",
    "cnn_lstm:tutorial",
    "convlstm:tutorial",
    "cnn_resbigru:model1",
    "cnn_resbigru:model2",
    "cnn_resbigru:model3",
    "cnn_resbigru:model4",
    "deepconvlstm:ordonez",
    "resnet1d:wang2017",
]
# Published UCI HAR test accuracy (%) where the sources give one, with the protocol behind it.
PUBLISHED_UCI_HAR = {
    "lstm:chevalier": (91.65, "single run, final weights after 300 epochs, no validation split"),
    "res_bilstm:3x3": (94.0, "best epoch chosen on the test set (91% at the final epoch)"),
    "res_bilstm:3x3_readme": (94.0, "as res_bilstm:3x3; this is the README's reading of the architecture"),
    "lstm_dense:tutorial": (89.7, "mean of 10 repeats, fixed 15 epochs, no validation split"),
    "cnn_lstm:tutorial": (90.7, "mean of 10 repeats, fixed 25 epochs, no validation split"),
    "convlstm:tutorial": (90.8, "mean of 10 repeats, fixed 25 epochs, no validation split"),
}


# Candidates for the best model tried after the probes, each declared (what and why) before its runs.
CANDIDATES = {
    "resnet1d:wang2017_ema": "wang2017 with its weights averaged (EMA, decay 0.998 per step, about 5 epochs): "
    "validation, epoch selection and the kept weights use the average. Why: one run's raw weights swing by "
    "several points of accuracy from epoch to epoch (the refit runs below), so the epoch picked on 4 "
    "validation subjects is partly luck. Rule, fixed before the runs: it becomes the best model only if its "
    "mean validation accuracy over 3 seeds is the highest.",
}


def load(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text())
    return {"runs": []}


def key(record: dict[str, Any]) -> tuple:
    return (
        record["dataset"],
        record["model"],
        record["seed"],
        record["max_epochs"],
        record.get("config_hash", ""),
    )


def config_hash(spec: RunSpec) -> str:
    """Short hash of the resolved hyper-parameters and training settings (a changed preset re-runs)."""
    import hashlib

    from har.train.run import resolve

    hparams, cfg = resolve(spec)
    train = cfg.model_dump(exclude={"seed", "num_threads", "device"})
    for name in LATER_FIELDS:  # settings added after the first results: at their default, the old hash
        if train.get(name) == TrainConfig.model_fields[name].get_default(call_default_factory=True):
            train.pop(name, None)
    text = json.dumps({"hparams": hparams, "train": train}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean +- std over seeds per dataset x model x epoch budget."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["model"], r["max_epochs"]), []).append(r)
    rows = []
    for (dataset, model, max_epochs), rs in sorted(groups.items()):
        acc = np.array([r["test/accuracy"] for r in rs]) * 100
        f1 = np.array([r["test/macro_f1"] for r in rs]) * 100
        published = PUBLISHED_UCI_HAR.get(model) if dataset == "uci_hapt" else None
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "max_epochs": max_epochs,
                "seeds": len(rs),
                "test_accuracy_mean": round(float(acc.mean()), 2),
                "test_accuracy_std": round(float(acc.std()), 2),
                "test_macro_f1_mean": round(float(f1.mean()), 2),
                "test_macro_f1_std": round(float(f1.std()), 2),
                "val_accuracy_mean": round(float(np.mean([r["val/accuracy"] for r in rs]) * 100), 2),
                "parameters": rs[0]["parameters"],
                "seconds_per_epoch": round(float(np.mean([r["seconds_per_epoch"] for r in rs])), 2),
                "epochs_run_mean": round(float(np.mean([r["epochs_run"] for r in rs])), 1),
                "latency_ms": round(float(np.median([r["latency_ms"] for r in rs])), 3),
                "published_accuracy": published[0] if published else None,
                "published_protocol": published[1] if published else None,
                "within_2_points_or_better": (bool(acc.mean() >= published[0] - 2) if published else None),
            }
        )
        if all("plain_test/accuracy" in r for r in rs):  # adapted runs: the same models, not adapted
            plain = np.array([r["plain_test/accuracy"] for r in rs]) * 100
            rows[-1] |= {"plain_test_accuracy_mean": round(float(plain.mean()), 2),
                         "plain_test_accuracy_std": round(float(plain.std()), 2)}  # fmt: skip
    return rows


def ensemble_rows() -> list[dict[str, Any]]:
    """Declared ensembles tested by bench/ensemble.py (bench/results/ensemble.json), as table rows: their
    members are trained as this benchmark trains them, each seed's ensemble tested once."""
    found = json.loads(ENSEMBLES.read_text()) if ENSEMBLES.is_file() else {}
    rows = []
    for name, r in found.items():
        if not name.startswith("ensemble:"):
            continue  # seed ensembles chosen on validation (not tested): their own section
        seeds = {key: np.array([x[key] for x in r["seeds"]]) * 100 for key in r["seeds"][0] if key != "seed"}
        mean = {key: round(float(v.mean()), 2) for key, v in seeds.items()}
        std = {key: round(float(v.std()), 2) for key, v in seeds.items()}
        rows.append({
            "dataset": "uci_hapt", "model": name, "max_epochs": r["max_epochs"], "seeds": len(r["seeds"]),
            "test_accuracy_mean": mean["test_accuracy"], "test_accuracy_std": std["test_accuracy"],
            "test_macro_f1_mean": mean["test_macro_f1"], "test_macro_f1_std": std["test_macro_f1"],
            "val_accuracy_mean": mean["val_accuracy"], "parameters": r["parameters"],
            "seconds_per_epoch": round(r["seconds_per_epoch"], 2),
            "epochs_run_mean": round(float(np.mean([m["epochs_run"] for m in r["members"]])), 1),
            "latency_ms": round(r["latency_ms"], 3), "published_accuracy": None, "published_protocol": None,
            "within_2_points_or_better": None,
        })  # fmt: skip
    return rows


def write_report(results: dict[str, Any]) -> None:
    rows = summarise(results["runs"]) + ensemble_rows()
    lines = [
        "# Results",
        "",
        "Generated by `python bench/accuracy.py` from `bench/results/accuracy.json`; do not edit by hand.",
        "",
        "Protocol: the UCI HAR task prepared from the raw UCI HAPT recordings (6 classes, 128-sample",
        "windows, official 21 / 9 subject split). Validation subjects carved from the training subjects",
        "select the epoch; each selected model is evaluated once on the test subjects. Mean +- std over",
        "seeds. Latency: one window, batch 1, one CPU thread. Machine: "
        f"{results.get('machine', {}).get('cpus', '?')} CPU cores, no GPU; runs used one thread each, often",
        "two runs at once or beside other jobs (load average 3-10 during the resnet1d:pooled_stats runs), so",
        "seconds per epoch are pessimistic and noisy. `epochs (cap)`: epochs run on average",
        "(early stopping) and the cap used; a cap below the preset's max_epochs is a CPU-budget limit.",
        f"Rows named `MODEL{ADAPTED}`: the same training, each validation and test subject predicted with",
        "BatchNorm statistics re-estimated on its own unlabeled windows (`har.train.adapt`; transductive, a",
        "protocol of its own: docs/models.md); their records keep the same models' plain test accuracy.",
        "",
    ]
    for dataset in sorted({r["dataset"] for r in rows}):
        lines += [
            f"## {dataset}",
            "",
            "| model | published (protocol) | test accuracy % | vs published | test macro F1 % | seeds "
            "| epochs (cap) | parameters | s / epoch | latency ms |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in (r for r in rows if r["dataset"] == dataset):
            published = (
                f"{r['published_accuracy']}% ({r['published_protocol']})" if r["published_accuracy"] else "-"
            )
            delta = (
                f"{r['test_accuracy_mean'] - r['published_accuracy']:+.2f}"
                if r["published_accuracy"]
                else "-"
            )
            lines.append(
                f"| {r['model']} | {published} | {r['test_accuracy_mean']:.2f} +- {r['test_accuracy_std']:.2f} "
                f"| {delta} | {r['test_macro_f1_mean']:.2f} +- {r['test_macro_f1_std']:.2f} | {r['seeds']} "
                f"| {r['epochs_run_mean']:g} ({r['max_epochs']}) | {r['parameters']:,} | {r['seconds_per_epoch']:.1f} "
                f"| {r['latency_ms']:.2f} |"
            )
        lines.append("")
        lines += published_elsewhere(rows, dataset)
    lines += target_section(rows, results["runs"])
    lines += candidates_section(rows)
    lines += selection_section(load(PROBES))
    write_section(REPORT, "accuracy", "\n".join(lines))  # other benchmarks own other sections


def published_elsewhere(rows: list[dict[str, Any]], dataset: str) -> list[str]:
    """Lines saying why published models have no figure to compare with on ``dataset``: no source
    publishes on it, or the architecture was published on another dataset (what the sources report)."""
    lines = [] if dataset == "uci_hapt" else [f"No source publishes a figure on {dataset}."]
    names = [
        r["model"] for r in rows
        if r["dataset"] == dataset and r["model"] in PUBLISHED and r["model"] not in PUBLISHED_UCI_HAR
        and not get_preset(r["model"]).published.startswith("no published")
    ]  # fmt: skip
    if names:
        by_source: dict[str, list[str]] = {}  # presets of one paper share its figure: named once
        for name in names:
            by_source.setdefault(get_preset(name).published, []).append(name)
        what = "; ".join(f"{', '.join(presets)}, {source}" for source, presets in by_source.items())
        lines.append(f"Published on other datasets only: {what}.")
    return [" ".join(lines), ""] if lines else []


def eligible(rows: list[dict[str, Any]], adapted: bool = False) -> list[dict[str, Any]]:
    """The uci_hapt models run with >= 3 seeds that the target rule chooses from: the plain ones, or
    (``adapted``) those scored with per-subject BatchNorm adaptation, a transductive protocol of its own."""
    return [
        r for r in rows
        if r["dataset"] == "uci_hapt" and r["seeds"] >= 3 and r["model"].endswith(ADAPTED) == adapted
    ]  # fmt: skip


def cv_accuracy(model: str) -> float | None:
    """Mean held-out accuracy (%) of the model's 3-fold CV over the training subjects, averaged over the
    training seeds 0, 1, 2 (bench/crossval.py round 6), if all three were run."""
    if model == "ensemble:mix3":  # bench/crossval.py round 10
        mix3 = mix3_seeds()
        return None if mix3 is None else mix3[0][0]
    if model == "ensemble:mix9":  # round 11: one ensemble of the nine networks of training seeds 0-2
        mix9 = mix9_folds()
        return None if mix9 is None else mix9[0][0]
    found = seed_mean(model) if model in CV_CANDIDATES else None
    return None if found is None or found[2] < 3 else found[0]  # 3-seed means only (round 6)


def chosen(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The target rule, declared in bench/crossval.py before the runs it judges: the highest CV mean
    among the models with >= 3 test seeds and a CV record; without any CV record (the rule before
    2026-11-30), the best mean validation accuracy over >= 3 seeds."""
    judged = [r for r in eligible(rows) if cv_accuracy(r["model"]) is not None]
    if judged:
        return max(judged, key=lambda r: cv_accuracy(r["model"]) or 0.0)
    return max(eligible(rows), key=lambda r: r["val_accuracy_mean"], default=None)


def target_section(rows: list[dict[str, Any]], runs: list[dict[str, Any]], target: float = 95.0) -> list[str]:
    """Issue 3's target: the best model (by the rule of :func:`chosen`) at >= 95% test accuracy; then the
    same target read by the issue's protocol (``runs``: every record) and by the transductive one."""
    best = chosen(rows)
    if best is None:
        return []
    candidates = eligible(rows)
    reached = best["test_accuracy_mean"] >= target
    judged = [r for r in candidates if cv_accuracy(r["model"]) is not None]
    by_val = max(candidates, key=lambda r: r["val_accuracy_mean"])
    if judged:
        rule = (
            f"The model with the best 3-fold cross-validation accuracy over the training subjects (mean over the "
            f"training seeds 0, 1, 2; among the "
            f"models with >= 3 test seeds and a CV record, section 'Cross-validation' below) is {best['model']} "
            f"(CV {cv_accuracy(best['model']):.2f}%), at {best['test_accuracy_mean']:.2f} +- "
            f"{best['test_accuracy_std']:.2f}% test accuracy ({best['seeds']} "
            f"{'ensembles' if best['model'].startswith('ensemble:') else 'seeds'})."
            + (
                " Caveat: its CV was run after its test figures existed (bench/crossval.py round 12); the rule, "
                "not the test figure, picked it, but the order was not blind."
                if best["model"] in ROUND_12
                else ""
            )
            + " CV accuracy per model: "
            + ", ".join(f"{r['model']} {cv_accuracy(r['model']):.2f}" for r in judged)
            + ". The rule until 2026-11-30, the best mean validation accuracy over the 4 validation subjects, "
            "was retired before the runs it would judge, because those subjects proved a noisy judge; today it "
            f"would pick {by_val['model']} ({by_val['val_accuracy_mean']:.2f}% validation, "
            f"{by_val['test_accuracy_mean']:.2f} +- {by_val['test_accuracy_std']:.2f}% test)."
        )
    else:
        rule = (
            f"The model with the best mean validation accuracy over >= 3 seeds is {best['model']} "
            f"({best['val_accuracy_mean']:.2f}% validation), at {best['test_accuracy_mean']:.2f} +- "
            f"{best['test_accuracy_std']:.2f}% test accuracy ({best['seeds']} seeds)."
        )
    above = [r for r in candidates if r is not best and r["test_accuracy_mean"] >= target]
    if above:  # said beside the rule's choice, never instead of it
        rule += " At or above the target but not picked by the rule: " + ", ".join(
            f"{r['model']} ({r['test_accuracy_mean']:.2f} +- {r['test_accuracy_std']:.2f}% test, "
            f"{cv_text(cv_accuracy(r['model']))})" for r in above
        ) + "."
    return [
        f"## Target: best model at {target:g}% test accuracy or above (uci_hapt)",
        "",
        f"By the CV rule: {'reached' if reached else 'not reached'} by a plain model. {rule} Mean validation "
        "accuracy per model: "
        + ", ".join(f"{r['model']} {r['val_accuracy_mean']:.2f}" for r in candidates)
        + ".",
        "",
        *issue_protocol_target(rows, runs, target),
        *adapted_target(rows, target),
    ]


def issue_protocol_target(
    rows: list[dict[str, Any]], runs: list[dict[str, Any]], target: float = 95.0
) -> list[str]:
    """The target read by the issue's own protocol, applied to the published presets only: each selected on
    the validation subjects, "our best" the preset with the best mean validation accuracy. Beside it, every
    run of that architecture's published presets, none left out: a figure no choice on any split shaped."""
    published = [r for r in eligible(rows) if r["model"] in PUBLISHED]
    if not published:
        return []
    best = max(published, key=lambda r: r["val_accuracy_mean"])
    architecture = best["model"].partition(":")[0]
    presets = sorted(m for m in PUBLISHED if m.partition(":")[0] == architecture)
    accs = np.array([
        r["test/accuracy"] * 100 for r in runs
        if r["dataset"] == "uci_hapt" and r["model"] in presets
    ])  # fmt: skip
    verdict = "reached" if best["test_accuracy_mean"] >= target else "not reached"
    return [
        f"By the issue's own protocol, applied to the published presets only (each selected on the validation "
        f"subjects, one test evaluation per run, no search of ours among them): the preset with the best mean "
        f"validation accuracy is {best['model']} ({best['val_accuracy_mean']:.2f}%), at "
        f"{best['test_accuracy_mean']:.2f} +- {best['test_accuracy_std']:.2f}% test accuracy, macro F1 "
        f"{best['test_macro_f1_mean']:.2f} +- {best['test_macro_f1_std']:.2f}: {verdict}. Every run of "
        f"{architecture}'s published presets ({', '.join(p.partition(':')[2] for p in presets)}; {len(accs)} runs, "
        f"none left out, nothing chosen on the test split): {accs.mean():.2f} +- {accs.std():.2f}% "
        f"({accs.min():.2f} to {accs.max():.2f}). This reading was written on 2026-11-30, after these figures "
        "existed; the CV rule above was declared before the runs it judged, and it was made for our own "
        "search rounds, whose candidates were designed after seeing validation figures.",
        "",
    ]


def cv_text(value: float | None) -> str:
    return "no CV record" if value is None else f"CV {value:.2f}%"


def adapted_target(rows: list[dict[str, Any]], target: float) -> list[str]:
    """The transductive protocol's line: the CV-judged model whose BatchNorm statistics are adapted on
    each test subject's unlabeled windows (bench/crossval.py round 7), beside the plain best model."""
    judged = [r for r in eligible(rows, adapted=True) if cv_accuracy(r["model"])]
    if not judged:
        return []
    best = max(judged, key=lambda r: cv_accuracy(r["model"]) or 0.0)
    return [
        f"With unsupervised per-subject adaptation (transductive: every test subject's windows, never their "
        f"labels, are seen before that subject is classified; `har evaluate --adapt subject`): "
        f"{'reached' if best['test_accuracy_mean'] >= target else 'not reached'}. {best['model']} (CV "
        f"{cv_accuracy(best['model']):.2f}%, round 7) scores {best['test_accuracy_mean']:.2f} +- "
        f"{best['test_accuracy_std']:.2f}% test accuracy, macro F1 {best['test_macro_f1_mean']:.2f} +- "
        f"{best['test_macro_f1_std']:.2f} ({best['seeds']} seeds); the same models without adaptation "
        f"{best['plain_test_accuracy_mean']:.2f} +- {best['plain_test_accuracy_std']:.2f}%. This protocol differs from the published figures' "
        "(each window classified on its own), so it is not compared with them.",
        "",
    ]


def candidates_section(rows: list[dict[str, Any]]) -> list[str]:
    """Candidates tried after the probes, with the rule each was declared under and whether it won."""
    ran = [r for r in rows if r["dataset"] == "uci_hapt" and r["model"] in CANDIDATES]
    if not ran:
        return []
    best = chosen(rows)
    lines = [
        "## Candidates after the probes (uci_hapt)",
        "",
        "| candidate | declared before its runs | val accuracy % (mean) | test accuracy % | chosen |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in ran:
        lines.append(
            f"| {r['model']} | {CANDIDATES[r['model']]} | {r['val_accuracy_mean']:.2f} "
            f"| {r['test_accuracy_mean']:.2f} +- {r['test_accuracy_std']:.2f} | {'yes' if r is best else 'no'} |"
        )
    return [*lines, ""]


def selection_section(probes: dict[str, Any]) -> list[str]:
    """The configurations tried for the best model, by validation accuracy (test numbers stay in the JSON)."""
    runs = probes.get("probes", [])
    if not runs:
        return []
    lines = [
        f"## Configurations tried for a better model ({probes.get('dataset', 'uci_hapt')})",
        "",
        *probes.get("note", "").split("\n"),
        "",
        f"{len(runs)} configurations tried, one seed each ({sum(1 for r in runs if r.get('aborted'))} stopped early "
        "by hand, marked aborted); the one with the best validation accuracy (chosen) became a preset and was "
        "run with 3 seeds (table above); the target section compares it with the other models by mean "
        "validation accuracy. Each probe's one test evaluation is recorded in "
        "`bench/results/accuracy_probes.json` and was not used for any choice.",
        "",
        "| probe | model and changes | epochs (best) | val accuracy % | val macro F1 % | s / epoch |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        if r.get("aborted"):
            lines.append(f"| {r['name']} | {r['what']} | aborted at {r['epochs_run']} | - | - | - |")
            continue
        chosen = " **(chosen)**" if r.get("selected") else ""
        lines.append(
            f"| {r['name']}{chosen} | {r['what']} | {r['epochs_run']} ({r['best_epoch']}) | {100 * r['val/accuracy']:.2f} "
            f"| {100 * r['val/macro_f1']:.2f} | {r['seconds_per_epoch']:.1f} |"
        )
    return [*lines, ""]


def merge_parts() -> None:
    """Fold accuracy-<part>.json files into accuracy.json (one record per key) and rewrite the report."""
    results = load(RESULTS)
    seen = {key(r) for r in results["runs"]}
    parts = sorted(RESULTS.parent.glob("accuracy-*.json"))
    for part in parts:
        other = load(part)
        results.setdefault("machine", other.get("machine"))
        for record in other["runs"]:
            if key(record) not in seen:
                results["runs"].append(record)
                seen.add(key(record))
    results["summary"] = summarise(results["runs"])
    save_json(RESULTS, results)
    for part in parts:
        part.unlink()
    write_report(results)
    print(f"merged {len(parts)} part(s); {len(results['runs'])} runs in {RESULTS.name}; wrote {REPORT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(PUBLISHED), help="comma-separated model:preset list")
    parser.add_argument("--dataset", default="uci_hapt")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="cap on the preset's max_epochs (CPU budget)"
    )
    parser.add_argument("--prepared-dir", type=Path, default=ROOT / "data" / "prepared")
    parser.add_argument(
        "--train-step", type=int, default=None,
        help="train on the dataset prepared with window.train_step N (bench/dense_windows.py); the table "
        "names such runs 'MODEL + train_step N'",
    )  # fmt: skip
    parser.add_argument(
        "--adapt", action="store_true",
        help="also score each run with BatchNorm statistics adapted per subject (har.train.adapt, transductive); "
        "the table names such runs 'MODEL + AdaBN per subject' and keeps the plain figure beside it",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--part", default="", help="write to accuracy-<part>.json (parallel runs); merged by --report-only"
    )
    args = parser.parse_args()

    if args.report_only:
        merge_parts()
        return
    path = RESULTS.with_name(f"accuracy-{args.part}.json") if args.part else RESULTS
    results = load(path)
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    if args.train_step:
        args.prepared_dir = prepared(args.dataset, args.train_step)
    if not (args.prepared_dir / args.dataset / "meta.json").is_file():
        sys.exit(
            f"error: {args.prepared_dir / args.dataset} is not prepared; run 'har data prepare {args.dataset}'"
        )
    data = load_train_data(args.prepared_dir, args.dataset, "all")
    done = {key(r) for r in results["runs"]}
    if args.part:  # runs already merged into accuracy.json are not repeated in a part either
        done |= {key(r) for r in load(RESULTS)["runs"]}
    for spec_name in args.models.split(","):
        model, _, preset_name = spec_name.partition(":")
        published = get_preset(spec_name)
        max_epochs = min(published.train.get("max_epochs", 50), args.max_epochs or 10**9)
        name = label(spec_name, args.train_step) + (ADAPTED if args.adapt else "")
        for seed in range(args.seeds):
            spec = RunSpec(
                dataset=args.dataset, model=model, preset=preset_name,
                train={"seed": seed, "max_epochs": max_epochs, "num_threads": args.threads, "device": "cpu"},
            )  # fmt: skip
            chash = config_hash(spec)
            if (args.dataset, name, seed, max_epochs, chash) in done:
                continue
            start = time.perf_counter()
            result = run(spec, args.prepared_dir, data=data)
            plain = result.test
            if args.adapt:  # the same model, each val / test subject with its own BatchNorm statistics
                result.val = evaluate(result.model, *data.splits["val"], data.classes, "val/",
                                      groups=data.subjects["val"])  # fmt: skip
                result.test = evaluate(result.model, *data.splits["test"], data.classes, "test/",
                                       groups=data.subjects["test"])  # fmt: skip
            record = {
                "dataset": args.dataset,
                "model": name,
                "train_step": args.train_step,
                "seed": seed,
                "max_epochs": max_epochs,
                "config_hash": chash,
                "epochs_run": len(result.fit.history),
                "best_epoch": result.fit.best_epoch,
                "val/accuracy": result.val["val/accuracy"],
                "val/macro_f1": result.val["val/macro_f1"],
                "test/accuracy": result.test["test/accuracy"],
                "test/macro_f1": result.test["test/macro_f1"],
                "test/weighted_f1": result.test["test/weighted_f1"],
                "parameters": result.parameters,
                "seconds_per_epoch": result.fit.seconds_per_epoch,
                "wall_seconds": time.perf_counter() - start,
                "latency_ms": latency_ms(result.model, data.window, len(data.channels)),
                "val_subjects": data.val_subjects,
                "threads": args.threads,  # the float summation order, hence the trajectory, depends on it
                "cpu": cpu_name(),
                **({"plain_test/accuracy": plain["test/accuracy"]} if args.adapt else {}),
            }
            results["runs"].append(record)
            save_json(path, results)
            print(
                f"{args.dataset} {name} seed {seed}: test acc {record['test/accuracy']:.4f} "
                f"macro F1 {record['test/macro_f1']:.4f} ({record['epochs_run']} epochs, "
                f"{record['seconds_per_epoch']:.1f} s/epoch)",
                flush=True,
            )
    results["summary"] = summarise(results["runs"])
    save_json(path, results)
    if not args.part:
        write_report(results)
    for row in results["summary"]:
        print(
            f"{row['dataset']:10s} {row['model']:22s} {row['test_accuracy_mean']:6.2f} +- {row['test_accuracy_std']:.2f}"
            f"  F1 {row['test_macro_f1_mean']:6.2f} +- {row['test_macro_f1_std']:.2f}  published {row['published_accuracy']}"
        )


if __name__ == "__main__":
    main()
