"""Render the generated sections of docs/results.md and docs/models.md from their JSON records.

Every figure in those two pages lives between ``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``
markers and is rendered here from one JSON record: the curated accuracy record (docs/records/accuracy.json)
and the product benchmarks' results (bench/results/*.json). Prose outside the markers is hand-written and
carries no figures (``--check`` refuses a decimal percentage, windows/s or milliseconds there).

    python docs/render.py           # rewrite the sections
    python docs/render.py --check   # exit 1 when a page differs from its rendering (tests/test_docs.py)

The benchmarks write their JSON and call this renderer; nothing else writes these sections.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "bench" / "results"
RECORDS = {
    "accuracy": DOCS / "records" / "accuracy.json",
    "throughput": RESULTS / "throughput.json",
    "tune": RESULTS / "tune.json",
    "images": RESULTS / "images.json",
    "prepare": RESULTS / "prepare.json",
    "tracking_load": RESULTS / "tracking_load.json",
    "scale": RESULTS / "scale.json",
    "warm_start": RESULTS / "warm_start.json",
    "search": RESULTS / "search.json",
    "overhead": RESULTS / "overhead.json",
    "study_uci_har": RESULTS / "study_uci_har.json",
    "study_uci_har_fast": RESULTS / "study_uci_har_fast.json",
}
OPTIONAL = {
    "search",
    "overhead",
    "study_uci_har",
    "study_uci_har_fast",
}  # sections say how to produce them until they exist
Records = dict[str, Any]

# ---------------------------------------------------------------- sections in a page


def _pattern(name: str) -> re.Pattern[str]:
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    return re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)


def replace_section(text: str, name: str, markdown: str) -> str:
    """``text`` with section ``name`` replaced by ``markdown`` (appended at the end when absent)."""
    block = f"<!-- section:{name} -->\n{markdown.strip()}\n<!-- /section:{name} -->"
    pattern = _pattern(name)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = f"{text.rstrip()}\n\n{block}\n".lstrip()
    return text if text.endswith("\n") else text + "\n"


def write_section(path: Path, name: str, markdown: str) -> None:
    """Rewrite one section of ``path`` atomically (a temp file renamed over it)."""
    from har.atomic import atomic_file

    text = replace_section(path.read_text() if path.is_file() else "", name, markdown)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as handle:
        handle.write(text)


SECTION_RE = re.compile(r"<!-- section:(\S+) -->.*?<!-- /section:\1 -->", re.DOTALL)
# a figure: a decimal percentage, a rate in windows/s, or a time in ms
FIGURE_RE = re.compile(r"\d+\.\d+ ?%|\d[\d,.]* windows/s|\d+(?:\.\d+)? ms\b")


def stray_figures(text: str) -> list[str]:
    """Figures written by hand: outside every rendered section."""
    return FIGURE_RE.findall(SECTION_RE.sub("", text))


# ---------------------------------------------------------------- helpers


def pm(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.2f} +- {std:.2f}"


def seeds(values: list[Any]) -> str:
    return ", ".join(str(s) for s in values)


def commands(entry: dict[str, Any]) -> str:
    if entry.get("reproduce"):
        return "; ".join(f"`{c}`" for c in entry["reproduce"])
    return f"not through the product: {entry['not_reproducible']}"


def by_group(acc: Records, group: str) -> list[dict[str, Any]]:
    return [e for e in acc["test"] if e["group"] == group]


def test_table(entries: list[dict[str, Any]], published: bool = True) -> list[str]:
    head = "| model | protocol | seeds | epoch cap | test accuracy % | test macro F1 % |"
    rule = "| --- | --- | --- | --- | --- | --- |"
    if published:
        head, rule = head + " published % (protocol) |", rule + " --- |"
    lines = [head + " date |", rule + " --- |"]
    for e in entries:
        row = (
            f"| {e['label']} | {e['protocol']} | {seeds(e['seeds'])} | {e['epoch_cap']} "
            f"| {pm(e['test_accuracy_mean'], e['test_accuracy_std'])} "
            f"| {pm(e['test_macro_f1_mean'], e['test_macro_f1_std'])} |"
        )
        if published:
            p = e.get("published")
            row += f" {p['accuracy']} ({p['protocol']}) |" if p else " - |"
        lines.append(row + f" {e['date']} |")
    return lines


def per_seed_line(e: dict[str, Any]) -> str:
    values = ", ".join(f"seed {p['seed']} {100 * p['test_accuracy']:.2f}" for p in e["per_seed"])
    return f"{e['label']} ({e['dataset']}): {values}"


def reproduce_list(entries: list[dict[str, Any]]) -> list[str]:
    lines = ["Per seed (test accuracy %) and the commands that reproduce each row:", ""]
    for e in entries:
        lines.append(f"- {per_seed_line(e)}. Machine: {e['machine']}. {commands(e)}")
    return lines


# ---------------------------------------------------------------- results.md


def accuracy_section(acc: Records) -> str:
    entries = by_group(acc, "published_models") + by_group(acc, "own_models")
    lines = [
        "## Test accuracy (uci_hapt)",
        "",
        f"Task: {acc['task']} Every row: epoch chosen on validation subjects carved from the training "
        "subjects, one test evaluation per run; mean +- std over the seeds listed. Ensembles average their "
        "members' class probabilities. Record: `docs/records/accuracy.json`.",
        "",
        *test_table(entries),
        "",
        *reproduce_list(entries),
        "",
        "Published on other datasets only: "
        + "; ".join(f"{p['model']}, {p['figure']} ({p['protocol']})" for p in acc["published_elsewhere"])
        + ".",
    ]
    return "\n".join(lines)


def authors_protocol_section(acc: Records) -> str:
    entries = by_group(acc, "authors_protocol")
    lines = [
        "## The published LSTM models under their authors' protocols (uci_hapt)",
        "",
        "The published figures come from protocols unlike the table above; run their way:",
        "",
        *test_table(entries),
        "",
        "Per seed (test accuracy %, epoch):",
        "",
    ]
    for e in entries:
        values = ", ".join(
            f"seed {p['seed']} {100 * p['test_accuracy']:.2f} (epoch {p['epoch']})" for p in e["per_seed"]
        )
        lines.append(f"- {e['label']}, {e['protocol']}: {values}. {commands(e)}")
    return "\n".join(lines)


def cv_section(acc: Records) -> str:
    rows = [c for c in acc["cv"] if not c.get("transductive")]
    first = rows[0]
    lines = [
        "## Cross-validation over the training subjects (uci_hapt)",
        "",
        f"{first['protocol']}. Held-out subjects per fold: "
        + "; ".join(",".join(str(s) for s in fold) for fold in first["held_out"])
        + ". CV accuracy: the mean over folds and training seeds.",
        "",
        "| model | CV accuracy % | per fold % (seed means) | per seed % | seeds | epoch cap | date |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in sorted(rows, key=lambda c: -c["accuracy_mean"]):
        per_seed = " / ".join(f"{100 * p['accuracy']:.2f}" for p in c["per_seed"]) or "-"
        lines.append(
            f"| {c['label']} | {c['accuracy_mean']:.2f} | {' / '.join(f'{x:.2f}' for x in c['per_fold_mean'])} "
            f"| {per_seed} | {seeds(c['seeds'])} | {c['epoch_cap']} | {c['date']} |"
        )
    lines += ["", "Reproduce:", ""]
    for c in rows:
        config = f" ({c['configuration']})" if c.get("configuration") else ""
        text = "; ".join(f"`{cmd}`" for cmd in c["reproduce"])
        if c.get("not_reproducible"):
            text += f"; {c['not_reproducible']}"
        lines.append(f"- {c['label']}{config}: {text}")
    return "\n".join(lines)


def adaptation_section(acc: Records) -> str:
    entries = by_group(acc, "transductive")
    cv = [c for c in acc["cv"] if c.get("transductive")]
    ctl = acc["adapt_controls"]
    lines = [
        "## Per-subject adaptation (AdaBN, transductive)",
        "",
        "Each subject predicted with BatchNorm statistics re-estimated on its own unlabeled windows "
        "(`har evaluate --adapt subject`, `har cv --adapt`): a protocol of its own, not compared with "
        "per-window figures. `plain` is the same models without adaptation (paired).",
        "",
        "| model | dataset | seeds | test accuracy % adapted | plain % (same models) | test macro F1 % adapted | date |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        lines.append(
            f"| {e['label']} | {e['dataset']} | {seeds(e['seeds'])} "
            f"| {pm(e['test_accuracy_mean'], e['test_accuracy_std'])} "
            f"| {pm(e['plain_test_accuracy_mean'], e['plain_test_accuracy_std'])} "
            f"| {pm(e['test_macro_f1_mean'], e['test_macro_f1_std'])} | {e['date']} |"
        )
    lines += ["", *reproduce_list(entries), ""]
    for c in cv:
        lines += [
            f"3-fold CV over the training subjects ({c['date']}, seeds {seeds(c['seeds'])}): {c['label']} "
            f"{c['accuracy_mean']:.2f}% (per fold {' / '.join(f'{x:.2f}' for x in c['per_fold_mean'])}), "
            f"the same fold models plain {c['plain_accuracy_mean']:.2f}%. "
            + "; ".join(f"`{cmd}`" for cmd in c["reproduce"]),
            "",
        ]
    lines += [
        f"Controls on the validation subjects {seeds(ctl['val_subjects'])} ({ctl['model']}, seeds "
        f"{seeds(ctl['seeds'])}, {ctl['date']}): which windows the statistics come from.",
        "",
        "| statistics from | validation accuracy % | per seed % |",
        "| --- | --- | --- |",
    ]
    for r in ctl["rows"]:
        lines.append(
            f"| {r['what']} | {pm(r['mean'], r['std'])} | {' / '.join(f'{v:.2f}' for v in r['per_seed'])} |"
        )
    reproducible = [f"{r['statistics']}: `{r['reproduce']}`" for r in ctl["rows"] if r["reproduce"]]
    lines += ["", f"Reproduce: {'; '.join(reproducible)}; {ctl['not_reproducible']}."]
    return "\n".join(lines)


def watch_section(acc: Records) -> str:
    entries = by_group(acc, "watch")
    lines = [
        "## Another dataset: watch",
        "",
        "No source publishes a figure on watch. Same protocol as the uci_hapt table.",
        "",
        *test_table(entries, published=False),
        "",
        *reproduce_list(entries),
    ]
    return "\n".join(lines)


def throughput_section(result: Records) -> str:
    settings, machine = result["settings"], result["machine"]
    ib = settings["infer_batch"]
    lines = [
        "## Throughput (`bench/throughput.py`)",
        "",
        f"Synthetic windows of the UCI HAR shape ({settings['shape']['T']} x {settings['shape']['C']}, "
        f"{settings['shape']['K']} classes) on {machine.get('cpu', 'a CPU')} ({machine.get('cpus', '?')} cores, "
        f"torch {machine.get('torch', '?')}), {result['runtime_s']:.0f} s run. Training: {settings['train']}. "
        f"Latency: batch 1, one thread, median. Inference: batch {ib}. Reproduce: `python bench/throughput.py "
        "--compile resnet1d:wang2017 convlstm:tutorial lstm_dense:tutorial --compile-train convlstm:tutorial` "
        "(JSON: `bench/results/throughput.json`).",
        "",
        "| model | parameters | training windows/s | latency ms | inference windows/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in result["models"]:
        if "train" in r:
            lines.append(
                f"| {r['spec']} | {r['params']:,} | {r['train']['windows_per_s']:.0f} "
                f"| {r['latency_b1']['median_ms']:.2f} | {r['inference']['windows_per_s']:.0f} |"
            )
    skipped = [r["spec"] for r in result["models"] if "train" not in r]
    if skipped:
        lines += ["", f"Not measured (they read images, not windows): {', '.join(skipped)}."]
    lines += ["", "Conclusions (measured, generated):", "", *(f"- {c}" for c in result["conclusions"])]
    return "\n".join(lines)


def tune_section(results: Records) -> str:
    lines = [
        "## Tuning (`bench/tune.py`)",
        "",
        "Real UCI HAR task (raw UCI HAPT, val subjects carved from training subjects); space: `lstm` "
        "(hidden 32-96, 1-2 layers) and `cnn_lstm:tutorial` (32/64 filters), lr 3e-4..5e-3, batch 64/128; "
        "one CPU thread per trial. Reproduce: `python bench/tune.py` (JSON: `bench/results/tune.json`).",
        "",
    ]
    scaling = results.get("scaling")
    if scaling and "2_node" in scaling:
        one, two = scaling["1_node"], scaling["2_node"]
        lines += [
            f"Scaling: one local node ({one['cpus']} CPU) {one['trials_per_hour']} trials/h, two local nodes "
            f"({two['cpus']} CPUs) {two['trials_per_hour']} trials/h: **{scaling['speedup']}x** "
            f"({scaling['trials']} trials of at most {scaling['max_epochs']} epochs, random search, no ASHA; "
            f"{_when(scaling)}). Both nodes share the machine's cores with the Tune driver (trial "
            "scheduling, result processing, MLflow writes) and the Ray daemons of two nodes, so the second node "
            "cannot double the rate here; on a cluster each node brings its own cores.",
            "",
        ]
    lines.append(
        "A load average well above the CPU count means another job shared the cores, which makes absolute "
        "times pessimistic (comparisons within a part ran under the same load)."
    )
    return "\n".join(lines)


def _mean_std(summary: dict[str, Any], key: str, digits: int = 4) -> str:
    s = summary[key]
    if s["mean"] is None:
        return "-"
    text = f"{s['mean']:.{digits}f}" + (f" +- {s['std']:.{digits}f}" if s["std"] is not None else "")
    return text + (
        f" ({s['n']} of {summary['best_val_macro_f1']['n']})"
        if s["n"] < summary["best_val_macro_f1"]["n"]
        else ""
    )


def study_section(r: Records) -> str:
    head = "## The `uci_har` study (`har tune --study uci_har`)"
    if not r:
        return f"{head}\n\nNot run yet: `har tune --study uci_har`, then `python bench/study_record.py --study uci_har`."
    return "\n".join([
        head, "",
        f"Champion of permutation `{r['permutation']}`, chosen on validation macro F1 and tested once: "
        f"**{r['champion']}**, test accuracy **{100 * r['test_accuracy']:.2f}%**, test macro F1 "
        f"{100 * r['test_macro_f1']:.2f}%, validation macro F1 {r['val_macro_f1']:.4f}, batch-1 latency "
        f"{r['latency_ms']:.2f} ms (one CPU thread). {r['trials']} trials ({r['failed_trials']} failed), "
        f"{r['wall_s'] / 60:.0f} min wall ({r['date']}, {r['machine']}, load average {r['load_average']:.1f}).",
        "", f"Reproduce: `{r['command']}`; record: `python bench/study_record.py --study uci_har` "
        "(JSON: `bench/results/study_uci_har.json`).",
    ])  # fmt: skip


def fast_study_section(r: Records) -> str:
    head = "## Accurate and fast: the `uci_har_fast` study (`har tune --study uci_har_fast`)"
    if not r:
        return (f"{head}\n\nNot run yet: `har tune --study uci_har_fast`, then "
                "`python bench/study_record.py --study uci_har_fast --predict-experiment 3`.")  # fmt: skip
    lines = [
        head, "",
        "Two objectives, validation macro F1 (max) and batch-1 latency on one CPU thread (min); the champion is "
        "the fastest trial within half a point of the best validation score (`objectives: [{metric: latency_ms, "
        f"within: 0.005}}]`), tested once: **{r['champion']}**, test accuracy **{100 * r['test_accuracy']:.2f}%**, "
        f"test macro F1 {100 * r['test_macro_f1']:.2f}%, validation macro F1 {r['val_macro_f1']:.4f}, "
        f"{r['latency_ms']:.3f} ms per window as the trial measured it. {r['trials']} trials "
        f"({r['failed_trials']} failed), {r['wall_s'] / 60:.0f} min wall ({r['date']}, {r['machine']}, load "
        f"average {r['load_average']:.1f}).",
    ]  # fmt: skip
    if r.get("predict"):
        p = r["predict"]
        target = "under" if p["latency_ms"] < 1.0 else "over"
        runs = p.get("runs_ms", [p["latency_ms"]])
        lines += ["", f"Through `har predict` (batch 1, one CPU thread) on {p['recording']}: **{p['latency_ms']:.3f} ms "
                  f"per window** ({target} the 1 ms target), the median of {len(runs)} runs of {p['windows']} windows "
                  f"(each run's mean; range {min(runs):.3f}-{max(runs):.3f} ms, load average {p.get('load_average', 0):.1f}); "
                  f"`{p['command']}`."]  # fmt: skip
    if r.get("pareto"):
        lines += ["", "Pareto front (finished trials no other trial beats on both objectives):", "",
                  "| trial | model | val macro F1 | latency (ms) |", "| --- | --- | ---: | ---: |"]  # fmt: skip
        lines += [
            f"| {p['trial']} | {p['model']} | {p['val/macro_f1']:.4f} | {p['latency_ms']:.3f} |"
            for p in r["pareto"]
        ]
    lines += ["", f"Reproduce: `{r['command']}`; record: `python bench/study_record.py --study uci_har_fast "
              "--predict-experiment 3` (JSON: `bench/results/study_uci_har_fast.json`)."]  # fmt: skip
    return "\n".join(lines)


def search_section(r: Records) -> str:
    head = "## Search efficiency (`bench/search.py`)"
    if not r:
        return f"{head}\n\nNot run yet: `python bench/search.py`."
    lines = [
        head, "",
        f"The `uci_har` study's space on the real UCI HAR task, every searcher with the same budget: "
        f"{r['trials']} trials of at most {r['max_epochs']} epochs, {r['concurrency']} at a time, seeds "
        f"0..{max(len(e['repeats']) for e in r['searchers'].values()) - 1} (mean +- std over seeds; "
        f"{r['date']}, {r['machine']}, load average {r['load_average']['mean']:.1f} mean, "
        f"{r['load_average']['max']:.1f} max). Targets: validation macro F1 >= {r['val_target']}, champion "
        f"test accuracy >= {r['test_target']} (timed when that champion finished; only it is tested). "
        f"Reproduce: `{r['command']}`.", "",
        "| searcher | best val macro F1 | champion test accuracy | champion test macro F1 | s to val target "
        "| s to test target | stopped early | epochs | wall s | vs default: val F1 (better/worse, p) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for name, entry in r["searchers"].items():
        s = entry["summary"]
        vs = s.get("vs_default", {}).get("best_val_macro_f1")
        versus = (f"{vs['mean_difference']:+.4f} ({vs['better_in']}/{vs['worse_in']} of {vs['pairs']}, "
                  f"p={vs['wilcoxon_p'] if vs['wilcoxon_p'] is not None else '-'})") if vs else "default"  # fmt: skip
        lines.append(
            f"| {name} | {_mean_std(s, 'best_val_macro_f1')} | {_mean_std(s, 'test_accuracy')} | "
            f"{_mean_std(s, 'test_macro_f1')} | {_mean_std(s, 'time_to_val_target_s', 0)} | "
            f"{_mean_std(s, 'time_to_test_target_s', 0)} | {_mean_std(s, 'stopped_early', 1)} | "
            f"{_mean_std(s, 'epochs_trained', 0)} | {_mean_std(s, 'wall_s', 0)} | {versus} |"
        )
    lines += ["", "![best-so-far validation macro F1 against wall time](img/search-best-so-far.png)"]
    return "\n".join(lines)


def overhead_section(r: Records) -> str:
    head = "## Overhead against a bare loop (`bench/overhead.py`)"
    if not r:
        return f"{head}\n\nNot run yet: `python bench/overhead.py`."
    sq, sv = r["sqlite"], r["server"]
    return "\n".join([
        head, "",
        f"The same configuration trained {r['trials']} times, {r['concurrency']} at a time, {r['max_epochs']} "
        f"epochs each: by a bare loop (the trainer in a process pool, no Ray, no MLflow) in {r['bare_wall_s']} s, "
        f"and by `run_study` in {sq['study_wall_s']} s with MLflow on SQLite, {sv['study_wall_s']} s with a "
        f"tracking server: overhead **{100 * sq['overhead']:.1f}%** and **{100 * sv['overhead']:.1f}%** "
        f"(target < 10%). Fixed cost per study (Ray start and data before the first trial, winner test, "
        f"logging and registry after the last): {sq['fixed_per_study_s']} s ({sq['before_first_trial_s']} + "
        f"{sq['after_last_trial_s']}) on SQLite, {sv['fixed_per_study_s']} s on the server; per trial slot "
        f"round {sq['per_trial_s']} s against {r['bare_trial_s']} s bare per configuration. "
        f"{r['date']}, {r['machine']}, load average {r['load_average_after']:.1f} after. "
        f"Reproduce: `{r['command']}`.", "",
        "The bare loop runs first, then the two studies: a change in the machine's speed between them enters "
        "the figure. A trial's time is the trainer's own (a profile of a running trial finds it inside "
        "`fit`: forward, backward, optimiser), so on a shared machine repeat the run before reading much "
        "into a few percent.",
    ])  # fmt: skip


def _when(part: dict[str, Any]) -> str:
    return f"{part['date']}, {part['machine']}, load average {part['load_average_after']:.1f} after"


def images_section(results: Records) -> str:
    rows = results["backbones"]
    lines = [
        "## Image backbones on CPU (`bench/images.py`)",
        "",
        f"`python bench/images.py` ({results['machine']}, {results['threads']} threads, {results['date']}; "
        f"load average {results['load_average_after']:.1f}). Synthetic {results['size']}x{results['size']} "
        f"JPEGs, {results['crop']}x{results['crop']} crops, batch {results['batch']}.",
        "",
        "| backbone | parameters | train img/s (fine-tune all) | train img/s (frozen backbone) | "
        "inference img/s (batch) | latency ms (batch 1, 1 thread) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['parameters']:,} | {r['train_images_per_s']:.1f} | {r['train_frozen_images_per_s']:.1f} "
            f"| {r['inference_images_per_s']:.1f} | {r['latency_ms']:.1f} |"
        )
    lines += [
        "",
        f"Decoding + the published training transform: {results['data_images_per_s']:.0f} images/s per process "
        "(one thread), so a trial needs `loader_workers` processes to keep a GPU fed, and on this CPU the model, "
        "not the data, is the bottleneck.",
    ]
    return "\n".join(lines)


def prepare_section(r: Records) -> str:
    m = r["machine"]
    return "\n".join(
        [
            "## Preparing uci_hapt (`bench/prepare.py`)",
            "",
            f"{r['benchmark']}; {m['cpus']} CPUs, Python {m['python']}, numpy {m['numpy']}, pandas {m['pandas']}; "
            f"best of {r['repeats']} runs. Reproduce: `python bench/prepare.py` (JSON: `bench/results/prepare.json`).",
            "",
            "| step | seconds |",
            "| --- | --- |",
            f"| fetch from the mirror | {r['fetch_from_mirror_s']} |",
            f"| read the raw recordings (ours) | {r['raw_read_ours_s']} |",
            f"| read the raw recordings (naive `read_csv`) | {r['raw_read_naive_read_csv_s']} |",
            f"| prepare (in process) | {r['prepare_s']} |",
            f"| `har data prepare uci_hapt` (CLI, start-up included) | {r['cli_prepare_s']} |",
            "",
            f"Raw read speed-up {r['raw_read_speedup']}x; target {r['target_prepare_s']} s: "
            f"{'met' if r['meets_target'] else 'missed'}. Windows: {r['windows']['train']} train / "
            f"{r['windows']['test']} test against UCI HAR's {r['uci_har_windows']['train']} / "
            f"{r['uci_har_windows']['test']} (+{r['windows_vs_uci_har_pct']['train']}% / "
            f"+{r['windows_vs_uci_har_pct']['test']}%).",
        ]
    )


def tracking_load_section(r: Records) -> str:
    m, p = r["machine"], r["params"]
    lines = [
        "## Tracking under concurrent writers (`bench/tracking_load.py`)",
        "",
        f"{r['benchmark']} ({r['date']}; {m['cpu']}, {m['cpus']} CPUs, mlflow {m['mlflow']}): {p['procs']} "
        f"processes x {p['metrics_per_proc']} values each. Reproduce: `python bench/tracking_load.py` "
        "(JSON: `bench/results/tracking_load.json`).",
        "",
        "| store | sent | stored | lost | errors | metrics/s | log_batch median / p95 ms | log_metric median / p95 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in r["results"].items():
        lat = s["latency_ms"]
        lines.append(
            f"| {name} | {s['sent']} | {s['stored']} | {s['lost']} | {s['errors']} | {s['throughput_metrics_per_s']} "
            f"| {lat['log_batch_median']} / {lat['log_batch_p95']} | {lat['log_metric_median']} / {lat['log_metric_p95']} |"
        )
    lines += ["", *(f"- {note}" for note in r["notes"])]
    return "\n".join(lines)


def scale_section(r: Records) -> str:
    t, e = r["targets"], r["epoch_seconds"]
    lines = [
        "## Scale-out, simulated (`bench/scale.py`)",
        "",
        f"{r['benchmark']} ({r['date']}; {r['machine']}): `har tune --simulate` of `pipelines/myogym.yaml` "
        f"(5 permutations x {r['runs'][0]['trials'] // 5} trials, ASHA as in the study) with 1 CPU and "
        f"{r['runs'][0]['gpu_per_trial']} GPU per trial on local Ray nodes of {r['runs'][0]['gpus_per_node']} logical "
        f"GPUs each; every simulated epoch sleeps a duration drawn from the UCI HAR epoch times of the model "
        f"zoo, scaled to a median of {e['median']:.2f} s (range {e['min']:.2f}-{e['max']:.2f} s). Measured between the "
        "first trial start and the last trial end, on the trials' own clocks. Reproduce: `python bench/scale.py` "
        "(JSON: `bench/results/scale.json`).",
        "",
        "| nodes | slots | trials | epochs | tuning span s | utilisation | speedup | slot gap median / p95 s "
        "| MLflow values/s | command s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in r["runs"]:
        lines.append(
            f"| {run['nodes']} | {run['slots']} | {run['trials']} | {run['epochs']} | {run['wall_s']} "
            f"| {run['utilization']:.2f} | {run['speedup']}x | {run['slot_gap_s']} / {run['slot_gap_p95_s']} "
            f"| {run['mlflow_values_per_s']} | {run['command_wall_s']} |"
        )
    timing = [run for run in r["runs"] if "ramp_s" in run]
    if timing:  # where the slot time goes: worker start-up, and the end where slots only empty
        lines += ["", "Start-up ramp (median wait of a worker for its first trial) / drain (from the last trial "
                  "start to the end), s: " + ", ".join(f"{x['nodes']} nodes {x['ramp_s']} / {x['drain_s']}" for x in timing) + "."]  # fmt: skip
    lines += [
        "",
        f"Targets: utilisation >= {t['utilization']}, 4-node speedup >= {t['speedup_4_nodes']}x, slot gap <= "
        f"{t['slot_gap_s']} s. Slots over time on the largest cluster (one row per trial worker, one bar per "
        "trial, coloured by permutation):",
        "",
        f"![slots over time]({Path(r['picture']).relative_to('docs')})",
    ]
    lines += [f"- {note}" for note in r.get("notes", [])]
    return "\n".join(lines)


def warm_start_section(r: Records) -> str:
    lines = [
        "## Warm start (`bench/warm_start.py`)",
        "",
        f"{r['benchmark']} ({r['date']}; {r['machine']}): `har tune` of permutation `acc`, {r['trials']} trials of "
        f"at most {r['max_epochs']} epochs, 2 at a time, cold or with `search.warm_start: {{from: ws-source/all, "
        f"top: {r['top']}}}` (a search of permutation `all`, same space, {r['source_wall_s']} s). Time from the first "
        f"trial's start to the first validation macro F1 >= {r['target_val_macro_f1']}. Reproduce: "
        "`python bench/warm_start.py` (JSON: `bench/results/warm_start.json`).",
        "",
    ]
    others = list(r["runs"]["cold"][0].get("other_targets_s", {}))
    lines += [
        "| search | seed | s to target | reached | "
        + " | ".join(f"s to {o}" for o in others)
        + " | best val macro F1 | wall s |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in others) + " | --- | --- |",
    ]
    for kind, runs in r["runs"].items():
        for run in runs:
            also = " | ".join("-" if v is None else str(v) for v in run.get("other_targets_s", {}).values())
            lines.append(
                f"| {kind} | {run['seed']} | {run['seconds']} | {'yes' if run['reached'] else 'no'} | {also} "
                f"| {run['best_val_macro_f1']:.4f} | {run['wall_s']} |"
            )
    s = r["summary"]
    lines += [
        "",
        f"Median time to target: cold {s['cold']['median_s']} s ({s['cold']['reached']} of {len(r['runs']['cold'])} "
        f"reached it), warm {s['warm']['median_s']} s ({s['warm']['reached']} of {len(r['runs']['warm'])}).",
    ]
    lines += [f"- {note}" for note in r.get("notes", [])]
    return "\n".join(lines)


# ---------------------------------------------------------------- models.md


def models_measured_section(acc: Records, throughput: Records) -> str:
    speed = {r["spec"]: r for r in throughput["models"] if "train" in r}
    cv = {c["label"]: c for c in acc["cv"]}
    rows = by_group(acc, "published_models") + by_group(acc, "own_models")
    lines = [
        "Measured on uci_hapt (test accuracy: epoch chosen on validation subjects, one test evaluation, mean +- "
        "std over seeds; CV: 3 folds of the training subjects; speed: `bench/throughput.py`, "
        f"{throughput['machine'].get('cpu', 'CPU')}, training at batch 64, latency at batch 1 on one thread). "
        "Dates, seeds and commands: [results.md](results.md).",
        "",
        "| model | parameters | test accuracy % | published % | CV % | training windows/s | latency ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for e in rows:
        s, c, p = speed.get(e["label"]), cv.get(e["label"]), e.get("published")
        lines.append(
            f"| {e['label']} | {fmt(e['parameters'], ',')} | {pm(e['test_accuracy_mean'], e['test_accuracy_std'])} "
            f"| {p['accuracy'] if p else '-'} | {fmt(c and c['accuracy_mean'], '.2f')} "
            f"| {fmt(s and s['train']['windows_per_s'], '.0f')} | {fmt(s and s['latency_b1']['median_ms'], '.2f')} |"
        )
    for spec in sorted(set(speed) - {e["label"] for e in rows}):
        s, c = speed[spec], cv.get(spec)
        lines.append(
            f"| {spec} | {s['params']:,} | - | - | {fmt(c and c['accuracy_mean'], '.2f')} "
            f"| {s['train']['windows_per_s']:.0f} | {s['latency_b1']['median_ms']:.2f} |"
        )
    for label in sorted(set(cv) - {e["label"] for e in rows} - set(speed)):
        if not cv[label].get("transductive"):
            lines.append(f"| {label} | - | - | - | {cv[label]['accuracy_mean']:.2f} | - | - |")
    return "\n".join(lines)


# ---------------------------------------------------------------- pages

Renderer = Callable[[Records], str]
PAGES: dict[str, dict[str, Renderer]] = {
    "results.md": {
        "accuracy": lambda r: accuracy_section(r["accuracy"]),
        "authors_protocol": lambda r: authors_protocol_section(r["accuracy"]),
        "crossval": lambda r: cv_section(r["accuracy"]),
        "adaptation": lambda r: adaptation_section(r["accuracy"]),
        "watch": lambda r: watch_section(r["accuracy"]),
        "throughput": lambda r: throughput_section(r["throughput"]),
        "tune": lambda r: tune_section(r["tune"]),
        "images": lambda r: images_section(r["images"]),
        "prepare": lambda r: prepare_section(r["prepare"]),
        "tracking_load": lambda r: tracking_load_section(r["tracking_load"]),
        "scale": lambda r: scale_section(r["scale"]),
        "warm_start": lambda r: warm_start_section(r["warm_start"]),
        "study_uci_har": lambda r: study_section(r["study_uci_har"]),
        "study_uci_har_fast": lambda r: fast_study_section(r["study_uci_har_fast"]),
        "search": lambda r: search_section(r["search"]),
        "overhead": lambda r: overhead_section(r["overhead"]),
    },
    "models.md": {
        "models_measured": lambda r: models_measured_section(r["accuracy"], r["throughput"]),
        "adaptation": lambda r: adaptation_section(r["accuracy"]),
    },
}


def load_records(paths: dict[str, Path] | None = None) -> Records:
    return {
        name: json.loads(path.read_text()) if path.is_file() or name not in OPTIONAL else {}
        for name, path in (paths or RECORDS).items()
    }


def render(records: Records, docs: Path = DOCS) -> dict[Path, str]:
    """Every page with its sections rendered from ``records``: {path: text}."""
    out = {}
    for page, sections in PAGES.items():
        path = docs / page
        text = path.read_text()
        for name, fn in sections.items():
            text = replace_section(text, name, fn(records))
        out[path] = text
    return out


def check(records: Records, docs: Path = DOCS) -> list[str]:
    """What differs from the rendering: '<page>: section <name> ...' lines (empty when up to date)."""
    problems = []
    for path, text in render(records, docs).items():
        current = path.read_text()
        for name in PAGES[path.name]:
            want, have = _pattern(name).search(text), _pattern(name).search(current)
            if have is None:
                problems.append(f"{path.name}: section {name} is missing")
            elif want is None or want.group(0) != have.group(0):
                problems.append(f"{path.name}: section {name} differs from its JSON rendering")
        names = set(re.findall(r"<!-- section:(\S+) -->", current))
        problems += [
            f"{path.name}: section {n} has no renderer" for n in sorted(names - set(PAGES[path.name]))
        ]
        problems += [
            f"{path.name}: hand-written figure {f!r} outside the rendered sections"
            for f in stray_figures(current)
        ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a page differs from its rendering")
    args = parser.parse_args(argv)
    records = load_records()
    if args.check:
        problems = check(records)
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    from har.atomic import atomic_file

    for path, text in render(records).items():
        if path.read_text() != text:
            with atomic_file(path, "w") as handle:
                handle.write(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
