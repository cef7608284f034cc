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


def validation_subjects(train_subjects: list[int], fraction: float, seed: int = 0) -> list[int]:
    """A fixed, seeded subset of the training subjects held out for model selection (at least one).

    The validation subjects never include test subjects, and the choice depends only on ``seed`` (not
    on the training seed), so repeated runs select on the same subjects.
    """
    subjects = sorted(train_subjects)
    if len(subjects) < 2:
        raise BadInput(
            f"only {len(subjects)} training subject(s): cannot carve a subject-wise validation split; "
            "use a dataset with more training subjects"
        )
    count = min(len(subjects) - 1, max(1, round(fraction * len(subjects))))
    rng = np.random.default_rng(seed)
    return sorted(int(s) for s in rng.choice(subjects, size=count, replace=False))
