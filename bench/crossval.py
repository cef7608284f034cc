"""Cross-validation over the training subjects of uci_hapt (``har cv --folds 3``), beside the
4-subject validation and the test figures of the accuracy table.

Each candidate is cross-validated with 3 seeded folds of the 21 training subjects (the test subjects
are never used); inside each fold, validation subjects carved from the fold's training subjects choose
the epoch. The candidates below were all tested already (bench/accuracy.py), so this is no selection:
it asks whether the judges agree, i.e. whether an estimate over all 21 training subjects ranks the
candidates as the test subjects do, where the 4 validation subjects did not.

    python bench/crossval.py                  # runs what is missing, then writes the section
    python bench/crossval.py --report-only
    python bench/crossval.py --probs          # rounds 10-11: re-run the ensembles' members keeping their
                                              # held-out probabilities, then write the ensembles' CV records

Round 2, denser training windows (declared 2026-11-30, before any of its runs). Candidates:
resnet1d:pooled_stats and resnet1d:wang2017 trained on uci_hapt prepared with window.train_step 32
(training windows every 32 samples instead of 64: twice the training windows, each a real 128-sample
cut of the recording; validation, held-out and test windows unchanged, bench/dense_windows.py). Epoch
caps halved (pooled_stats 10, wang2017 13), so a run takes about as many gradient steps as its base.
Why: these CNNs fit the training subjects within 3-15 epochs; more distinct windows of the same subjects
are real-data augmentation, where the shift augmentation only repeats the window's edge. Judge: the same
3 folds as the base runs. Rule: a candidate goes to the test split (3 seeds, bench/accuracy.py) only if
its CV mean beats its base's and it is better on at least 2 of the 3 folds; if both qualify, only the one
with the higher CV mean is tested. From this round on, the best model of the accuracy table is the one
with the highest CV mean among the models with >= 3 test seeds and a CV record (the 4-subject validation
rule is retired: the table below shows it is a noisy judge).

Round 3, regularising the CV winner (declared 2026-11-30 after round 2's pooled_stats result, before
any round-3 run). Round 2's pooled_stats candidate lost to its base (93.89 vs 94.08, 1 of 3 folds), so
pooled_stats stays the model to beat. Candidates, each pooled_stats with one kind of change:
(a) ``ema_decay=0.998``: its weights averaged as in wang2017_ema, whose CV mean was 1.7 points above
wang2017's; (b) stronger regularisation against the early peak: dropout 0.5, weight decay 1e-3, label
smoothing 0.2. Rule: the round-3 candidate with the higher CV mean is tested (3 seeds, as a new preset)
only if that mean beats pooled_stats' 94.08 and it is better on at least 2 of the 3 folds.

Round 4, a refit of the CV leader on all 21 training subjects (declared 2026-11-30 after round 3,
before any round-4 run). pooled_stats ends with a cosine schedule annealed to a small learning rate, so
its last epoch is a defined end point that needs no validation subjects to pick it. Gate: the same 3
folds with ``keep=last`` (the last epoch's weights, nothing selected on validation). If that CV mean is at
least pooled_stats' 94.08 (validation-selected) and it is not worse on 2 of the 3 folds, the procedure
needs no validation split: bench/refit_annealed.py --procedure pooled_stats then trains it on all 21
training subjects (seeds 0, 1, 2) and evaluates each once on the test subjects; that refit becomes the
best model if the gate's CV mean is the highest CV mean of the table. Otherwise nothing is tested.

Round 5, a steadier choice of the epoch (declared 2026-11-30 after round 4, before any round-5 run).
Rounds 1-4 point at the epoch choice as the weak step: the last epoch is worse than the chosen one
(round 4), and the chosen epoch's validation accuracy is a noisy guide to held-out subjects. Candidates,
pooled_stats with (a) ``monitor=val/loss`` (a smoother criterion than macro F1 on 3-4 subjects), or (b)
``--val-fraction 0.3`` (4 validation subjects per fold instead of 3, 6 in the final split instead of 4).
Rule as in round 3: the better candidate is tested (3 seeds, as a new preset) only if its CV mean beats
pooled_stats' 94.08 and it is better on at least 2 of the 3 folds.

Round 6, one seed per fold is not enough (declared 2026-11-30 after the noise measurement, before any
round-6 run). pooled_stats with training seeds 1 and 2 scores 92.41 and 93.43 against seed 0's 94.08:
the leader's figure was the top of its own spread, and every round 2-5 candidate (92.67-93.89) lies
inside it. From now on a CV figure is the mean over the training seeds run (0, 1, 2 where run), per fold
and overall, for the candidates and for the best-model rule of the accuracy table. The one candidate
that was above pooled_stats' seed mean on every fold, pooled_stats + train_step 32 (round 2), gets
seeds 1 and 2. Rule: it is tested (3 seeds, bench/accuracy.py --train-step 32 --max-epochs 10) only if
its 3-seed CV mean beats pooled_stats' 3-seed CV mean and its per-fold seed means are higher on at
least 2 of the 3 folds.

Completing round 6's rule (declared 2026-11-30 before these runs): the two other CV-judged models of
the accuracy table, wang2017 and wang2017_ema, get training seeds 1 and 2 as well, so that the best-model
rule compares 3-seed CV means only, whichever way that turns out.

Round 7, unsupervised per-subject BatchNorm adaptation (AdaBN, har/adapt.py; declared 2026-11-30
after one exploratory look at one pooled_stats model's 4 validation subjects, 95.43 -> 98.05 %, before
any CV or test run). Candidate: pooled_stats trained exactly as in round 6 (training seeds 0, 1, 2; the
plain figures must reproduce the round-6 records), each held-out subject predicted with every BatchNorm
layer's statistics re-estimated on that subject's own unlabeled windows (``har cv --adapt``): same
weights, same windows, so the comparison is paired. It is transductive (a subject's windows, never its
labels, are seen before it is classified) and is reported as its own protocol, never mixed with the
plain figures. Rule: it is tested (the accuracy table's 3 pooled_stats seeds retrained identically, each
evaluated once on the test subjects with adaptation per test subject) only if its 3-seed CV mean beats
pooled_stats' plain 3-seed CV mean and its per-fold seed means are higher on at least 2 of the 3 folds.
If tested, it is the best model under the transductive protocol only; the plain best model stays.

Round 8, another backbone (declared 2026-11-30 before any run of it that scores accuracy; only its
training speed was timed). Rounds 2-6 changed pooled_stats' data, regularisation and epoch choice and none
beat it; the backbone was never changed. Candidate: inception:pooled_stats, InceptionTime's network
(Ismail Fawaz et al. 2020: six Inception modules, kernels 39/19/9, a residual shortcut every three;
har/models/inception.py) inside pooled_stats' recipe unchanged (window mean/std to the classifier, dropout
0.3, weight decay 5e-4, jitter/shift/timewarp, cosine schedule, label smoothing 0.1, 20 epochs): one change,
the backbone. Training seeds 0, 1, 2 on the same 3 folds. Rule (round 6's): it is tested (3 seeds,
bench/accuracy.py) only if its 3-seed CV mean beats pooled_stats' plain 3-seed CV mean (93.30) and its
per-fold seed means are higher on at least 2 of the 3 folds; once tested, the accuracy table's best-model
rule (the highest 3-seed CV mean) decides whether it is the best plain model.

Round 9, hand-crafted window features (declared 2026-11-30 after round 8's verdict, before any run of
its candidates that scores accuracy). Every network so far classifies the validation subjects well and
misreads sitting/standing on held-out ones, while the UCI HAR authors' support-vector machine on 561
hand-crafted features reaches 96% on the test subjects (their report, Anguita et al. 2013; not in
../shared/seeds). Candidates, each in pooled_stats' training recipe
unchanged, training seeds 0, 1, 2 on the same 3 folds: (a) resnet1d:pooled_features, pooled_stats with
the UCI HAR feature families (har/models/window_stats.py: per-channel and per-magnitude statistics, jerk,
smoothed min/max, band energies, dominant frequency, spectral entropy, axis correlations, mean
direction; batch-normalised) beside its pooled features; (b) feature_mlp:uci, those features alone into a
2-layer MLP (256, 256, dropout 0.3). Rule: the candidate with the higher 3-seed CV mean is tested (3
seeds, bench/accuracy.py) only if that mean beats pooled_stats' 93.30 and its per-fold seed means are
higher on at least 2 of the 3 folds; the other is not tested.

Round 10, an ensemble of the recipe's three members (declared 2026-11-30 after round 9's verdict, before
any ensemble figure was computed; the members' own CV figures are known). Nine rounds changed one model at
a time and all land in the same band; the models do not fail alike (feature_mlp:uci is the worst on folds
1-2 and the best yet on fold 3, 91.16 against 89.18-90.13). Candidate ``ensemble:mix3``: for training seed
s, the mean of the class probabilities of resnet1d:pooled_stats, resnet1d:pooled_features and
feature_mlp:uci, each trained with seed s exactly as in rounds 6 and 9 (``har cv --probs-out`` re-runs them
and keeps every held-out window's probabilities; their fold accuracies must equal the committed records,
or the round stops). Inductive: nothing of a held-out subject is seen before it is classified; it costs
three networks at inference. Rule (round 6's): it is tested (bench/ensemble.py --members with the three,
seeds 0, 1, 2; each member trained as bench/accuracy.py trains it, each seed's ensemble evaluated once on
the test subjects) only if its 3-seed CV mean beats pooled_features' 93.55 (the CV leader) and its
per-fold seed means are higher on at least 2 of the 3 folds; once tested, the best-model rule (the
highest 3-seed CV mean) decides.

Round 11, a larger ensemble (declared 2026-11-30 after round 10's test figure, 94.67 +- 0.29%, before any
figure of this candidate was computed). Round 10's ensemble gained most where its members disagree; nine
members average out more of each network's seed noise than three. Candidate ``ensemble:mix9``: the mean
of the class probabilities of all nine networks of round 10 (the three models x training seeds 0, 1, 2).
Its CV needs no new training: the round-10 re-runs hold every held-out probability; it is one ensemble
per fold, so no seed mean. Rule: it is tested only if its CV mean beats ensemble:mix3's 3-seed CV mean
(93.95) and its per-fold figures are higher than mix3's per-fold seed means on at least 2 of the 3 folds.
Test: three disjoint nine-network ensembles (seeds 0-2, 3-5, 6-8 of each model, every member trained as
bench/ensemble.py trains members), each evaluated once on the test subjects; mean +- std over the three.

Round 12, the published models first run on uci_hapt (declared 2026-11-30 before any of their CV
runs, but after their accuracy-table runs had begun: cnn_resbigru:model2's test accuracy for seeds 0 and
1, 94.79 and 95.73, and deepconvlstm:ordonez's for seed 0, 91.86, were known when this was written). The
issue asks for every published model in the accuracy table; cnn_resbigru:model2 (Mekruksavanich &
Jitpattanakul 2024, published on MyoGym) and deepconvlstm:ordonez (Ordonez & Roggen 2016, published on
Opportunity) had never been run on uci_hapt, because their recurrent layers are slow on this CPU. Their
table rows (3 seeds, one test evaluation per run) were run because the issue lists them, chosen by
nothing. The best-model rule compares only models with a CV record, so both get one: 3-fold CV with
training seeds 0, 1, 2, epoch cap 25 as in the table. No test evaluation follows from this round (both are
tested already); the rule, the highest 3-seed CV mean, decides whether either is the best plain model.
Caveat, stated wherever the result is: the CV of these two was added after their test figures existed.

Writes bench/results/cv/uci_hapt-<model>-<preset>[-train_step<N>][-<variant>].json (the `har cv -o` record) and the
crossval section of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from dense_windows import label, params_file, prepared  # bench/ is on sys.path when run as a script
from report_sections import save_json, write_section

from har.train.crossval import FoldResult, summary

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "bench" / "results" / "cv"
ACCURACY = ROOT / "bench" / "results" / "accuracy.json"
REPORT = ROOT / "docs" / "results.md"
PROBS = ROOT / "runs" / "cv_probs"
# round 3's variants: file suffix -> `har cv` overrides
VARIANTS = {
    "ema": ["--set", "ema_decay=0.998"],
    "reg": ["--hparam", "dropout=0.5", "--set", "weight_decay=0.001", "--set", "label_smoothing=0.2"],
    "last": ["--set", "keep=last"],
    "valloss": ["--set", "monitor=val/loss"],
    "val30": ["--val-fraction", "0.3"],
    "seed1": ["--seed", "1"],
    "seed2": ["--seed", "2"],
    "adabn": ["--adapt"],  # round 7: the plain figure and the adapted one, from the same models
    "adabn_seed1": ["--adapt", "--seed", "1"],
    "adabn_seed2": ["--adapt", "--seed", "2"],
}
VARIANT_LABELS = {"ema": "ema_decay=0.998", "reg": "dropout 0.5 + weight_decay 1e-3 + label_smoothing 0.2",
                  "last": "keep=last", "valloss": "monitor=val/loss", "val30": "val_fraction 0.3",
                  "seed1": "training seed 1", "seed2": "training seed 2", "adabn": "AdaBN per subject",
                  "adabn_seed1": "AdaBN per subject + training seed 1",
                  "adabn_seed2": "AdaBN per subject + training seed 2"}  # fmt: skip
# label -> (model:preset, epoch cap, window.train_step or None, round-3 variant or None)
CANDIDATES: dict[str, tuple[str, int, int | None, str | None]] = {
    label(name, step) + (f" + {VARIANT_LABELS[variant]}" if variant else ""): (name, epochs, step, variant)
    for name, epochs, step, variant in (
        ("resnet1d:wang2017", 25, None, None),
        ("resnet1d:wang2017_ema", 25, None, None),
        ("resnet1d:pooled_stats", 20, None, None),
        ("resnet1d:pooled_stats", 10, 32, None),
        ("resnet1d:wang2017", 13, 32, None),
        ("resnet1d:pooled_stats", 20, None, "ema"),
        ("resnet1d:pooled_stats", 20, None, "reg"),
        ("resnet1d:pooled_stats", 20, None, "last"),
        ("resnet1d:pooled_stats", 20, None, "valloss"),
        ("resnet1d:pooled_stats", 20, None, "val30"),
        ("resnet1d:pooled_stats", 20, None, "seed1"),  # the judge's noise: the leader, other seeds
        ("resnet1d:pooled_stats", 20, None, "seed2"),
        ("resnet1d:pooled_stats", 10, 32, "seed1"),  # round 6
        ("resnet1d:pooled_stats", 10, 32, "seed2"),
        ("resnet1d:wang2017", 25, None, "seed1"),  # completing round 6's rule
        ("resnet1d:wang2017", 25, None, "seed2"),
        ("resnet1d:wang2017_ema", 25, None, "seed1"),
        ("resnet1d:wang2017_ema", 25, None, "seed2"),
        ("resnet1d:pooled_stats", 20, None, "adabn"),  # round 7
        ("resnet1d:pooled_stats", 20, None, "adabn_seed1"),
        ("resnet1d:pooled_stats", 20, None, "adabn_seed2"),
        ("inception:pooled_stats", 20, None, None),  # round 8
        ("inception:pooled_stats", 20, None, "seed1"),
        ("inception:pooled_stats", 20, None, "seed2"),
        ("resnet1d:pooled_features", 20, None, None),  # round 9
        ("resnet1d:pooled_features", 20, None, "seed1"),
        ("resnet1d:pooled_features", 20, None, "seed2"),
        ("feature_mlp:uci", 20, None, None),
        ("feature_mlp:uci", 20, None, "seed1"),
        ("feature_mlp:uci", 20, None, "seed2"),
        ("cnn_resbigru:model2", 25, None, None),  # round 12
        ("cnn_resbigru:model2", 25, None, "seed1"),
        ("cnn_resbigru:model2", 25, None, "seed2"),
        ("deepconvlstm:ordonez", 25, None, None),
        ("deepconvlstm:ordonez", 25, None, "seed1"),
        ("deepconvlstm:ordonez", 25, None, "seed2"),
    )
}
BASE = {"resnet1d:pooled_stats + train_step 32": "resnet1d:pooled_stats",
        "resnet1d:wang2017 + train_step 32": "resnet1d:wang2017"}  # fmt: skip
ROUND_3 = [name for name, (*_, variant) in CANDIDATES.items() if variant in ("ema", "reg")]
GATE_4 = "resnet1d:pooled_stats + keep=last"
ROUND_5 = [name for name, (*_, variant) in CANDIDATES.items() if variant in ("valloss", "val30")]
MIX3 = ("resnet1d:pooled_stats", "resnet1d:pooled_features", "feature_mlp:uci")  # round 10's members
ROUND_12 = ("cnn_resbigru:model2", "deepconvlstm:ordonez")  # CV run after their test figures existed


def seeds_of(name: str) -> list[str]:
    """The CV records of ``name`` with every training seed run: itself (seed 0) and its seed variants."""
    return [name] + [n for n in (f"{name} + training seed 1", f"{name} + training seed 2") if n in CANDIDATES]


def seed_mean(name: str) -> tuple[float, list[float], int] | None:
    """Round 6's CV figure: (mean, per-fold means, seeds) in % over the training seeds whose record exists."""
    records = [json.loads(path(n).read_text()) for n in seeds_of(name) if path(n).is_file()]
    if not records:
        return None
    field = "adapted_accuracy" if (CANDIDATES[name][3] or "").startswith("adabn") else "accuracy"
    folds = np.array([[f[field] for f in r["folds"]] for r in records]) * 100
    return float(folds.mean()), folds.mean(axis=0).tolist(), len(records)


