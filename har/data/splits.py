"""Subject-wise train/test splits, leave-subjects-out folds and leakage checks.

Windows overlap in time, so a random split of windows would put near-copies of test windows in
training. Every split here keeps each subject (or, for Opportunity, each recording run) on one side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from har.data.spec import SplitSpec
from har.data.windows import Windows
from har.errors import BadInput


@dataclass
class Split:
    keep: np.ndarray  # windows whose subject belongs to the split
    test: np.ndarray  # test flag per window (meaningful where keep)
    info: dict[str, Any]  # what meta.json records about the split


def assign_split(windows: Windows, spec: SplitSpec) -> Split:
    """Flag test windows by subject (or by the reader's per-recording flag) and check for leakage."""
    subjects = sorted(int(s) for s in np.unique(windows.subject))
    unknown_test = sorted(set(spec.test_subjects) - set(subjects))
    if unknown_test:
        raise BadInput(
            f"split.test_subjects names subjects {unknown_test} that are not in the data (subjects: {subjects}); "
            "fix split.test_subjects in params.yaml"
        )
    if windows.test is not None:  # split by recording run (Opportunity's challenge protocol)
        test = windows.test.copy()
        keep = np.ones(len(test), dtype=bool)
    else:
        test = np.isin(windows.subject, spec.test_subjects)
        train_subjects = spec.train_subjects if spec.train_subjects is not None else subjects
        keep = test | np.isin(windows.subject, train_subjects)
        both = set(np.unique(windows.subject[test])) & set(np.unique(windows.subject[keep & ~test]))
        if both:  # cannot happen with a validated SplitSpec; guards future split rules
            raise BadInput(f"subjects {sorted(both)} would be in both train and test")
    if not (keep & test).any():
        raise BadInput("the split leaves no test window; check split.test_subjects in params.yaml")
    if not (keep & ~test).any():
        raise BadInput("the split leaves no training window; check split in params.yaml")
    dropped = sorted(set(subjects) - set(np.unique(windows.subject[keep]).tolist()))
    extra = windows.extra if windows.extra is not None else np.zeros(len(test), dtype=bool)
    info: dict[str, Any] = {
        "rule": spec.rule,
        "by": "recording" if windows.test is not None else "subject",
        "train_subjects": sorted(int(s) for s in np.unique(windows.subject[keep & ~test])),
        "test_subjects": sorted(int(s) for s in np.unique(windows.subject[keep & test])),
        "folds": [sorted(f) for f in spec.folds],
        "windows": {"train": int((keep & ~test & ~extra).sum()), "test": int((keep & test & ~extra).sum())},
    }
    if windows.extra is not None:  # the denser training-only windows (WindowSpec.train_step)
        info["extra_windows"] = {
            "train": int((keep & ~test & extra).sum()),
            "test": int((keep & test & extra).sum()),
        }
    if dropped:
        info["dropped_subjects"] = dropped
    return Split(keep=keep, test=test, info=info)


def fold_masks(subject: np.ndarray, folds: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) boolean masks of each leave-subjects-out fold."""
    out = []
    for held_out in folds:
        hold = np.isin(subject, held_out)
        out.append((~hold, hold))
    return out


@dataclass
class ValidationCarve:
    subjects: list[int]  # the validation subjects, sorted
    missing: list[int]  # training classes no validation subject performed (empty when the subjects allow)


def carve_validation(classes_of: dict[int, set[int]], fraction: float, seed: int = 0) -> ValidationCarve:
    """A fixed, seeded subset of the training subjects held out for model selection (at least one).

    ``classes_of`` maps each training subject to the classes it performed. The validation subjects never
    include test subjects, and the choice depends only on ``seed`` (not on the training seed), so repeated
    runs select on the same subjects. The seeded draw of ``fraction`` of the subjects is kept when both
    validation and the remaining training subjects hold every class; otherwise subjects are chosen (in a
    seeded order) so that they do, adding subjects beyond ``fraction`` where needed: a validation split
    without a class caps macro F1 and misleads every selection. Classes that only one subject performed
    cannot be in both; they are returned as ``missing``.
    """
    subjects = sorted(classes_of)
    if len(subjects) < 2:
        raise BadInput(
            f"only {len(subjects)} training subject(s): cannot carve a subject-wise validation split; "
            "use a dataset with more training subjects"
        )
    count = min(len(subjects) - 1, max(1, round(fraction * len(subjects))))
    rng = np.random.default_rng(seed)
    drawn = sorted(int(s) for s in rng.choice(subjects, size=count, replace=False))
    wanted = set().union(*classes_of.values())
    if _classes(classes_of, drawn) == wanted == _classes(classes_of, set(subjects) - set(drawn)):
        return ValidationCarve(drawn, [])
    return _cover(classes_of, [int(s) for s in rng.permutation(subjects)], count, wanted)


def _classes(classes_of: dict[int, set[int]], subjects) -> set[int]:
    return set().union(*(classes_of[s] for s in subjects))


def _cover(
    classes_of: dict[int, set[int]], order: list[int], count: int, wanted: set[int]
) -> ValidationCarve:
    """Greedy: take subjects (in ``order``) that add a class validation lacks without taking a class's last
    training subject, then top up to ``count`` with subjects training can spare."""
    left = {c: sum(c in classes_of[s] for s in order) for c in wanted}  # training subjects per class
    val: list[int] = []

    def spare(s: int) -> bool:
        return len(order) - len(val) > 1 and all(left[c] > 1 for c in classes_of[s])

    def take(s: int) -> None:
        val.append(s)
        for c in classes_of[s]:
            left[c] -= 1

    for s in order:
        if classes_of[s] - _classes(classes_of, val) and spare(s):
            take(s)
    for s in order:
        if len(val) >= count:
            break
        if s not in val and spare(s):
            take(s)
    if not val:  # no subject can be spared without losing a class: keep the fraction anyway
        take(order[0])
    return ValidationCarve(sorted(val), sorted(wanted - _classes(classes_of, val)))
