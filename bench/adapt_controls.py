"""Controls for per-subject BatchNorm adaptation (har.train.adapt, crossval round 7), on the validation subjects.

Where does AdaBN's gain come from? Each resnet1d:pooled_stats seed is trained exactly as
bench/accuracy.py trains it (one thread: the same models as its `+ AdaBN per subject` rows), then its
4 validation subjects are scored with the BatchNorm statistics taken from:

- ``plain``: training (the running averages, as saved);
- ``train_recalibrated``: re-estimated on every training window, clean (no augmentation): inductive. If
  this matched per-subject adaptation, the gain would be badly estimated statistics, not subjects;
- ``val_pooled``: re-estimated on all validation windows together (the shift of the split, not of each
  subject);
- ``per_subject``: each subject's own windows (what ``--adapt`` does);
- ``per_subject_first_K`` / ``per_subject_random_K``: only K of the subject's windows (the first K in
  time, as a deployment would have them, or K drawn at random), then applied to all of them: how much
  unlabeled data a new user must give.
- ``per_recording``: each raw UCI HAPT recording (experiment) of a validation subject as a user's
  recording: every step-grid window of the whole recording, transitions and unlabelled stretches
  included, as ``har predict --adapt`` would see it; applied to that recording's labelled windows (the
  validation windows, cut again from the raw files exactly as ``prepare`` cuts them: the count is
  checked, and ``per_recording_plain`` must equal ``plain``).

The test subjects are not used. Seeds run in parallel processes, one thread each.

    python bench/adapt_controls.py --seeds 0,1,2 --jobs 2
    python bench/adapt_controls.py --report-only

Writes bench/results/adapt_controls.json and the adapt_controls section of docs/results.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from report_sections import save_json, write_section  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "adapt_controls.json"
REPORT = ROOT / "docs" / "results.md"
BUDGETS = (16, 32, 64, 128)  # windows of a subject used to estimate its statistics (step 64: 1.28 s each)


def controls(seed: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from har.train.adapt import adapt_batchnorm, predict_adapted
    from har.train.loop import predict_logits
    from har.train.run import RunSpec, run

    spec = RunSpec("uci_hapt", "all", "resnet1d", "pooled_stats",
                   train={"seed": seed, "max_epochs": 20, "num_threads": 1, "device": "cpu"})  # fmt: skip
    result = run(spec, ROOT / "data" / "prepared", test=False)
    model, data = result.model, result.data
    X, y = data.splits["val"]
    subjects = data.subjects["val"]

    def accuracy(predicted: np.ndarray) -> float:
        return round(float((predicted == y).mean()) * 100, 2)

    def per_subject(pick=None) -> float:
        """Each subject predicted with statistics from ``pick(rows)``, a subset of its windows (default all)."""
        return accuracy(predict_adapted(model, X, subjects, predict_logits, calibrate=pick).argmax(1))

    rng = np.random.default_rng(seed)
    out = {
        "seed": seed,
        "val_subjects": data.val_subjects,
        "plain": accuracy(predict_logits(model, X).argmax(1)),
        "train_recalibrated": accuracy(predict_logits(adapt_batchnorm(model, data.splits["train"][0]), X).argmax(1)),
        "val_pooled": accuracy(predict_logits(adapt_batchnorm(model, X), X).argmax(1)),
        "per_subject": per_subject(),
    }
    out |= per_recording(model, data)
    for k in BUDGETS:
        out[f"per_subject_first_{k}"] = per_subject(lambda rows, k=k: rows[:k])
        out[f"per_subject_random_{k}"] = per_subject(lambda rows, k=k: np.sort(rng.permutation(rows)[:k]))
    print(out, flush=True)
    return out


def per_recording(model: Any, data: Any) -> dict[str, float]:
    """Validation accuracy (%) when each raw recording calibrates on all of its own windows, and plain."""
    from har.data.formats import uci_hapt
    from har.data.prepare import reader_options
    from har.data.registry import resolve
    from har.data.windows import window_starts
    from har.train.adapt import adapt_batchnorm
    from har.train.loop import predict_logits

    spec = resolve("uci_hapt", ROOT / "params.yaml")
    recordings, _ = uci_hapt.read_recordings(  # filtered and labelled exactly as `prepare` does
        ROOT / "data" / "raw" / "uci_hapt", spec, reader_options(spec), users=set(data.val_subjects)
    )
    hits = {"per_recording": 0, "per_recording_plain": 0}
    total = 0
    for recording in recordings:
        values = data.normalise(recording.signals)
        starts, y = window_starts(recording.labels, spec.window)
        view = sliding_window_view(values, spec.window.size, axis=0).transpose(0, 2, 1)  # [N, T, C]
        labelled = np.ascontiguousarray(view[starts])
        adapted = adapt_batchnorm(model, np.ascontiguousarray(view[:: spec.window.step]))
        hits["per_recording"] += int((predict_logits(adapted, labelled).argmax(1) == y).sum())
        hits["per_recording_plain"] += int((predict_logits(model, labelled).argmax(1) == y).sum())
        total += len(y)
    if total != len(data.splits["val"][1]):
        raise RuntimeError(f"cut {total} labelled windows from the raw files, the split has {len(data.splits['val'][1])}")
    return {name: round(100 * n / total, 2) for name, n in hits.items()}


def report(results: dict[str, Any]) -> str:
    runs = results["runs"]
    names = [k for k in runs[0] if k not in ("seed", "val_subjects")]
    lines = [
        "## Per-subject adaptation: controls (validation subjects, `bench/adapt_controls.py`)",
        "",
        f"resnet1d:pooled_stats, seeds {', '.join(str(r['seed']) for r in runs)} (trained as in the accuracy "
        f"table, one thread), scored on its validation subjects {runs[0]['val_subjects']} with BatchNorm "
        "statistics from: training (plain), every clean training window (inductive recalibration), all "
        "validation windows pooled, each subject's own windows, or only K of each subject's windows (the "
        "first K in time, or K at random; each window 1.28 s of new data at step 64), or each raw recording's "
        "every window, transitions and unlabelled stretches included (per_recording; per_recording_plain is "
        "the same windows cut again from the raw files, unadapted, and must equal plain). Test subjects unused.",
        "",
        "| statistics from | validation accuracy % (mean +- std over seeds) |",
        "| --- | --- |",
    ]
    for name in names:
        values = np.array([r[name] for r in runs])
        lines.append(f"| {name} | {values.mean():.2f} +- {values.std():.2f} |")
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        seeds = [int(s) for s in args.seeds.split(",")]
        with mp.get_context("spawn").Pool(min(args.jobs, len(seeds))) as pool:
            runs = pool.map(controls, seeds)
        save_json(RESULTS, {"runs": runs})
    import json

    write_section(REPORT, "adapt_controls", report(json.loads(RESULTS.read_text())))


if __name__ == "__main__":
    main()