def path(name: str) -> Path:
    model, _, step, variant = CANDIDATES[name]
    suffix = (f"-train_step{step}" if step else "") + (f"-{variant}" if variant else "")
    return FOLDER / f"uci_hapt-{model.replace(':', '-')}{suffix}.json"


def probs_path(name: str) -> Path:
    """Round 10's re-run of a committed CV record with its held-out probabilities (.npz beside a .json
    record to compare with the committed one); under runs/, not committed."""
    return PROBS / path(name).with_suffix(".npz").name


def run(name: str, probs: bool = False) -> None:
    """``har cv`` for candidate ``name``; ``probs``: round 10's re-run, keeping held-out probabilities."""
    model_preset, epochs, step, variant = CANDIDATES[name]
    model, _, preset = model_preset.partition(":")
    record = probs_path(name).with_suffix(".json") if probs else path(name)
    command = [str(Path(sys.executable).parent / "har"), "cv", "-d", "uci_hapt", "-m", model, "-p", preset,
               "--folds", "3", "--epochs", str(epochs), "--set", "num_threads=1", "-o", str(record)]  # fmt: skip
    if probs:
        command += ["--probs-out", str(probs_path(name))]
    command += VARIANTS.get(variant or "", [])
    if step:
        prepared("uci_hapt", step)
        command += ["--params", str(params_file("uci_hapt", step))]
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def report() -> str:
    accuracy = {
        row["model"]: row
        for row in json.loads(ACCURACY.read_text()).get("summary", [])
        if row["dataset"] == "uci_hapt"
    }
    lines = [
        "## Cross-validation over the training subjects (uci_hapt)",
        "",
        "`python bench/crossval.py`: `har cv -d uci_hapt -m MODEL -p PRESET --folds 3` per candidate (3 seeded "
        "folds of the 21 training subjects, 7 held out per fold; the test subjects are never used), beside "
        "the 4-subject validation and the test figures of the table above. The first three were tested "
        "before any CV, so for them this chose nothing: it checks whether an estimate over all 21 training "
        "subjects ranks them as the test subjects do. From round 2 on, CV decides what is tested (rules "
        "below, each declared in bench/crossval.py before its runs); a candidate CV did not send to the "
        "test split has no validation or test figure (-).",
        "",
        "| model | CV accuracy % (mean +- std over folds) | CV pooled accuracy % | CV macro F1 % "
        "| validation % (4 subjects, mean of seeds) | test % (mean of seeds) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in CANDIDATES:
        if not path(name).is_file():
            continue
        folds = json.loads(path(name).read_text())["folds"]
        if (CANDIDATES[name][3] or "").startswith("adabn"):  # round 7: the adapted figures of its record
            folds = [{**f, "accuracy": f["adapted_accuracy"], "macro_f1": f["adapted_macro_f1"]} for f in folds]
        s = summary([FoldResult(**f) for f in folds])
        row = accuracy.get(name, {})
        lines.append(
            f"| {name} | {100 * s['accuracy_mean']:.2f} +- {100 * s['accuracy_std']:.2f} "
            f"| {100 * s['pooled_accuracy']:.2f} | {100 * s['macro_f1_mean']:.2f} +- {100 * s['macro_f1_std']:.2f} "
            f"| {_pct(row.get('val_accuracy_mean'))} | {_pct(row.get('test_accuracy_mean'))} |"
        )
    folds = next((json.loads(path(n).read_text())["folds"] for n in CANDIDATES if path(n).is_file()), [])
    if folds:
        lines += [
            "",
            "Folds (held-out subjects): " + "; ".join(",".join(map(str, f["held_out"])) for f in folds) + ".",
        ]
    lines += round_two()
    return "\n".join([*lines, ""])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def verdicts(pairs: dict[str, str]) -> dict[str, tuple[bool, float, float, int]]:
    """Each finished candidate against the model it must beat: (qualifies, CV mean, that model's CV mean,
    folds won), in %; qualifying = a higher CV mean and better on at least 2 of the 3 folds."""
    out = {}
    for name, base in pairs.items():
        if not (path(name).is_file() and path(base).is_file()):
            continue
        mine, theirs = (one_seed(n) for n in (name, base))
        out[name] = (qualifies(mine, theirs), mine[0], theirs[0], folds_won(mine[1], theirs[1]))
    return out


def one_seed(name: str) -> Seeds:
    """A single-seed CV record as (mean, per-fold figures, 1) in %, the shape the round-6 rule compares."""
    record = json.loads(path(name).read_text())
    return 100 * record["summary"]["accuracy_mean"], [100 * f["accuracy"] for f in record["folds"]], 1


def round_table(found: dict[str, tuple[bool, float, float, int]], against: str) -> list[str]:
    """Candidates against the model each must beat; of those that qualify only the best CV mean is tested."""
    qualified = [n for n, v in found.items() if v[0]]
    tested = max(qualified, key=lambda n: found[n][1]) if qualified else None
    lines = ["", f"| candidate | CV % | {against} CV % | folds won | tested |", "| --- | --- | --- | --- | --- |"]
    for name, (_, mean, base_mean, won) in found.items():
        lines.append(f"| {name} | {mean:.2f} | {base_mean:.2f} | {won} of 3 | {'yes' if name == tested else 'no'} |")
    return lines


def round_two() -> list[str]:
    """Rounds 2, 3 and 5 (declared in this module's docstring before their runs) with their verdicts,
    then rounds 6 to 9."""
    leader = "resnet1d:pooled_stats"
    rounds = (
        (BASE, "base", "Round 2, denser training windows: the base preset trained on uci_hapt prepared with "
         "window.train_step 32 (twice the training windows, scored windows unchanged), epoch cap halved. A "
         "candidate is tested only if its CV mean beats its base's and it wins >= 2 of the 3 folds; of two, "
         "only the higher CV mean."),
        ({name: leader for name in ROUND_3}, "pooled_stats", "Round 3, pooled_stats (the CV leader) with its "
         "weights averaged, or regularised harder against the early peak (one seed per fold, 20 epochs). The "
         "better candidate is tested only if it beats pooled_stats' CV mean and wins >= 2 of the 3 folds."),
        ({name: leader for name in ROUND_5}, "pooled_stats", "Round 5, a steadier choice of the epoch: "
         "pooled_stats choosing its epoch by validation loss, or with 4 validation subjects per fold instead of "
         "3. The better candidate is tested only if it beats pooled_stats' CV mean and wins >= 2 of the 3 folds."),
    )  # fmt: skip
    lines = []
    for pairs, against, text in rounds:
        found = verdicts(pairs)
        if found:
            lines += ["", text, *round_table(found, against)]
    return (lines + round_six() + round_seven() + round_eight() + round_nine() + round_ten() + round_eleven()
            + round_twelve())


def round_six() -> list[str]:
    """CV figures averaged over training seeds, and round 6's verdict on the dense-window candidate."""
    leader, candidate = "resnet1d:pooled_stats", "resnet1d:pooled_stats + train_step 32"
    means = {name: seed_mean(name) for name in ("resnet1d:wang2017", "resnet1d:wang2017_ema", leader, candidate)}
    rows = {name: m for name, m in means.items() if m is not None and m[2] == 3}
    if leader not in rows or candidate not in rows:
        return []
    won = folds_won(rows[candidate][1], rows[leader][1])
    tested = qualifies(rows[candidate], rows[leader])
    lines = [
        "",
        "Round 6, CV figures over 3 training seeds (0, 1, 2) per fold: one seed per fold moves the mean by up "
        "to 1.7 points (pooled_stats: 94.08, 92.41, 93.43), as much as any candidate's gain, so the leader and "
        "the candidate that beat the leader's seed mean on every fold were run with seeds 1 and 2 (and, to "
        "apply the best-model rule to 3-seed figures only, the other CV-judged models). The candidate is "
        "tested only if its 3-seed CV mean is higher than the leader's and its per-fold seed means are higher "
        "on >= 2 of the 3 folds.",
        "",
        "| model | CV % (3 seeds) | per fold (seed means) | folds won vs pooled_stats | tested |",
        "| --- | --- | --- | --- | --- |",
    ]
    for model, (mean, folds, _) in rows.items():
        fold_text = " / ".join(f"{v:.2f}" for v in folds)
        wins, verdict = (f"{won} of 3", "yes" if tested else "no") if model == candidate else ("-", "-")
        lines.append(f"| {model} | {mean:.2f} | {fold_text} | {wins} | {verdict} |")
    return lines


def round_seven() -> list[str]:
    """Round 7's paired verdict: pooled_stats' plain 3-seed CV against the same models adapted per subject."""
    leader, candidate = "resnet1d:pooled_stats", "resnet1d:pooled_stats + AdaBN per subject"
    plain, adapted = seed_mean(leader), seed_mean(candidate)
    if plain is None or adapted is None or adapted[2] != 3:
        return []
    # the plain figures of the round-7 runs are the round-6 records' (same seeds, same folds, same models)
    same = all(
        [f["accuracy"] for f in json.loads(path(a).read_text())["folds"]]
        == [f["accuracy"] for f in json.loads(path(b).read_text())["folds"]]
        for a, b in zip(seeds_of(candidate), seeds_of(leader), strict=True)
    )
    return [
        "",
        "Round 7, unsupervised per-subject BatchNorm adaptation (AdaBN, `har cv --adapt`): the round-6 "
        "pooled_stats models (3 training seeds per fold"
        + (", plain figures identical to the round-6 records" if same else ", PLAIN FIGURES DIFFER from round 6")
        + "), each held-out subject predicted with BatchNorm statistics re-estimated on its own unlabeled "
        "windows. Transductive: a subject's windows (never its labels) are seen before it is classified; its "
        "figures are reported apart from the plain ones. Tested only if its 3-seed CV mean beats the plain one "
        "and its per-fold seed means are higher on >= 2 of the 3 folds.",
        *seed_verdict(f"{leader} (plain)", plain, {candidate: adapted}, "plain"),
    ]


def round_eight() -> list[str]:
    """Round 8's verdict: InceptionTime's backbone in pooled_stats' recipe against pooled_stats (3-seed CV)."""
    return against_leader(
        ("inception:pooled_stats",),
        "Round 8, another backbone: InceptionTime's network (har/models/inception.py) trained with "
        "pooled_stats' recipe unchanged, training seeds 0, 1, 2 on the same folds. Tested only if its 3-seed CV "
        "mean beats pooled_stats' and its per-fold seed means are higher on >= 2 of the 3 folds.",
    )


def round_nine() -> list[str]:
    """Round 9's verdict: two hand-crafted-feature candidates against pooled_stats (3-seed CV)."""
    return against_leader(
        ("resnet1d:pooled_features", "feature_mlp:uci"),
        "Round 9, hand-crafted window features (the UCI HAR feature families, har/models/window_stats.py), "
        "in pooled_stats' recipe unchanged, training seeds 0, 1, 2 on the same folds: beside pooled_stats' "
        "pooled features (resnet1d:pooled_features) or alone into an MLP (feature_mlp:uci). The candidate "
        "with the higher 3-seed CV mean is tested only if that mean beats pooled_stats' and its per-fold seed "
        "means are higher on >= 2 of the 3 folds.",
    )


def mix3_members(seed: int) -> list[str]:
    """Round 10: the CV candidates whose models make the ensemble of training seed ``seed``."""
    return [member if seed == 0 else f"{member} + training seed {seed}" for member in MIX3]


def mix3_path(seed: int) -> Path:
    return FOLDER / f"uci_hapt-ensemble-mix3{f'-seed{seed}' if seed else ''}.json"


def mix3_record(seed: int) -> dict | None:
    """Round 10's CV record of one training seed's ensemble (None until its members' re-runs exist)."""
    return ensemble_record("ensemble:mix3", mix3_members(seed), seed)


def mix9_record() -> dict | None:
    """Round 11's CV record: the nine networks of round 10 in one ensemble per fold."""
    return ensemble_record("ensemble:mix9", [n for seed in (0, 1, 2) for n in mix3_members(seed)], None)


def ensemble_record(label: str, names: list[str], seed: int | None) -> dict | None:
    """The CV record of an ensemble of CV candidates, from their re-runs (runs/cv_probs/): per fold, the
    accuracy and macro F1 of the mean of the members' held-out probabilities. None until every member's
    re-run exists. ``reproduced``: every re-run scored its folds exactly as the committed record did
    (same models), the precondition of rounds 10 and 11."""
    from har.metrics import classification_metrics

    if not all(probs_path(n).is_file() for n in names):
        return None
    kept = [np.load(probs_path(n)) for n in names]
    for other in kept[1:]:  # the same windows in the same order, or the mean is meaningless
        for key in ("labels", "subjects", "fold", "classes"):
            if not np.array_equal(other[key], kept[0][key]):
                raise SystemExit(f"{label}: the members' re-runs disagree on {key}; re-run them")
    reproduced = all(
        [f["accuracy"] for f in json.loads(probs_path(n).with_suffix(".json").read_text())["folds"]]
        == [f["accuracy"] for f in json.loads(path(n).read_text())["folds"]]
        for n in names
    )
    probs = np.mean([k["probs"].astype(np.float64) for k in kept], axis=0)
    classes = kept[0]["classes"].tolist()
    folds = []
    for i, committed in enumerate(json.loads(path(names[0]).read_text())["folds"]):
        mine = kept[0]["fold"] == i
        metrics = classification_metrics(kept[0]["labels"][mine], probs[mine].argmax(axis=1), classes)
        folds.append({"held_out": committed["held_out"], "windows": int(mine.sum()),
                      "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})  # fmt: skip
    acc = np.array([f["accuracy"] for f in folds])
    return {
        "model": label, "members": names, "seed": seed, "reproduced": reproduced, "folds": folds,
        "summary": {"accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
                    "macro_f1_mean": float(np.mean([f["macro_f1"] for f in folds]))},
    }  # fmt: skip


def ensemble_cv(paths: list[Path]) -> tuple[Seeds, bool] | None:
    """An ensemble's CV figure over its records (mean, per-fold means over the records, records) and
    whether every member re-run reproduced its committed record; None until every record exists."""
    if not all(p.is_file() for p in paths):
        return None
    records = [json.loads(p.read_text()) for p in paths]
    folds = np.array([[f["accuracy"] for f in r["folds"]] for r in records]) * 100
    reproduced = all(r["reproduced"] for r in records)
    return (float(folds.mean()), folds.mean(axis=0).tolist(), len(records)), reproduced


MIX9 = FOLDER / "uci_hapt-ensemble-mix9.json"


def mix3_seeds() -> tuple[Seeds, bool] | None:
    """Round 10's figure: the three training seeds' ensembles, per-fold seed means."""
    return ensemble_cv([mix3_path(s) for s in (0, 1, 2)])


def mix9_folds() -> tuple[Seeds, bool] | None:
    """Round 11's figure: one ensemble of the nine networks per fold."""
    return ensemble_cv([MIX9])


def ensemble_verdict(found: tuple[Seeds, bool] | None, base: Seeds | None) -> bool | None:
    """Whether an ensemble qualifies for the test split against ``base`` (None: not decided yet, or its
    members' re-runs did not reproduce their records, which stops the round)."""
    if found is None or base is None or not found[1]:
        return None
    return qualifies(found[0], base)


def round_ten_verdict() -> bool | None:
    return ensemble_verdict(mix3_seeds(), seed_mean("resnet1d:pooled_features"))


def round_eleven_verdict() -> bool | None:
    mix3 = mix3_seeds()
    return ensemble_verdict(mix9_folds(), mix3[0] if mix3 else None)


def ensemble_round(text: str, found: tuple[Seeds, bool] | None, base_name: str, base: Seeds | None,
                   name: str, against: str) -> list[str]:  # fmt: skip
    """An ensemble round's text (its ``{reproduced}`` filled in) and verdict table; the round stops (no
    table) if a member re-run did not reproduce its committed record."""
    if found is None or base is None:
        return []
    if not found[1]:
        return ["", text.replace("{reproduced}", "RE-RUNS DIFFER FROM THE COMMITTED RECORDS: the round stops")]
    text = text.replace("{reproduced}", "every fold accuracy identical to the committed records")
    return ["", text, *seed_verdict(base_name, base, {name: found[0]}, against)]


def round_ten() -> list[str]:
    """Round 10's verdict: the 3-member ensemble against pooled_features (3-seed CV)."""
    text = (
        "Round 10, an ensemble (`ensemble:mix3`): per training seed, the mean of the class probabilities of "
        "pooled_stats, pooled_features and feature_mlp:uci, the very models of rounds 6 and 9 (re-run with "
        "`har cv --probs-out`, {reproduced}). Inductive (nothing of "
        "a held-out subject is seen before it is classified), three networks at inference. Tested only if its "
        "3-seed CV mean beats pooled_features' and its per-fold seed means are higher on >= 2 of the 3 folds."
    )
    leader = seed_mean("resnet1d:pooled_features")
    return ensemble_round(text, mix3_seeds(), "resnet1d:pooled_features", leader, "ensemble:mix3",
                          "pooled_features")  # fmt: skip


def round_eleven() -> list[str]:
    """Round 11's verdict: nine networks in one ensemble against round 10's three-network ensembles."""
    text = (
        "Round 11, a larger ensemble (`ensemble:mix9`): the nine networks of round 10 (three models x training "
        "seeds 0-2) averaged in one ensemble per fold, scored from the same re-runs ({reproduced}; no new "
        "training; one ensemble, so no seed mean). Tested (three disjoint nine-network ensembles, seeds 0-2, 3-5, 6-8) only "
        "if its CV mean beats ensemble:mix3's 3-seed CV mean and its per-fold figures are higher than mix3's "
        "per-fold seed means on >= 2 of the 3 folds."
    )
    mix3 = mix3_seeds()
    return ensemble_round(text, mix9_folds(), "ensemble:mix3 (3 seeds)", mix3[0] if mix3 else None,
                          "ensemble:mix9 (1 ensemble)", "mix3")  # fmt: skip


def round_twelve() -> list[str]:
    """Round 12: the 3-seed CV of the published models first run on uci_hapt, beside the CV leader among
    the tested models; nothing is tested from it (both are tested already)."""
    found = {name: m for name in ROUND_12 if (m := seed_mean(name)) is not None and m[2] == 3}
    mix9 = mix9_folds()
    if not found or mix9 is None:
        return []
    means = {"ensemble:mix9": mix9[0][0], **{name: m[0] for name, m in found.items()}}
    unfinished = " (deepconvlstm:ordonez's CV not finished)" if len(found) < len(ROUND_12) else ""
    tested = test_means()
    return [
        "",
        "Round 12, the published models first run on uci_hapt (cnn_resbigru:model2, deepconvlstm:ordonez), "
        "training seeds 0, 1, 2 on the same folds, 25 epochs at most, so that the best-model rule covers them. "
        "Their accuracy-table runs came first (the issue lists them; nothing chose them) and nothing is tested "
        "from this round; the rule (the highest 3-seed CV mean) decides. Caveat: this CV was run after their "
        "test figures existed.",
        "",
        "| model | CV % (3 seeds) | per fold (seed means) | test % (mean of seeds) |",
        "| --- | --- | --- | --- |",
        f"| ensemble:mix9 (1 ensemble; the CV leader before this round) | {mix9[0][0]:.2f} | {per_fold(mix9[0])} | "
        f"{_pct(tested.get('ensemble:mix9'))} |",
        *(f"| {name} | {m[0]:.2f} | {per_fold(m)} | {_pct(tested.get(name))} |" for name, m in found.items()),
        "",
        f"Highest CV mean: {max(means, key=means.__getitem__)}{unfinished}.",
    ]


def test_means() -> dict[str, float]:
    """The accuracy table's mean test accuracy (%) per uci_hapt model, tested ensembles included."""
    from accuracy import ensemble_rows  # here, not at the top: accuracy imports this module

    rows = json.loads(ACCURACY.read_text()).get("summary", []) + ensemble_rows()
    return {r["model"]: r["test_accuracy_mean"] for r in rows if r["dataset"] == "uci_hapt"}


def against_leader(names: tuple[str, ...], text: str) -> list[str]:
    """A round's text and verdict table for candidates judged against pooled_stats' 3-seed CV; nothing
    until every candidate has its 3 seeds."""
    leader = "resnet1d:pooled_stats"
    base = seed_mean(leader)
    found = {name: m for name in names if (m := seed_mean(name)) is not None and m[2] == 3}
    if base is None or len(found) < len(names):
        return []
    return ["", text, *seed_verdict(leader, base, found, "pooled_stats")]


def folds_won(mine: list[float], theirs: list[float]) -> int:
    """Folds where ``mine`` is higher (in %); equal accuracies that differ only by float rounding of a mean
    (the same window count) are a tie, not a win."""
    return sum(a > b + 1e-9 for a, b in zip(mine, theirs, strict=True))


Seeds = tuple[float, list[float], int]  # seed_mean's (mean, per-fold means, seeds)


def per_fold(figure: Seeds) -> str:
    """A CV figure's per-fold accuracies as a table cell: '92.39 / 98.14 / 91.75'."""
    return " / ".join(f"{v:.2f}" for v in figure[1])


def qualifies(candidate: Seeds, base: Seeds) -> bool:
    """Round 6's rule: a higher CV mean and higher per-fold figures on at least 2 of the 3 folds."""
    return candidate[0] > base[0] and folds_won(candidate[1], base[1]) >= 2


def seed_verdict(base_name: str, base: Seeds, candidates: dict[str, Seeds], against: str) -> list[str]:
    """Round 6's rule as a table: a candidate qualifies if its 3-seed CV mean beats ``base_name``'s and its
    per-fold seed means are higher on at least 2 of the 3 folds; of those, the highest mean is tested."""
    won = {name: folds_won(m[1], base[1]) for name, m in candidates.items()}
    qualified = [name for name, m in candidates.items() if qualifies(m, base)]
    tested = max(qualified, key=lambda name: candidates[name][0]) if qualified else None
    return [
        "",
        f"| model | CV % (3 seeds) | per fold (seed means) | folds won vs {against} | tested |",
        "| --- | --- | --- | --- | --- |",
        f"| {base_name} | {base[0]:.2f} | {per_fold(base)} | - | - |",
        *(
            f"| {name} | {m[0]:.2f} | {per_fold(m)} | {won[name]} of 3 | {'yes' if name == tested else 'no'} |"
            for name, m in candidates.items()
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(CANDIDATES))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--probs", action="store_true",
                        help="round 10: re-run --models (default: the ensemble's members, 3 seeds) keeping "
                        "held-out probabilities under runs/cv_probs/")  # fmt: skip
    args = parser.parse_args()
    if args.probs:
        names = args.models.split(",") if args.models != ",".join(CANDIDATES) else [
            n for member in MIX3 for n in seeds_of(member)
        ]  # fmt: skip
        for name in names:
            if name not in CANDIDATES:
                parser.error(f"--models: {name} is not one of {', '.join(CANDIDATES)}")
            if not probs_path(name).is_file():
                run(name, probs=True)
        for seed in (0, 1, 2):
            if (record := mix3_record(seed)) is not None:
                save_json(mix3_path(seed), record)
        if (record := mix9_record()) is not None:
            save_json(MIX9, record)
    elif not args.report_only:
        for name in args.models.split(","):
            if name not in CANDIDATES:
                parser.error(f"--models: {name} is not one of {', '.join(CANDIDATES)}")
            if not path(name).is_file():
                run(name)
    write_section(REPORT, "crossval", report())


if __name__ == "__main__":
    main()
